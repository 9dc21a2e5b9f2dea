/**
 * Process-level test fixtures: `keel sim` and `keel run` as real child processes (Node 24 on
 * src/cli/main.ts), their JSON log lines, waits on log messages, SIGTERM / SIGKILL, a read-only
 * view of keel's database, and the comparison of that database with the simulator's ground truth.
 *
 * Invariants:
 * - Every child started here is tracked until it has exited; `killAll()` (call it in `afterEach`)
 *   SIGKILLs what is left and waits, and a process `exit` hook SIGKILLs stragglers, so a failing
 *   test never leaves a runtime or simulator behind.
 * - A wait that cannot succeed fails at once with the child's recent output (the process exited),
 *   or at its deadline: never a silent hang.
 * - Database reads go through `openRetainedDatabase` (Node 24.21: a garbage-collected
 *   better-sqlite3 object aborts the process), read-only, with a fixed set of statements.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { openRetainedDatabase } from '../../src/store/native-lifetime.ts';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(REPO_ROOT, 'src/cli/main.ts');

/** One pino line of a child's stdout (non-JSON lines keep their text in `msg`). */
export interface LogLine {
  readonly level?: number;
  readonly time?: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const live = new Set<ChildHandle>();

process.once('exit', () => {
  for (const c of live) c.proc.kill('SIGKILL');
});

interface Waiter {
  readonly pred: (l: LogLine) => boolean;
  readonly resolve: (l: LogLine) => void;
  readonly reject: (e: Error) => void;
}

/** A child process of the CLI with its log collected. */
export class ChildHandle {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<Exit>;
  #stderr = '';
  #stdout = '';
  #exit: Exit | undefined;
  #waiters = new Set<Waiter>();

  constructor(name: string, args: readonly string[], env: Readonly<Record<string, string>>) {
    this.name = name;
    const base: Record<string, string> = {};
    // The parent's KEEL_* settings must not leak into a child: each test says what it wants.
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('KEEL_')) base[k] = v;
    this.proc = spawn(process.execPath, [MAIN, ...args], { cwd: REPO_ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    let buf = '';
    this.proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buf += chunk;
      if (this.#stdout.length < 1_000_000) this.#stdout += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (text.trim()) this.#onLine(text);
      }
    });
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-20_000);
    });
    this.exited = new Promise<Exit>((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        live.delete(this);
        for (const w of this.#waiters) w.reject(new Error(`${this.name} exited (code ${code}, signal ${signal}) while waiting\n${this.tail()}`));
        this.#waiters.clear();
        resolve(this.#exit);
      });
    });
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Raw stdout (the first megabyte). */
  get stdout(): string {
    return this.#stdout;
  }

  #onLine(text: string): void {
    let line: LogLine;
    try {
      const parsed: unknown = JSON.parse(text);
      line = typeof parsed === 'object' && parsed !== null && typeof (parsed as { msg?: unknown }).msg === 'string' ? (parsed as LogLine) : { msg: text };
    } catch {
      line = { msg: text };
    }
    this.lines.push(line);
    for (const w of this.#waiters) {
      if (w.pred(line)) {
        this.#waiters.delete(w);
        w.resolve(line);
      }
    }
  }

  /** Lines whose `msg` equals `msg` (or matches it). */
  messages(msg: string | RegExp): LogLine[] {
    return this.lines.filter((l) => matches(l, msg));
  }

  /**
   * Resolves with the first line (at index ≥ `from`, default 0: already collected lines count)
   * that satisfies `pred`; rejects when the process exits first or at the deadline.
   */
  waitFor(pred: (l: LogLine) => boolean, opts: { timeoutMs: number; from?: number; what?: string }): Promise<LogLine> {
    const seen = this.lines.slice(opts.from ?? 0).find(pred);
    if (seen) return Promise.resolve(seen);
    if (!this.running) return Promise.reject(new Error(`${this.name} is not running (${JSON.stringify(this.#exit)}): ${opts.what ?? 'condition'} never logged\n${this.tail()}`));
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`${this.name}: ${opts.what ?? 'condition'} not logged within ${opts.timeoutMs} ms\n${this.tail()}`));
      }, opts.timeoutMs);
      const w: Waiter = {
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.#waiters.add(w);
    });
  }

  waitForMsg(msg: string | RegExp, timeoutMs: number, from?: number): Promise<LogLine> {
    return this.waitFor((l) => matches(l, msg), { timeoutMs, what: `'${String(msg)}'`, ...(from !== undefined ? { from } : {}) });
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `graceMs` if it is still alive). */
  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 20_000): Promise<Exit> {
    if (!this.running) return this.#exit!;
    this.proc.kill(signal);
    if (signal === 'SIGKILL') return this.exited;
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Every collected line and stderr, for a failure's post-mortem. */
  dump(file: string): void {
    writeFileSync(file, `${this.lines.map((l) => JSON.stringify(l)).join('\n')}\n--- stderr ---\n${this.#stderr}`);
  }

  /** The last log lines and stderr, for failure messages. */
  tail(n = 25): string {
    const out = this.lines.slice(-n).map((l) => JSON.stringify(l).slice(0, 400));
    return `--- ${this.name} stdout (last ${out.length}) ---\n${out.join('\n')}\n--- stderr ---\n${this.#stderr.slice(-3_000)}`;
  }
}

