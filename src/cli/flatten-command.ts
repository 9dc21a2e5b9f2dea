/**
 * `keel flatten [--yes] [--deadline ms] [--slippage pct]`: cancel every order and close every
 * position with reduce-only IOC orders, looping until the exchange reports flat (src/ops/flatten.ts).
 * Works with the runtime stopped: it opens its own venue connection and the database.
 *
 * Invariants:
 *  - Asks before acting: on a terminal it asks for confirmation unless `--yes`; without a terminal
 *    it refuses unless `--yes`.
 *  - Every close intent is committed to the store (cloid allocated there, kind 'flatten') before it
 *    is sent, and its venue answer is recorded, so a later boot resolves anything left unknown.
 *  - Audited: the command (actor 'cli', action 'flatten') is appended before anything is sent, and
 *    its outcome ('flatten.result': the report, or the error) when it ends.
 *  - Exit 0 only when the venue reported flat; otherwise one line on stderr with the reason.
 *  - Orders without a cloid are cancelled by oid through `createOidCanceller` (a stopgap until
 *    VenuePort has `cancelByOid`).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { ApiRequestError, ExchangeClient, HttpTransport } from '@nktkas/hyperliquid';
import { InvalidArgumentError, type Command } from 'commander';
import { ethers } from 'ethers';
import { z } from 'zod';
import { ConfigError, loadConfig, type KeelConfig } from '../config/config.ts';
import type { CancelResult, Coin } from '../domain/types.ts';
import { flattenJournal } from '../ops/flatten-journal.ts';
import { flatten, flattenReportToJson, type FlattenLogger, type OidCancelling } from '../ops/flatten.ts';
import { openStore } from '../store/index.ts';
import { createHyperliquidVenue, type HyperliquidVenue, type VenuePort } from '../venue/index.ts';
import { CancelResponseSchema, venueErrorOf } from '../venue/hyperliquid-schemas.ts';

const MAINNET_URL = 'https://api.hyperliquid.xyz';
const TESTNET_URL = 'https://api.hyperliquid-testnet.xyz';

export interface FlattenCommandDeps {
  /** Environment for the configuration (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly stdout?: (text: string) => void;
  /** Whether a person can answer (default: stdin and stdout are terminals). */
  readonly isTTY?: boolean;
  /** Asks the operator; resolves true to go ahead (default: a readline prompt). */
  readonly confirm?: (question: string) => Promise<boolean>;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: FlattenLogger;
}

interface FlattenCliOptions {
  readonly config?: string;
  readonly yes?: boolean;
  readonly verbose?: boolean;
  readonly deadline: number;
  readonly slippage: number;
}

/** A failure of the command, with its exit code: 1 not flat / venue trouble, 2 refused / configuration. */
class FlattenCommandError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'FlattenCommandError';
    this.exitCode = exitCode;
  }
}

const PaperKeysSchema = z.object({ master: z.string().regex(/^0x[0-9a-fA-F]{64}$/), agent: z.string().regex(/^0x[0-9a-fA-F]{64}$/) });

/**
 * Cancel by oid over the SDK, for orders placed without a cloid (by hand). Stopgap: the venue
 * adapter should offer `cancelByOid(coin, oid, opts)` itself; this mirrors its `cancel` contract
 * (never throws; a per-order venue error is `not_found`, anything else without an answer `unknown`).
 */
export function createOidCanceller(o: { apiUrl: string; wallet: ethers.Wallet; network: KeelConfig['network']; timeoutMs: number; venue: VenuePort }): OidCancelling {
  const transport = new HttpTransport({ apiUrl: o.apiUrl.replace(/\/+$/, ''), isTestnet: o.network !== 'mainnet', timeout: o.timeoutMs });
  const exchange = new ExchangeClient({ transport, wallet: o.wallet });
  let assets: Promise<Map<Coin, number>> | undefined;
  return {
    async cancelByOid(coin, oid, opts): Promise<CancelResult> {
      let asset: number | undefined;
      try {
        assets ??= o.venue.instruments().then((l) => new Map(l.map((i) => [i.coin, i.assetId])));
        asset = (await assets).get(coin);
      } catch (e) {
        assets = undefined;
        return { kind: 'unknown', cause: `asset lookup failed: ${(e as Error).message}` };
      }
      if (asset === undefined) return { kind: 'not_found', error: `unknown coin ${coin}` };
      let raw: unknown;
      try {
        raw = await exchange.cancel({ cancels: [{ a: asset, o: oid }] }, { expiresAfter: opts.expiresAfter, ...(opts.signal ? { signal: opts.signal } : {}) });
      } catch (e) {
        const v = e instanceof ApiRequestError ? venueErrorOf(e.response) : undefined;
        if (v?.scope === 'order') return { kind: 'not_found', error: v.error };
        return { kind: 'unknown', cause: e instanceof Error ? e.message : String(e) };
      }
      const p = CancelResponseSchema.safeParse(raw);
      if (!p.success) return { kind: 'unknown', cause: 'invalid_response' };
      const st = p.data.response.data.statuses[0]!;
      return st === 'success' ? { kind: 'cancelled' } : { kind: 'not_found', error: st.error };
    },
  };
}

