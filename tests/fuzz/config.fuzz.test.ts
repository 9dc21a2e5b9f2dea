/**
 * Fuzzing the configuration edge (issue 4, acceptance 6): `loadConfig` (src/config/config.ts) with
 * 10,000 generated environments and config files (mutated real configs as JSON or YAML, files cut
 * short mid-way, junk text), and 10,000 generated `overrides` maps, seeded.
 *
 * For every input: the only exception is a `ConfigError`; each of its issues starts with the key
 * (or the variable, or the file) it is about; no secret (the private key, the API token, given by
 * file or environment, well-formed or not) appears in its message, not even in part; a success is
 * a frozen configuration; and nothing outside changes (no prototype pollution, the environment
 * object untouched).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { stringify as toYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConfigSchema, ENV_KEYS, loadConfig } from '../../src/config/config.ts';
import { fuzzParams, junkLeaf, mutated, POLLUTION_KEYS } from './malformed.ts';
import { check } from './wire-samples.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-config-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TOP_KEYS = Object.keys(ConfigSchema.shape);
const ENV_NAMES = Object.keys(ENV_KEYS);

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: n, maxLength: n });
/** Secrets as an operator might write them: well-formed, or almost. */
const privateKeyArb = fc.oneof(hex(64).map((h) => `0x${h}`), hex(63).map((h) => `0x${h}`), hex(64), hex(70).map((h) => `0x${h}`), hex(64).map((h) => `0x${h} `));
const tokenArb = fc.oneof(fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEF0123456789-_'), minLength: 16, maxLength: 40 }).map((s) => `tok_${s}`), hex(12).map((s) => `tkn_${s}`));

const SAMPLE = {
  network: 'testnet',
  apiUrl: 'https://api.hyperliquid-testnet.xyz',
  dataDir: '/var/lib/keel',
  httpAddr: '127.0.0.1:9464',
  keystore: '/etc/keel/agent.json',
  keystorePasswordFile: '/etc/keel/pass',
  account: '0x1234567890abcdef1234567890abcdef12345678',
  markets: ['BTC', 'ETH'],
  strategy: { name: 'enhanced-macd', params: { fast: 12, slow: 26 } },
  risk: { entrySlippagePct: 0.05, minRewardRisk: 1.2 },
  paper: { speed: 60, seed: 1, usdc: 100_000, blockMs: 100 },
  orders: { expiresAfterMs: 5_000, statusPollMs: 1_000, submitTimeoutMs: 4_000 },
  feed: { staleAfterMs: 5_000, pollIntervalMs: 1_000, baseInterval: '1m' },
  log: { level: 'info' },
};

const envValue = fc.oneof(junkLeaf.filter((v): v is string => typeof v === 'string'), fc.constantFrom('paper', 'testnet', 'mainnet', '0.0.0.0:80', '[::1]:9464', 'BTC,ETH', ' , ,', 'debug', '42', '-1', 'http://x', ...POLLUTION_KEYS));

/** A file damaged after serializing: cut short, or a stray character inserted (parsers may quote around it). */
type Damage = { readonly k: 'cut'; readonly at: number } | { readonly k: 'insert'; readonly at: number; readonly ch: string };
const damageArb: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ k: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ k: fc.constant('insert' as const), at: fc.nat(), ch: fc.constantFrom('x', '}', '{', '"', ':', ',', '\n', '\t', '\u0000', '#', '&', '*', '!', '- ', '?') }),
);

interface Case {
  readonly privateKey: string;
  readonly apiToken: string;
  readonly env: Record<string, string>;
  readonly file:
    | { readonly kind: 'none' }
    | { readonly kind: 'json' | 'yaml'; readonly content: unknown; readonly damage: Damage | undefined }
    | { readonly kind: 'text'; readonly text: string; readonly ext: string };
}

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    privateKey: privateKeyArb,
    apiToken: tokenArb,
    envPicks: fc.dictionary(fc.constantFrom(...ENV_NAMES, 'KEEL_UNKNOWN', 'KEEL_'), envValue, { maxKeys: 5 }),
    secretsIn: fc.constantFrom('env', 'file', 'both', 'none'),
    file: fc.oneof(
      { weight: 1, arbitrary: fc.constant({ kind: 'none' as const }) },
      { weight: 5, arbitrary: fc.record({ kind: fc.constant('json' as const), mutation: mutated(SAMPLE), damage: fc.option(damageArb, { nil: undefined }) }) },
      // YAML costs about a millisecond per file, and much more when deeply nested: fewer of them,
      // shallow ones; JSON files carry deep nesting.
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('yaml' as const), mutation: mutated(SAMPLE, { shallow: true }), damage: fc.option(damageArb, { nil: undefined }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('text' as const), text: fc.string({ maxLength: 200 }), ext: fc.constantFrom('.json', '.yaml', '.yml', '') }) },
    ),
  })
  .map(({ privateKey, apiToken, envPicks, secretsIn, file }) => {
    const env: Record<string, string> = { ...envPicks };
    if (secretsIn === 'env' || secretsIn === 'both') Object.assign(env, { KEEL_PRIVATE_KEY: privateKey, KEEL_API_TOKEN: apiToken });
    let f: Case['file'];
    if (file.kind === 'json' || file.kind === 'yaml') {
      const content = file.mutation !== null && typeof file.mutation === 'object' && !Array.isArray(file.mutation) && (secretsIn === 'file' || secretsIn === 'both') ? { ...(file.mutation as object), privateKey, apiToken } : file.mutation;
      f = { kind: file.kind, content, damage: file.damage };
    } else f = file;
    return { privateKey, apiToken, env, file: f };
  });

