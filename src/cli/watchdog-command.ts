/**
 * `keel watchdog`: the independent watchdog process (src/ops/watchdog-process.ts) with its own
 * venue connection, configured like `keel run` (KEEL_DATA_DIR, KEEL_API_URL, keys; on paper the
 * keys in `$KEEL_DATA_DIR/paper-keys.json`). It watches the runtime's lease in the database and,
 * once the runtime stopped renewing it, cancels every order and (policy `flatten`, the default)
 * closes every position.
 *
 * Exit codes: 0 stopped by SIGINT / SIGTERM, or `--once` acted and the venue reported the result
 * clean; 1 `--once` acted but the venue was not clean by the deadline; 2 refused / misconfigured.
 * Logs are pino JSON lines on stdout; the alert is one line at level fatal, msg 'watchdog acted'.
 *
 * Paper: the embedded simulator lives inside `keel run`, so a runtime that hangs takes it down
 * too; the watchdog needs KEEL_API_URL pointing at a simulator of its own (`keel sim`).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { ethers } from 'ethers';
import { z } from 'zod';
import { ConfigError, loadConfig, type KeelConfig } from '../config/config.ts';
import { createLogger } from '../ops/logger.ts';
import { holderId } from '../ops/watchdog-lease.ts';
import { runWatchdog, WATCHDOG_POLICIES, type WatchdogLogger, type WatchdogPolicy } from '../ops/watchdog-process.ts';
import { openStore } from '../store/index.ts';
import { createHyperliquidVenue } from '../venue/index.ts';
import { createOidCanceller } from './flatten-command.ts';

const MAINNET_URL = 'https://api.hyperliquid.xyz';
const TESTNET_URL = 'https://api.hyperliquid-testnet.xyz';

export interface WatchdogCommandDeps {
  /** Environment for the configuration (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Logger (default: pino JSON on stdout at the configured level). */
  readonly log?: WatchdogLogger;
  readonly now?: () => number;
  /** Stops watching, as SIGTERM does (tests). */
  readonly signal?: AbortSignal;
  /** Lease holder id (default `watchdog:<host>:<pid>:<nonce>`). */
  readonly holder?: string;
}

interface WatchdogCliOptions {
  readonly config?: string;
  readonly policy: WatchdogPolicy;
  readonly once?: boolean;
  readonly poll: number;
  readonly grace: number;
  readonly deadline: number;
  readonly slippage: number;
}

class WatchdogCommandError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = 'WatchdogCommandError';
    this.exitCode = exitCode;
  }
}

const PaperKeysSchema = z.object({ master: z.string().regex(/^0x[0-9a-fA-F]{64}$/), agent: z.string().regex(/^0x[0-9a-fA-F]{64}$/) });

async function agentWallet(cfg: KeelConfig): Promise<ethers.Wallet> {
  if (cfg.keystore) {
    if (!cfg.keystorePasswordFile) throw new WatchdogCommandError('KEEL_KEYSTORE_PASSWORD_FILE is required with KEEL_KEYSTORE', 2);
    const json = readFileSync(cfg.keystore, 'utf8');
    const password = readFileSync(cfg.keystorePasswordFile, 'utf8').trimEnd();
    const w = await ethers.Wallet.fromEncryptedJson(json, password);
    return new ethers.Wallet(w.privateKey);
  }
  if (cfg.privateKey) return new ethers.Wallet(cfg.privateKey);
  throw new WatchdogCommandError('no agent key: set KEEL_KEYSTORE (+ KEEL_KEYSTORE_PASSWORD_FILE) or, off mainnet, KEEL_PRIVATE_KEY', 2);
}

async function venueIdentity(cfg: KeelConfig): Promise<{ apiUrl: string; wallet: ethers.Wallet; account: string }> {
  if (cfg.network !== 'paper') {
    if (!cfg.account) throw new WatchdogCommandError('KEEL_ACCOUNT (the master account the agent trades for) is required off paper', 2);
    return { apiUrl: cfg.apiUrl ?? (cfg.network === 'mainnet' ? MAINNET_URL : TESTNET_URL), wallet: await agentWallet(cfg), account: cfg.account };
  }
  if (!cfg.apiUrl) {
    throw new WatchdogCommandError('paper: KEEL_API_URL is required: the embedded simulator dies (or hangs) with the runtime, so the watchdog needs a simulator of its own (keel sim)', 2);
  }
  const file = path.join(cfg.dataDir, 'paper-keys.json');
  if (!existsSync(file)) throw new WatchdogCommandError(`paper: no paper account in ${cfg.dataDir} (${file} is missing): start keel run first`, 2);
  let keys: z.infer<typeof PaperKeysSchema>;
  try {
    keys = PaperKeysSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    throw new WatchdogCommandError(`paper: ${file} is not a paper key file`, 2);
  }
  return { apiUrl: cfg.apiUrl, wallet: new ethers.Wallet(keys.agent), account: new ethers.Wallet(keys.master).address.toLowerCase() };
}