async function agentWallet(cfg: KeelConfig): Promise<ethers.Wallet> {
  if (cfg.keystore) {
    if (!cfg.keystorePasswordFile) throw new FlattenCommandError('KEEL_KEYSTORE_PASSWORD_FILE is required with KEEL_KEYSTORE', 2);
    const json = readFileSync(cfg.keystore, 'utf8');
    const password = readFileSync(cfg.keystorePasswordFile, 'utf8').trimEnd();
    const w = await ethers.Wallet.fromEncryptedJson(json, password);
    return new ethers.Wallet(w.privateKey);
  }
  if (cfg.privateKey) return new ethers.Wallet(cfg.privateKey);
  throw new FlattenCommandError('no agent key: set KEEL_KEYSTORE (+ KEEL_KEYSTORE_PASSWORD_FILE) or, off mainnet, KEEL_PRIVATE_KEY', 2);
}

/** The venue URL of a running keel (its /status), if one answers. */
async function runningVenueUrl(httpAddr: string): Promise<string | undefined> {
  try {
    const r = await fetch(`http://${httpAddr}/status`, { signal: AbortSignal.timeout(1_500) });
    if (!r.ok) return undefined;
    const s = z.object({ venue: z.object({ url: z.url() }) }).safeParse(await r.json());
    return s.success ? s.data.venue.url : undefined;
  } catch {
    return undefined;
  }
}

async function venueIdentity(cfg: KeelConfig): Promise<{ apiUrl: string; wallet: ethers.Wallet; account: string; runningNote?: string }> {
  if (cfg.network !== 'paper') {
    return { apiUrl: cfg.apiUrl ?? (cfg.network === 'mainnet' ? MAINNET_URL : TESTNET_URL), wallet: await agentWallet(cfg), account: cfg.account! };
  }
  const file = path.join(cfg.dataDir, 'paper-keys.json');
  if (!existsSync(file)) throw new FlattenCommandError(`paper: no paper account in ${cfg.dataDir} (${file} is missing): nothing to flatten`, 2);
  let keys: z.infer<typeof PaperKeysSchema>;
  try {
    keys = PaperKeysSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    throw new FlattenCommandError(`paper: ${file} is not a paper key file`, 2);
  }
  let apiUrl = cfg.apiUrl;
  let runningNote: string | undefined;
  if (!apiUrl) {
    apiUrl = await runningVenueUrl(cfg.httpAddr);
    if (!apiUrl) {
      throw new FlattenCommandError(
        'paper: KEEL_API_URL is not set and no running keel answers: the embedded simulator (and the paper positions in it) stopped with the runtime; point KEEL_API_URL at a running simulator (keel sim) to flatten there',
        2,
      );
    }
    runningNote = `keel is running on ${cfg.httpAddr}; flattening its embedded simulator at ${apiUrl} (the runtime may open new positions: prefer keel kill)`;
  }
  return { apiUrl, wallet: new ethers.Wallet(keys.agent), account: new ethers.Wallet(keys.master).address.toLowerCase(), ...(runningNote ? { runningNote } : {}) };
}

async function askOnTerminal(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const a = (await rl.question(`${question} [y/N] `)).trim().toLowerCase();
    return a === 'y' || a === 'yes';
  } finally {
    rl.close();
  }
}

/** pino-like lines on stderr, so stdout keeps only the report. */
const STDERR_LOG: FlattenLogger = {
  info: (o, m) => void process.stderr.write(`${JSON.stringify({ level: 'info', msg: m, ...o })}\n`),
  warn: (o, m) => void process.stderr.write(`${JSON.stringify({ level: 'warn', msg: m, ...o })}\n`),
  error: (o, m) => void process.stderr.write(`${JSON.stringify({ level: 'error', msg: m, ...o })}\n`),
};

const QUIET_LOG: FlattenLogger = { info() {}, warn() {}, error() {} };


