/**
 * Configuration: a file (`--config FILE`, JSON or YAML) and `KEEL_*` environment variables,
 * the environment winning, validated once at start into a frozen `KeelConfig`.
 *
 * Invariants: a bad value is refused with a message naming the key (and the variable it came
 * from); a raw private key is refused on mainnet; secrets are never part of an error message.
 * Library: zod for the schema, yaml (eemeli/yaml, the maintained YAML 1.2 parser) for files.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'must be a 0x-prefixed 20-byte hex address').transform((s) => s.toLowerCase());
const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'must be host:port');

export const ConfigSchema = z
  .object({
    network: z.enum(['paper', 'testnet', 'mainnet']).default('paper'),
    apiUrl: z.url().optional(),
    dataDir: z.string().min(1).default('./var'),
    httpAddr: hostPort.default('127.0.0.1:9464'),
    apiToken: z.string().min(16, 'must be at least 16 characters').optional(),
    keystore: z.string().optional(),
    keystorePasswordFile: z.string().optional(),
    privateKey: z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'must be 0x + 64 hex digits').optional(),
    account: address.optional(),
    markets: z.array(z.string().regex(/^[A-Za-z0-9]{1,20}$/)).min(1).default(['BTC', 'ETH']),
    strategy: z.object({ name: z.string().default('enhanced-macd'), params: z.record(z.string(), z.unknown()).default({}) }).prefault({}),
    /**
     * Risk settings (src/domain/risk.ts RiskConfigSchema). keel's defaults differ from the
     * module's conservative ones in two places: IOC entries cross a tight book (0.05 % slippage
     * cap, not 0.1 %), and a 1.2 reward:risk floor, since the default strategy targets 2R from a
     * stop at least 0.25 % away and the entry's slippage is counted against it.
     */
    risk: z.record(z.string(), z.unknown()).default({ entrySlippagePct: 0.05, minRewardRisk: 1.2 }),
    /** The exchange's dead-man switch (src/ops/watchdog-deadman.ts): e.g. { horizonMs: 60000 }. */
    deadMan: z.record(z.string(), z.unknown()).default({}),
    /** Operating-mode thresholds (machines/mode.machine.ts ModeConfigSchema). */
    mode: z.record(z.string(), z.unknown()).default({}),
    paper: z
      .object({
        speed: z.number().positive().max(10_000).default(60),
        seed: z.number().int().nonnegative().default(1),
        usdc: z.number().positive().default(100_000),
        blockMs: z.number().int().min(10).max(10_000).default(100),
      })
      .prefault({}),
    orders: z
      .object({
        expiresAfterMs: z.number().int().min(1_000).max(60_000).default(5_000),
        statusPollMs: z.number().int().min(50).max(60_000).default(1_000),
        submitTimeoutMs: z.number().int().min(100).max(60_000).default(4_000),
      })
      .prefault({}),
    feed: z
      .object({
        staleAfterMs: z.number().int().min(100).default(5_000),
        pollIntervalMs: z.number().int().min(100).default(1_000),
        baseInterval: z.string().default('1m'),
      })
      .prefault({}),
    log: z.object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info') }).prefault({}),
    /** Telegram alerts and commands (src/ops/alerts-wiring.ts): off unless a bot token and a chat id are set. */
    telegram: z
      .object({
        botToken: z.string().regex(/^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$/, 'must look like <bot id>:<secret> (from @BotFather)').optional(),
        chatIds: z.array(z.string().regex(/^-?[0-9]{1,20}$/, 'must be numeric chat ids')).default([]),
        apiRoot: z.url().default('https://api.telegram.org'),
      })
      .prefault({}),
    /** Email alerts over SMTP: off unless an SMTP URL and a recipient are set. */
    email: z
      .object({
        smtpUrl: z.string().regex(/^smtps?:\/\/[^\s]+$/, 'must be an smtp:// or smtps:// URL').optional(),
        from: z.string().min(3).default('keel@localhost'),
        to: z.array(z.string().regex(/^[^\s@,]+@[^\s@,]+$/, 'must be email addresses')).default([]),
      })
      .prefault({}),
  })
  .strict();