function serialize(kind: 'json' | 'yaml', content: unknown): string {
  if (kind === 'json') return JSON.stringify(content) ?? 'null';
  try {
    return toYaml(content);
  } catch {
    return JSON.stringify(content) ?? 'null';
  }
}

const PIECE = 8;

/** Whether `message` contains the secret or any 8-character piece of it (parsers echo snippets). */
function leaks(message: string, secret: string): boolean {
  const s = secret.trim();
  if (s.length < PIECE) return message.includes(s);
  for (let i = 0; i + PIECE <= s.length; i++) if (message.includes(s.slice(i, i + PIECE))) return true;
  return false;
}

/** An issue names what it is about: a config key path, a KEEL_* variable, or the file. */
function namesAKey(issue: string, file: string | undefined): boolean {
  if (file && (issue.startsWith(`cannot read config file ${file}`) || issue.startsWith(`config file ${file}`))) return true;
  if (issue.startsWith('(root)')) return true;
  const head = issue.split(/[ :]/)[0]!;
  if (ENV_NAMES.includes(head)) return true;
  return TOP_KEYS.includes(head.split('.')[0]!);
}

let n = 0;
/** Writes the case's file under a fresh name (rewriting one file in place is slow on ext4: it flushes). */
function writeCase(c: Case): string | undefined {
  if (c.file.kind === 'none') return undefined;
  n++;
  if (c.file.kind === 'text') {
    const f = path.join(dir, `t${n}${c.file.ext}`);
    writeFileSync(f, c.file.text);
    return f;
  }
  let text = serialize(c.file.kind, c.file.content);
  const d = c.file.damage;
  if (d?.k === 'cut') text = text.slice(0, d.at % (text.length + 1));
  if (d?.k === 'insert') {
    const at = d.at % (text.length + 1);
    text = text.slice(0, at) + d.ch + text.slice(at);
  }
  const f = path.join(dir, `c${n}.${c.file.kind === 'json' ? 'json' : 'yaml'}`);
  writeFileSync(f, text);
  return f;
}

function expectNoPollution(): void {
  for (const k of ['polluted', 'a', 'network', 'privateKey']) check(!(k in Object.prototype), `Object.prototype.${k} appeared`);
}

describe('fuzz: configuration (10,000 generated environments and files)', () => {
  it('loadConfig: a ConfigError naming the key, never a secret; or a frozen config; nothing else changes', () => {
    let errors = 0;
    fc.assert(
      fc.property(caseArb, (c) => {
        const file = writeCase(c);
        const envCopy = { ...c.env };
        let cfg: unknown;
        try {
          cfg = loadConfig({ env: c.env, ...(file ? { file } : {}) });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw new Error(`not a ConfigError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
          errors++;
          check(e.issues.length > 0, 'an error with no issue');
          for (const issue of e.issues) check(namesAKey(issue, file), `issue names no key: ${issue.slice(0, 200)}`);
          check(!leaks(e.message, c.privateKey), `private key in: ${e.message.slice(0, 300)}`);
          check(!leaks(e.message, c.apiToken), `API token in: ${e.message.slice(0, 300)}`);
          check(!leaks(JSON.stringify(e.issues), c.privateKey) && !leaks(JSON.stringify(e.issues), c.apiToken), 'secret in issues');
        }
        if (cfg !== undefined) check(Object.isFrozen(cfg), 'config not frozen');
        check(JSON.stringify(c.env) === JSON.stringify(envCopy), 'env changed');
        expectNoPollution();
      }),
      fuzzParams(0xc0f1),
    );
    expect(errors).toBeGreaterThan(5_000);
  });

  it('overrides: dotted keys cannot pollute prototypes; only ConfigError, never a secret', () => {
    const keyArb = fc.oneof(
      fc.constantFrom('network', 'paper.speed', 'orders.expiresAfterMs', 'log.level', 'strategy.params.x', 'risk.maxLeverage'),
      fc.constantFrom(...POLLUTION_KEYS).chain((p) => fc.constantFrom(`${p}.polluted`, `${p}.prototype.polluted`, `paper.${p}.polluted`, `strategy.params.${p}.polluted`, p)),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(fc.dictionary(keyArb, junkLeaf, { maxKeys: 4 }), tokenArb, (overrides, token) => {
        try {
          loadConfig({ env: { KEEL_API_TOKEN: token }, overrides });
        } catch (e) {
          if (!(e instanceof ConfigError)) throw new Error(`not a ConfigError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
          check(!leaks(e.message, token), 'token leaked');
        }
        expectNoPollution();
      }),
      fuzzParams(0x0e11),
    );
  });
});