function matches(l: LogLine, msg: string | RegExp): boolean {
  return typeof msg === 'string' ? l.msg === msg : msg.test(l.msg);
}

/** SIGKILLs every child still running and waits for them (use in `afterEach` / `afterAll`). */
export async function killAll(): Promise<void> {
  await Promise.all([...live].map((c) => c.kill('SIGKILL')));
}

// ── temp dirs ────────────────────────────────────────────────────────────────────────────────

const temps: string[] = [];

/** A fresh directory under the OS temp dir; `removeTempDirs()` deletes them all. */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), `keel-${prefix}-`));
  temps.push(d);
  return d;
}

export function removeTempDirs(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

// ── keel sim ─────────────────────────────────────────────────────────────────────────────────

export interface SimOrder {
  readonly oid: number;
  readonly cloid: string | null;
  readonly user: string;
  readonly coin: string;
  readonly side: 'B' | 'A';
  readonly px: string;
  readonly sz: string;
  readonly origSz: string;
  readonly filledSz: string;
  readonly reduceOnly: boolean;
  readonly isTrigger: boolean;
  readonly triggerPx?: string;
  readonly tpsl?: 'tp' | 'sl';
  readonly isMarket?: boolean;
  readonly status: string;
}

export interface SimPosition {
  readonly coin: string;
  readonly szi: string;
  readonly entryPx: string;
  readonly markPx: string;
}

/** The part of `GET /_sim/state` (src/sim/engine/exchange.ts groundTruth) the tests read. */
export interface SimState {
  readonly time: number;
  readonly accounts: readonly { readonly address: string; readonly balance: string; readonly accountValue: string; readonly positions: readonly SimPosition[] }[];
  readonly openOrders: readonly SimOrder[];
  readonly orders: readonly SimOrder[];
  readonly fills: readonly { readonly user: string; readonly oid: number; readonly tid: number; readonly cloid?: string; readonly coin: string }[];
}

export async function simState(url: string): Promise<SimState> {
  const r = await fetch(`${url}/_sim/state`, { signal: AbortSignal.timeout(5_000) });
  if (!r.ok) throw new Error(`GET ${url}/_sim/state: HTTP ${r.status}`);
  return (await r.json()) as SimState;
}

export async function setFaults(url: string, faults: Readonly<Record<string, number>>): Promise<void> {
  const r = await fetch(`${url}/_sim/faults`, { method: 'POST', body: JSON.stringify(faults), signal: AbortSignal.timeout(5_000) });
  if (!r.ok) throw new Error(`POST ${url}/_sim/faults: HTTP ${r.status} ${await r.text()}`);
}

/** `keel sim --port 0 …`; resolves once it prints its URL. */
export async function startSim(opts: { speed?: number; seed?: number; data?: string; args?: readonly string[] } = {}): Promise<{ sim: ChildHandle; url: string }> {
  const args = ['sim', '--port', '0', '--seed', String(opts.seed ?? 1), '--speed', String(opts.speed ?? 1), '--ip-weight', '1000000', ...(opts.data ? ['--data', opts.data] : []), ...(opts.args ?? [])];
  const sim = new ChildHandle('keel sim', args, {});
  const line = await sim.waitForMsg(/listening on http:\/\/127\.0\.0\.1:\d+/, 15_000);
  const url = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line.msg)![1]!;
  return { sim, url };
}