/** Runs the command; returns normally only when the venue reported flat. */
async function runFlatten(o: FlattenCliOptions, deps: FlattenCommandDeps): Promise<void> {
  const out = deps.stdout ?? ((t: string) => void process.stdout.write(t));
  const now = deps.now ?? Date.now;
  // Progress lines for a person watching; a script gets only the report and the one-line reason.
  const log = deps.log ?? (o.verbose || process.stderr.isTTY ? STDERR_LOG : QUIET_LOG);
  let cfg: KeelConfig;
  try {
    cfg = loadConfig({ env: deps.env ?? process.env, ...(o.config ? { file: o.config } : {}) });
  } catch (e) {
    if (e instanceof ConfigError) throw new FlattenCommandError(e.message, 2);
    throw e;
  }
  const id = await venueIdentity(cfg);
  if (id.runningNote) log.warn({}, id.runningNote);
  const question = `Flatten ${cfg.network} account ${id.account} at ${id.apiUrl}: cancel every order and close every position?`;
  if (!o.yes) {
    const tty = deps.isTTY ?? (process.stdin.isTTY === true && process.stdout.isTTY === true);
    if (!tty) throw new FlattenCommandError('refusing to flatten without --yes when not on a terminal', 2);
    if (!(await (deps.confirm ?? askOnTerminal)(question))) throw new FlattenCommandError('not confirmed: nothing done', 2);
  }

  const store = await openStore({ path: path.join(cfg.dataDir, 'keel.sqlite'), clock: now });
  const venue: HyperliquidVenue = createHyperliquidVenue({ network: cfg.network, apiUrl: id.apiUrl, wallet: id.wallet, account: id.account, timeoutMs: cfg.orders.submitTimeoutMs, now });
  const startedAt = now();
  const who = { network: cfg.network, account: id.account, apiUrl: id.apiUrl };
  try {
    store.audit.append({ time: startedAt, actor: 'cli', action: 'flatten', detail: { ...who, deadlineMs: o.deadline, slippagePct: o.slippage, confirmedBy: o.yes ? '--yes' : 'prompt' } });
    const oid = createOidCanceller({ apiUrl: id.apiUrl, wallet: id.wallet, network: cfg.network, timeoutMs: cfg.orders.submitTimeoutMs, venue });
    let report;
    try {
      report = await flatten(venue, {
        deadlineMs: o.deadline,
        slippagePct: o.slippage,
        now,
        sleep: deps.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
        log,
        ...flattenJournal(store, now),
        cancelByOid: oid.cancelByOid,
        expiresAfterMs: cfg.orders.expiresAfterMs,
        requestTimeoutMs: cfg.orders.submitTimeoutMs,
      });
    } catch (e) {
      store.audit.append({ time: now(), actor: 'cli', action: 'flatten.result', detail: { ...who, startedAt, error: (e as Error).message } });
      throw e;
    }
    const json = flattenReportToJson(report);
    store.audit.append({ time: now(), actor: 'cli', action: 'flatten.result', detail: { ...who, startedAt, ...json } });
    out(`${JSON.stringify(json, null, 2)}\n`);
    if (!report.flat) throw new FlattenCommandError(`NOT flat: ${report.reason ?? 'unknown reason'}`, 1);
  } finally {
    await venue.close();
    store.close();
  }
}

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive integer (ms)`);
    return n;
  };
}

function percent(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 50) throw new InvalidArgumentError('--slippage must be a percentage in (0, 50]');
  return n;
}

/**
 * Adds `keel flatten` to a commander program. Failures go through `command.error` (one line,
 * the exit code: 1 not flat or venue trouble, 2 refused or misconfigured).
 *
 * @example registerFlatten(program); await program.parseAsync(['node', 'keel', 'flatten', '--yes']);
 */
export function registerFlatten(program: Command, deps: FlattenCommandDeps = {}): void {
  const cmd = program
    .command('flatten')
    .description('cancel every order and close every position with reduce-only orders, looping until the exchange reports flat (works with the runtime stopped)')
    .option('--config <file>', 'configuration file (JSON or YAML); KEEL_* environment variables win')
    .option('--yes', 'do not ask for confirmation (required when not on a terminal)')
    .option('--verbose', 'progress lines on stderr (default when stderr is a terminal)')
    .option('--deadline <ms>', 'give up after this many ms and report what is left', positiveInt('--deadline'), 60_000)
    .option('--slippage <pct>', 'price cap of each close, in % from the mid', percent, 1);
  cmd.action(async (o: FlattenCliOptions) => {
    try {
      await runFlatten(o, deps);
    } catch (e) {
      const code = e instanceof FlattenCommandError ? e.exitCode : 1;
      cmd.error(`keel flatten: ${(e as Error).message.split('\n')[0]}`, { exitCode: code, code: 'keel.flatten' });
    }
  });
}