export type KeelConfig = Readonly<z.infer<typeof ConfigSchema>>;

export class ConfigError extends Error {
  readonly issues: readonly string[];
  constructor(issues: readonly string[]) {
    super(`invalid configuration: ${issues.join('; ')}`);
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

/** Environment variable → config path. */
export const ENV_KEYS: Readonly<Record<string, { path: readonly string[]; type: 'string' | 'number' | 'list' }>> = {
  KEEL_NETWORK: { path: ['network'], type: 'string' },
  KEEL_API_URL: { path: ['apiUrl'], type: 'string' },
  KEEL_DATA_DIR: { path: ['dataDir'], type: 'string' },
  KEEL_HTTP_ADDR: { path: ['httpAddr'], type: 'string' },
  KEEL_API_TOKEN: { path: ['apiToken'], type: 'string' },
  KEEL_KEYSTORE: { path: ['keystore'], type: 'string' },
  KEEL_KEYSTORE_PASSWORD_FILE: { path: ['keystorePasswordFile'], type: 'string' },
  KEEL_PRIVATE_KEY: { path: ['privateKey'], type: 'string' },
  KEEL_ACCOUNT: { path: ['account'], type: 'string' },
  KEEL_MARKETS: { path: ['markets'], type: 'list' },
  KEEL_STRATEGY: { path: ['strategy', 'name'], type: 'string' },
  KEEL_PAPER_SPEED: { path: ['paper', 'speed'], type: 'number' },
  KEEL_PAPER_SEED: { path: ['paper', 'seed'], type: 'number' },
  KEEL_LOG_LEVEL: { path: ['log', 'level'], type: 'string' },
  KEEL_TELEGRAM_BOT_TOKEN: { path: ['telegram', 'botToken'], type: 'string' },
  KEEL_TELEGRAM_CHAT_ID: { path: ['telegram', 'chatIds'], type: 'list' },
  KEEL_TELEGRAM_API_ROOT: { path: ['telegram', 'apiRoot'], type: 'string' },
  KEEL_SMTP_URL: { path: ['email', 'smtpUrl'], type: 'string' },
  KEEL_ALERT_EMAIL_FROM: { path: ['email', 'from'], type: 'string' },
  KEEL_ALERT_EMAIL_TO: { path: ['email', 'to'], type: 'list' },
};

/** Config paths (top-level or one level down) holding secrets: their errors never echo the input. */
const SECRET_KEYS = new Set(['privateKey', 'apiToken', 'telegram.botToken', 'email.smtpUrl']);
const isSecretPath = (path: readonly PropertyKey[]): boolean => SECRET_KEYS.has(String(path[0])) || SECRET_KEYS.has(path.slice(0, 2).map(String).join('.'));

/** Keys that would reach a prototype through `obj[key]`: refused in dotted override paths. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  // Overrides come from callers (CLI flags, tests): a dotted key must never walk into a prototype.
  if (path.some((k) => UNSAFE_KEYS.has(k))) throw new ConfigError([`${path.join('.')}: not a configuration key`]);
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next) || !Object.hasOwn(cur, k)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/**
 * Where a config file fails to parse, without the parser's echo of the text around it: V8's
 * JSON.parse quotes a snippet ("Unexpected token ':', ..."privateKey"::"0xab12"... is not valid
 * JSON") and YAML errors carry the offending lines, which may hold a secret.
 */
function parseErrorText(e: unknown): string {
  const yaml = e as { code?: unknown; linePos?: readonly { line: number; col: number }[] };
  if (typeof yaml.code === 'string') {
    const at = yaml.linePos?.[0];
    return `${yaml.code}${at ? ` at line ${at.line}, column ${at.col}` : ''}`;
  }
  const m = e instanceof Error ? e.message : String(e);
  const pos = /position (\d+)(?: \(line (\d+) column (\d+)\))?/.exec(m);
  if (pos) return pos[2] ? `syntax error at line ${pos[2]}, column ${pos[3]}` : `syntax error at position ${pos[1]}`;
  if (/end of JSON input/i.test(m)) return 'unexpected end of input';
  if (/^Unexpected token/.test(m)) return 'unexpected token';
  // Parsers' own limits (nesting, aliases) carry no file text.
  return e instanceof Error ? e.name : 'unreadable';
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError([`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`]);
  }
  let parsed: unknown;
  try {
    parsed = /\.json$/i.test(file) ? JSON.parse(text) : parseYaml(text, { logLevel: 'error' });
  } catch (e) {
    throw new ConfigError([`config file ${file} is not valid ${/\.json$/i.test(file) ? 'JSON' : 'YAML'}: ${parseErrorText(e)}`]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError([`config file ${file} must hold an object`]);
  return parsed as Record<string, unknown>;
}

/**
 * Builds the configuration from an optional file and the environment.
 * @example loadConfig({ env: process.env, file: 'keel.yaml' })
 */
export function loadConfig(opts: { env?: Readonly<Record<string, string | undefined>>; file?: string; overrides?: Record<string, unknown> } = {}): KeelConfig {
  const raw: Record<string, unknown> = opts.file ? readConfigFile(opts.file) : {};
  const origin = new Map<string, string>();
  const env = opts.env ?? {};
  const issues: string[] = [];
  for (const [name, spec] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    origin.set(spec.path.join('.'), name);
    if (spec.type === 'number') {
      const n = Number(v);
      if (!Number.isFinite(n)) {
        issues.push(`${name}: must be a number`);
        continue;
      }
      setPath(raw, spec.path, n);
    } else if (spec.type === 'list') {
      setPath(raw, spec.path, v.split(',').map((s) => s.trim()).filter(Boolean));
    } else {
      setPath(raw, spec.path, v);
    }
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) if (v !== undefined) setPath(raw, k.split('.'), v);
  if (issues.length) throw new ConfigError(issues);
  const r = ConfigSchema.safeParse(raw);
  if (!r.success) {
    throw new ConfigError(
      r.error.issues.map((i) => {
        const key = i.path.join('.') || '(root)';
        const from = origin.get(key);
        const secret = isSecretPath(i.path);
        // zod messages may echo the input; never for secrets.
        const msg = secret ? 'invalid value' : i.message;
        return `${key}${from ? ` (${from})` : ''}: ${msg}`;
      }),
    );
  }
  const cfg = r.data;
  if (cfg.network === 'mainnet' && cfg.privateKey) {
    throw new ConfigError(['privateKey (KEEL_PRIVATE_KEY): a raw private key is refused on mainnet; use an encrypted keystore (KEEL_KEYSTORE + KEEL_KEYSTORE_PASSWORD_FILE)']);
  }
  if (cfg.network !== 'paper' && !cfg.account) {
    throw new ConfigError([`account (KEEL_ACCOUNT): required on ${cfg.network}: the master account the agent trades for`]);
  }
  if (cfg.network !== 'paper' && !cfg.privateKey && !cfg.keystore) {
    throw new ConfigError([`keystore (KEEL_KEYSTORE): required on ${cfg.network}: the encrypted agent-wallet keystore`]);
  }
  const host = cfg.httpAddr.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const loopback = host === '127.0.0.1' || host === 'localhost' || host === '::1';
  if (!loopback && !cfg.apiToken) {
    throw new ConfigError([`httpAddr (KEEL_HTTP_ADDR): binding ${cfg.httpAddr} off loopback requires KEEL_API_TOKEN`]);
  }
  return Object.freeze(cfg);
}