/**
 * A copy of the bundled candle data without its first `skipBars` minutes, so a simulator (300
 * history bars) starts its live replay `skipBars` minutes further into the recorded day: a window
 * dense with the default strategy's signals keeps the process tests short.
 */
export function replayWindow(dir: string, skipBars: number): string {
  const src = path.join(REPO_ROOT, 'data');
  const manifest = JSON.parse(readFileSync(path.join(src, 'markets.json'), 'utf8')) as { files: string[] }[];
  cpSync(path.join(src, 'markets.json'), path.join(dir, 'markets.json'));
  for (const entry of manifest) {
    // Only the first file of a market is trimmed; its rows are `t(ms offset),o,h,l,c,v`.
    entry.files.forEach((f, i) => {
      const rows = readFileSync(path.join(src, f), 'utf8').split('\n').filter((r) => r.trim());
      const kept = i === 0 ? rows.filter((r) => Number(r.split(',')[0]) >= skipBars * 60_000) : rows;
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), `${kept.join('\n')}\n`);
    });
  }
  return dir;
}

// ── keel run ─────────────────────────────────────────────────────────────────────────────────

export interface KeelProcess {
  readonly child: ChildHandle;
  readonly dataDir: string;
  /** The ops HTTP base URL (KEEL_HTTP_ADDR with port 0: read from the 'ops http listening' line). */
  readonly opsUrl: string;
  status(): Promise<KeelStatus>;
}

export interface KeelStatus {
  readonly venue: { readonly network: string; readonly url: string };
  readonly account: string;
  readonly positions: readonly { readonly coin: string; readonly szi: string }[];
  readonly openOrders: readonly { readonly cloid: string; readonly state: string }[];
  readonly lastReconciliation: unknown;
  readonly [key: string]: unknown;
}

/**
 * `keel run` with only the given KEEL_* settings (plus KEEL_DATA_DIR and a free loopback ops
 * port); resolves once the ops server listens (boot continues in the background).
 */
export async function startKeel(opts: { dataDir: string; env?: Readonly<Record<string, string>>; name?: string }): Promise<KeelProcess> {
  const child = new ChildHandle(opts.name ?? 'keel run', ['run'], { KEEL_DATA_DIR: opts.dataDir, KEEL_HTTP_ADDR: '127.0.0.1:0', ...opts.env });
  const line = await child.waitForMsg('ops http listening', 30_000);
  const opsUrl = String(line.url);
  return {
    child,
    dataDir: opts.dataDir,
    opsUrl,
    async status() {
      const r = await fetch(`${opsUrl}/status`, { signal: AbortSignal.timeout(5_000) });
      if (!r.ok) throw new Error(`GET ${opsUrl}/status: HTTP ${r.status}`);
      return (await r.json()) as KeelStatus;
    },
  };
}

/** Runs a short CLI command (e.g. `status`) to completion. */
export async function runCli(args: readonly string[], env: Readonly<Record<string, string>>, timeoutMs = 30_000): Promise<{ exit: Exit; stdout: string; stderr: string }> {
  const c = new ChildHandle(`keel ${args.join(' ')}`, args, env);
  const timer = setTimeout(() => c.proc.kill('SIGKILL'), timeoutMs);
  const exit = await c.exited;
  clearTimeout(timer);
  return { exit, stdout: c.stdout, stderr: c.stderr };
}