/** Runs the watchdog; resolves with the exit code. */
async function runCommand(o: WatchdogCliOptions, deps: WatchdogCommandDeps): Promise<number> {
  let cfg: KeelConfig;
  try {
    cfg = loadConfig({ env: deps.env ?? process.env, ...(o.config ? { file: o.config } : {}) });
  } catch (e) {
    if (e instanceof ConfigError) throw new WatchdogCommandError(e.message, 2);
    throw e;
  }
  const log: WatchdogLogger = deps.log ?? createLogger({ level: cfg.log.level, name: 'keel-watchdog' });
  const now = deps.now ?? Date.now;
  const id = await venueIdentity(cfg);
  const holder = deps.holder ?? holderId('watchdog');

  // Stop on SIGINT / SIGTERM only when running as the process itself (no test signal given).
  const ac = new AbortController();
  const signal = deps.signal ?? ac.signal;
  const onSignal = () => ac.abort();
  if (!deps.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const store = await openStore({ path: path.join(cfg.dataDir, 'keel.sqlite'), clock: now });
  const venue = createHyperliquidVenue({ network: cfg.network, apiUrl: id.apiUrl, wallet: id.wallet, account: id.account, timeoutMs: cfg.orders.submitTimeoutMs, now });
  try {
    log.info({ network: cfg.network, url: id.apiUrl, account: id.account, dataDir: cfg.dataDir, policy: o.policy }, 'keel watchdog starting');
    const oid = createOidCanceller({ apiUrl: id.apiUrl, wallet: id.wallet, network: cfg.network, timeoutMs: cfg.orders.submitTimeoutMs, venue });
    const out = await runWatchdog({
      store,
      venue,
      holder,
      policy: o.policy,
      now,
      log,
      pollMs: o.poll,
      graceMs: o.grace,
      once: o.once === true,
      signal,
      deadlineMs: o.deadline,
      slippagePct: o.slippage,
      cancelByOid: oid.cancelByOid,
      expiresAfterMs: cfg.orders.expiresAfterMs,
      requestTimeoutMs: cfg.orders.submitTimeoutMs,
    });
    const last = out.actions.at(-1);
    return out.stoppedBy === 'once' && last && !last.ok ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await venue.close();
    store.close();
  }
}

function intAtLeast(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min} (ms)`);
    return n;
  };
}

function percent(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || n > 50) throw new InvalidArgumentError('--slippage must be a percentage in (0, 50]');
  return n;
}

function policy(v: string): WatchdogPolicy {
  if (!(WATCHDOG_POLICIES as readonly string[]).includes(v)) throw new InvalidArgumentError(`--policy must be one of ${WATCHDOG_POLICIES.join(', ')}`);
  return v as WatchdogPolicy;
}

/**
 * Adds `keel watchdog` to a commander program. Failures go through `command.error` (one line,
 * exit code 1 not clean, 2 refused or misconfigured); a clean `--once` or a signal exits 0.
 *
 * @example registerWatchdog(program); await program.parseAsync(['node', 'keel', 'watchdog', '--policy', 'flatten']);
 */
export function registerWatchdog(program: Command, deps: WatchdogCommandDeps = {}): void {
  const cmd = program
    .command('watchdog')
    .description('the independent watchdog: when the runtime stops renewing its lease, cancel every order and (policy flatten) close every position')
    .option('--config <file>', 'configuration file (JSON or YAML); KEEL_* environment variables win')
    .option('--policy <policy>', 'cancel: cancel every order; flatten: also close every position', policy, 'flatten' as WatchdogPolicy)
    .option('--once', 'exit after the first action')
    .option('--poll <ms>', 'how often the lease is read', intAtLeast('--poll', 1), 1_000)
    .option('--grace <ms>', 'how long the lease must have been expired before acting', intAtLeast('--grace', 0), 5_000)
    .option('--deadline <ms>', 'give up an action after this many ms and report what is left', intAtLeast('--deadline', 1), 60_000)
    .option('--slippage <pct>', 'price cap of each close, in % from the mid', percent, 1);
  cmd.action(async (o: WatchdogCliOptions) => {
    let code = 1;
    try {
      code = await runCommand(o, deps);
    } catch (e) {
      const c = e instanceof WatchdogCommandError ? e.exitCode : 1;
      cmd.error(`keel watchdog: ${(e as Error).message.split('\n')[0]}`, { exitCode: c, code: 'keel.watchdog' });
    }
    if (code !== 0) cmd.error('keel watchdog: acted, but the venue was not clean by the deadline', { exitCode: code, code: 'keel.watchdog' });
  });
}