/** Polls `fn` until it returns a defined value; throws the last error / a timeout. */
export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, opts: { timeoutMs: number; intervalMs?: number; what?: string }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${opts.what ?? 'condition'} not met within ${opts.timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200));
  }
}

// ── keel's database, read-only ───────────────────────────────────────────────────────────────

export interface DbOrder {
  readonly cloid: string;
  readonly coin: string;
  readonly side: 'buy' | 'sell';
  readonly sz: string;
  readonly kind: string;
  readonly state: string;
  readonly oid: number | null;
  readonly filledSz: string;
  readonly reduceOnly: boolean;
  readonly triggerPx: string | null;
  readonly tpsl: string | null;
  readonly lastError: string | null;
}

export interface DbPosition {
  readonly coin: string;
  readonly szi: string;
  readonly stage: string;
  readonly stopCloid: string | null;
}

export interface DbFill {
  readonly tid: number;
  readonly oid: number;
  readonly cloid: string | null;
}

export interface DbView {
  orders(): DbOrder[];
  positions(): DbPosition[];
  fills(): DbFill[];
  tradeCount(): number;
  fillCount(): number;
  close(): void;
}

/** Opens `$dataDir/keel.sqlite` read-only (WAL: sees what the runtime has committed). */
export function openDbView(dataDir: string): DbView {
  const db: BetterSqlite3.Database = openRetainedDatabase(path.join(dataDir, 'keel.sqlite'), { readonly: true, fileMustExist: true });
  const orders = db.prepare('SELECT cloid, coin, side, sz, kind, state, oid, filled_sz AS filledSz, reduce_only AS reduceOnly, trigger_px AS triggerPx, tpsl, last_error AS lastError FROM orders ORDER BY seq');
  const positions = db.prepare('SELECT coin, szi, stage, stop_cloid AS stopCloid FROM positions ORDER BY coin');
  const fillRows = db.prepare('SELECT tid, oid, cloid FROM fills ORDER BY time, tid');
  const trades = db.prepare('SELECT count(*) AS n FROM trades').pluck();
  const fills = db.prepare('SELECT count(*) AS n FROM fills').pluck();
  return {
    orders: () => (orders.all() as (Omit<DbOrder, 'reduceOnly'> & { reduceOnly: number })[]).map((o) => ({ ...o, reduceOnly: o.reduceOnly === 1 })),
    positions: () => positions.all() as DbPosition[],
    fills: () => fillRows.all() as DbFill[],
    tradeCount: () => trades.get() as number,
    fillCount: () => fills.get() as number,
    close: () => {
      if (db.open) db.close();
    },
  };
}

// ── database ↔ venue agreement ───────────────────────────────────────────────────────────────

const SIM_CANCELLED = new Set(['canceled', 'marginCanceled', 'reduceOnlyCanceled', 'scheduledCancel', 'liquidatedCanceled', 'siblingFilledCanceled']);

function num(s: string | null | undefined): number {
  return s === null || s === undefined ? 0 : Number(s);
}

/**
 * Every way keel's database and the simulator disagree about `user`'s orders and positions
 * (empty = they agree). In-flight states (submitting, unknown, cancelling) count as disagreement:
 * callers retry until a quiet moment.
 */
export function disagreements(db: { orders: readonly DbOrder[]; positions: readonly DbPosition[]; fills?: readonly DbFill[] }, sim: SimState, user: string): string[] {
  const out: string[] = [];
  if (db.fills) {
    // Every venue fill of the account is applied once (keyed like the fills table: tid, oid).
    const ours = new Set(db.fills.map((f) => `${f.tid}/${f.oid}`));
    const venue = sim.fills.filter((f) => f.user === user);
    for (const f of venue) if (!ours.has(`${f.tid}/${f.oid}`)) out.push(`venue fill tid ${f.tid} oid ${f.oid} (${f.coin}) is not in keel's database`);
    if (db.fills.length !== venue.length) out.push(`keel holds ${db.fills.length} fills, the venue ${venue.length}`);
  }
  const mine = sim.orders.filter((o) => o.user === user);
  const simByCloid = new Map<string, SimOrder[]>();
  for (const o of mine) {
    if (!o.cloid) {
      out.push(`sim order ${o.oid} (${o.coin}) has no cloid: keel never sends one without`);
      continue;
    }
    simByCloid.set(o.cloid, [...(simByCloid.get(o.cloid) ?? []), o]);
  }
  const dbByCloid = new Map(db.orders.map((o) => [o.cloid, o]));
  for (const [cloid, list] of simByCloid) {
    if (list.length > 1) out.push(`cloid ${cloid} placed ${list.length} times on the venue (oids ${list.map((o) => o.oid).join(', ')})`);
    if (!dbByCloid.has(cloid)) out.push(`sim order ${cloid} (oid ${list[0]!.oid}, ${list[0]!.status}) is not in keel's database`);
  }
  for (const o of db.orders) {
    const s = simByCloid.get(o.cloid)?.[0];
    const where = `${o.cloid} (${o.kind} ${o.coin}, db ${o.state}, sim ${s ? `${s.status} oid ${s.oid}` : 'absent'})`;
    switch (o.state) {
      case 'intent':
        if (s) out.push(`${where}: placed on the venue but still an intent in the database`);
        break;
      case 'submitting':
      case 'unknown':
      case 'cancelling':
        out.push(`${where}: in flight`);
        break;
      case 'rejected':
        if (s && s.status !== 'rejected') out.push(`${where}: rejected in the database but live on the venue`);
        break;
      case 'resting':
      case 'partially_filled':
        if (!s || s.status !== 'open') out.push(`${where}: open in the database, not open on the venue`);
        break;
      case 'filled':
        if (!s || s.status !== 'filled') out.push(`${where}: filled in the database, not on the venue`);
        break;
      case 'cancelled':
        if (!s || !SIM_CANCELLED.has(s.status)) out.push(`${where}: cancelled in the database, not on the venue`);
        break;
      default:
        out.push(`${where}: unexpected state`);
    }
    if (s && (o.state === 'filled' || o.state === 'cancelled' || o.state === 'partially_filled') && num(o.filledSz) !== num(s.filledSz)) {
      out.push(`${where}: filled ${o.filledSz} in the database, ${s.filledSz} on the venue`);
    }
  }
  const acct = sim.accounts.find((a) => a.address === user);
  const venuePos = new Map((acct?.positions ?? []).filter((p) => num(p.szi) !== 0).map((p) => [p.coin, num(p.szi)]));
  const ourPos = new Map(db.positions.filter((p) => num(p.szi) !== 0).map((p) => [p.coin, num(p.szi)]));
  for (const coin of new Set([...venuePos.keys(), ...ourPos.keys()])) {
    if (venuePos.get(coin) !== ourPos.get(coin)) out.push(`position ${coin}: database ${ourPos.get(coin) ?? 0}, venue ${venuePos.get(coin) ?? 0}`);
  }
  return out;
}

/**
 * Positions on the venue that no open reduce-only stop-loss trigger covers in full (the worst
 * failure: an unprotected position).
 */
export function unprotectedPositions(sim: SimState, user: string): string[] {
  const acct = sim.accounts.find((a) => a.address === user);
  const out: string[] = [];
  for (const p of acct?.positions ?? []) {
    const szi = num(p.szi);
    if (szi === 0) continue;
    const closing = szi > 0 ? 'A' : 'B';
    const cover = sim.openOrders
      .filter((o) => o.user === user && o.coin === p.coin && o.isTrigger && o.reduceOnly && o.tpsl === 'sl' && o.side === closing)
      .reduce((a, o) => a + num(o.sz), 0);
    if (cover + 1e-12 < Math.abs(szi)) out.push(`${p.coin} ${p.szi}: stop cover ${cover}`);
  }
  return out;
}
