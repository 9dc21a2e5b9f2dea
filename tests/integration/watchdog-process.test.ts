/**
 * `keel watchdog` end to end, in process (registerWatchdog on a fresh commander program), against
 * the REAL simulator through its own adapter and the runtime's REAL SQLite file:
 *  - a runtime that renews the lease (a real child process) keeps the watchdog idle: it polls,
 *    and touches nothing; when that runtime HANGS (its event loop blocked, the process alive), the
 *    watchdog takes the lease, cancels every order and flattens the account, logs the pino fatal
 *    alert 'watchdog acted', writes the audit trail, and exits 0 (`--once`);
 *  - a runtime coming back after the takeover is refused its renewal (it must stop);
 *  - a released lease (a clean stop) never triggers it; two watchdogs never both act;
 *  - `--policy cancel` cancels and leaves positions; paper without KEEL_API_URL is refused.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ExchangeClient } from '@nktkas/hyperliquid';
import { Command, CommanderError } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { registerWatchdog, type WatchdogCommandDeps } from '../../src/cli/watchdog-command.ts';
import { dec, roundPrice, toWire } from '../../src/domain/decimal.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { holderId, RuntimeLease } from '../../src/ops/watchdog-lease.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { leasesOf, type Lease } from '../../src/store/lease-repository.ts';
import { startRig, walletFor, type SdkRig } from '../helpers/sim.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
let rig: SdkRig;
const dirs: string[] = [];
const children: ChildProcess[] = [];
const stores: Store[] = [];

beforeAll(async () => {
  rig = await startRig('watchdog-process', { bookIntervalMs: 0 });
  rig.sim.step(1_000);
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  for (const s of stores.splice(0)) s.close();
});
afterAll(async () => {
  await rig.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Paper {
  readonly dataDir: string;
  readonly user: string;
  readonly env: Record<string, string>;
}

/** A paper data directory as `keel run` leaves it, with a BTC long, an ETH short and two resting orders (one without a cloid). */
async function paperAccount(label: string): Promise<Paper> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'keel-watchdog-'));
  dirs.push(dataDir);
  const master = walletFor(`watchdog:${label}:master`);
  const agent = walletFor(`watchdog:${label}:agent`);
  writeFileSync(path.join(dataDir, 'paper-keys.json'), JSON.stringify({ master: master.privateKey, agent: agent.privateKey }), { mode: 0o600 });
  rig.sim.fund(master.address, 100_000);
  const masterEx = new ExchangeClient({ transport: rig.http, wallet: master });
  await masterEx.approveAgent({ agentAddress: agent.address, agentName: 'keel' });
  const meta = await rig.info.meta();
  const mids = await rig.info.allMids();
  const ex = new ExchangeClient({ transport: rig.http, wallet: agent });
  const order = (coin: string, b: boolean, factor: number, s: string, tif: 'Ioc' | 'Gtc', c?: `0x${string}`) => {
    const a = meta.universe.findIndex((u) => u.name === coin);
    const p = toWire(roundPrice(dec(mids[coin]!).mul(factor), meta.universe[a]!.szDecimals));
    return { a, b, p, s, r: false, t: { limit: { tif } }, ...(c ? { c } : {}) };
  };
  await ex.order({ orders: [order('BTC', true, 1.01, '0.02', 'Ioc'), order('ETH', false, 0.99, '0.3', 'Ioc')], grouping: 'na' });
  await ex.order({ orders: [order('BTC', true, 0.9, '0.002', 'Gtc', `0x6b65656c${label.length.toString(16).padStart(24, 'e')}`)], grouping: 'na' });
  await masterEx.order({ orders: [order('ETH', true, 0.9, '0.1', 'Gtc')], grouping: 'na' });
  const env = { KEEL_NETWORK: 'paper', KEEL_API_URL: rig.sim.url, KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '127.0.0.1:9' };
  return { dataDir, user: master.address.toLowerCase(), env };
}

function truthOf(user: string) {
  const gt = rig.sim.exchange.groundTruth();
  return {
    positions: (gt.accounts.find((x) => x.address === user)?.positions ?? []).filter((p) => !dec(p.szi).isZero()),
    openOrders: gt.openOrders.filter((o) => o.user === user),
  };
}

interface Line {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** Runs `keel watchdog <args>` in process; resolves with its exit code and its pino lines. */
function startWatchdog(args: string[], deps: WatchdogCommandDeps & { env: Record<string, string> }) {
  const lines: Line[] = [];
  let stderr = '';
  let polls = 0;
  const log = createLogger({ level: 'info', name: 'keel-watchdog', destination: { write: (s: string) => void lines.push(JSON.parse(s) as Line) } });
  const program = new Command('keel').exitOverride().configureOutput({ writeErr: (s) => void (stderr += s), writeOut: () => {} });
  registerWatchdog(program, {
    log,
    now: () => {
      polls++;
      return Date.now();
    },
    ...deps,
  });
  const done = (async () => {
    try {
      await program.parseAsync(['node', 'keel', 'watchdog', ...args]);
      return 0;
    } catch (e) {
      if (e instanceof CommanderError) return e.exitCode;
      throw e;
    }
  })();
  return { done, lines, stderr: () => stderr, polls: () => polls };
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A stand-in for `keel run` as a real process: it acquires the lease in the data directory's
 * database and renews it (RuntimeLease, as the runtime does), printing one line per renewal; on
 * "hang" on its stdin it blocks its event loop for good, as a wedged runtime would.
 */
function fakeRuntime(dataDir: string, holder: string): { proc: ChildProcess; renewals: () => number } {
  const code = `
    import { openStore } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/store/index.ts')).href)};
    import { leasesOf } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/store/lease-repository.ts')).href)};
    import { RuntimeLease } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'src/ops/watchdog-lease.ts')).href)};
    const store = await openStore({ path: ${JSON.stringify(path.join(dataDir, 'keel.sqlite'))} });
    const lease = new RuntimeLease({ leases: leasesOf(store), holder: ${JSON.stringify(holder)}, now: Date.now, ttlMs: 600, renewEveryMs: 100,
      onWrite: (e) => process.stdout.write(JSON.stringify(e) + '\\n'), onLost: () => process.stdout.write('lost\\n') });
    const r = lease.acquire();
    if (!r.ok) { process.stdout.write('refused\\n'); process.exit(3); }
    lease.start();
    process.stdin.on('data', (d) => { if (String(d).includes('hang')) { for (;;) {} } });
  `;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  let renewals = 0;
  proc.stdout!.on('data', (d: Buffer) => {
    renewals += String(d).split('\n').filter((l) => l.includes('"watchdog.dbWrite"') && l.includes('"ok":true')).length;
  });
  return { proc, renewals: () => renewals };
}

async function storeOf(p: Paper): Promise<Store> {
  const s = await openStore({ path: path.join(p.dataDir, 'keel.sqlite') });
  stores.push(s);
  return s;
}

describe('keel watchdog', () => {
  it('idle while the runtime renews its lease; when the runtime hangs it takes the lease, flattens, alerts (fatal) and exits 0', async () => {
    const p = await paperAccount('hang');
    const before = truthOf(p.user);
    expect(before.positions).toHaveLength(2);
    expect(before.openOrders).toHaveLength(2);
    const store = await storeOf(p);
    const runtimeHolder = holderId('runtime', { nonce: 'aaaa0001' });
    const runtime = fakeRuntime(p.dataDir, runtimeHolder);
    await waitFor('the runtime to hold the lease', () => (leasesOf(store).current()?.holder === runtimeHolder ? true : undefined));

    const w = startWatchdog(['--once', '--poll', '50', '--grace', '300'], { env: p.env });
    // The runtime is healthy: the watchdog polls (dozens of times) and does nothing.
    await waitFor('the watchdog to poll while the runtime renews', () => (w.polls() >= 30 && runtime.renewals() >= 10 ? true : undefined));
    expect(w.lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(w.lines.map((l) => l.msg)).toContain('watchdog: lease fresh');
    expect(truthOf(p.user)).toEqual(before);
    expect(leasesOf(store).current()).toMatchObject({ holder: runtimeHolder, epoch: 1 });
    expect(store.audit.list({ action: 'watchdog.takeover' })).toEqual([]);

    // The runtime hangs: alive, silent.
    runtime.proc.stdin!.write('hang\n');
    const code = await w.done;
    expect(w.stderr()).toBe('');
    expect(code).toBe(0);
    expect(truthOf(p.user)).toEqual({ positions: [], openOrders: [] });

    const alert = w.lines.filter((l) => l.msg === 'watchdog acted');
    expect(alert).toHaveLength(1);
    expect(alert[0]).toMatchObject({ level: 60, name: 'keel-watchdog', policy: 'flatten', from: runtimeHolder, ok: true, result: { flat: true } });
    expect(alert[0]!.silentForMs as number).toBeGreaterThanOrEqual(900);

    const lease = leasesOf(store).current()!;
    expect(lease.holder).toMatch(/^watchdog:/);
    expect(lease.epoch).toBe(2);
    expect(lease.releasedAt).toBeDefined();
    const takeover = store.audit.list({ action: 'watchdog.takeover' });
    const result = store.audit.list({ action: 'watchdog.result' });
    expect(takeover).toHaveLength(1);
    expect(result).toHaveLength(1);
    expect(takeover[0]).toMatchObject({ actor: 'watchdog', detail: { from: runtimeHolder, policy: 'flatten' } });
    expect(result[0]).toMatchObject({ actor: 'watchdog', detail: { ok: true, flat: true } });
    expect(takeover[0]!.id).toBeLessThan(result[0]!.id);
    // The closes were committed as intents before they were sent, and recorded.
    const closes = store.orders.recent().filter((o) => o.kind === 'flatten');
    expect(closes.map((c) => [c.coin, c.state]).sort()).toEqual([
      ['BTC', 'filled'],
      ['ETH', 'filled'],
    ]);
    for (const c of closes) expect(c).toMatchObject({ reduceOnly: true, tif: 'Ioc' });
  });

  it('a runtime coming back after the takeover is refused its renewal and told it lost the lease', async () => {
    const p = await paperAccount('comeback');
    const store = await storeOf(p);
    const lost: Lease[] = [];
    const runtime = new RuntimeLease({ leases: leasesOf(store), holder: holderId('runtime', { nonce: 'bbbb0002' }), now: Date.now, ttlMs: 400, renewEveryMs: 100, onLost: (l) => lost.push(l) });
    expect(runtime.acquire()).toMatchObject({ ok: true, acquired: true });
    // It stops renewing (a long pause) and the watchdog acts.
    const w = startWatchdog(['--once', '--poll', '50', '--grace', '100'], { env: p.env });
    expect(await w.done).toBe(0);
    expect(truthOf(p.user)).toEqual({ positions: [], openOrders: [] });
    // Back from its pause: its renewal is refused, and it knows.
    const r = runtime.renewNow();
    expect(r).toMatchObject({ ok: false, reason: 'held_by_other' });
    expect(runtime.lost()).toBe(true);
    expect(lost.map((l) => l.holder.split(':')[0])).toEqual(['watchdog']);
  });

  it('a released lease (a clean stop) never triggers it, however long ago it expired', async () => {
    const p = await paperAccount('released');
    const store = await storeOf(p);
    const holder = holderId('runtime', { nonce: 'cccc0003' });
    const runtime = new RuntimeLease({ leases: leasesOf(store), holder, now: Date.now, ttlMs: 200, renewEveryMs: 50 });
    runtime.acquire();
    runtime.stop({ release: true });
    const ac = new AbortController();
    const w = startWatchdog(['--poll', '20', '--grace', '50'], { env: p.env, signal: ac.signal });
    await waitFor('many polls', () => (w.polls() >= 40 ? true : undefined));
    ac.abort();
    expect(await w.done).toBe(0);
    expect(w.lines.map((l) => l.msg)).toContain('watchdog: lease released');
    expect(w.lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(truthOf(p.user).positions).toHaveLength(2);
    expect(leasesOf(store).current()).toMatchObject({ holder, epoch: 1 });
  });

  it('two watchdogs racing for one lease that expires: exactly one acts', async () => {
    const p = await paperAccount('two');
    const store = await storeOf(p);
    const runtime = new RuntimeLease({ leases: leasesOf(store), holder: holderId('runtime', { nonce: 'dddd0004' }), now: Date.now, ttlMs: 300, renewEveryMs: 50 });
    runtime.acquire();
    runtime.start();
    const ac = new AbortController();
    const a = startWatchdog(['--poll', '10', '--grace', '0'], { env: p.env, signal: ac.signal, holder: holderId('watchdog', { nonce: 'aaaa' }) });
    // (Opened one after the other: in one process, a second open would wait on the first's migration lock.)
    await waitFor('the first watchdog to watch', () => (a.lines.some((l) => l.msg === 'watchdog: lease fresh') ? true : undefined));
    const b = startWatchdog(['--poll', '10', '--grace', '0'], { env: p.env, signal: ac.signal, holder: holderId('watchdog', { nonce: 'bbbb' }) });
    await waitFor('the second watchdog to watch', () => (b.lines.some((l) => l.msg === 'watchdog: lease fresh') ? true : undefined));
    runtime.stop();
    await waitFor('one watchdog to act', () => ([...a.lines, ...b.lines].some((l) => l.msg === 'watchdog acted') ? true : undefined));
    // Both keep watching a while longer: the lease is the winner's, then released; nobody acts again.
    const polls = a.polls() + b.polls();
    await waitFor('more polls', () => (a.polls() + b.polls() >= polls + 40 ? true : undefined));
    ac.abort();
    expect([await a.done, a.stderr(), await b.done, b.stderr()]).toEqual([0, '', 0, '']);
    expect([...a.lines, ...b.lines].filter((l) => l.msg === 'watchdog acted')).toHaveLength(1);
    expect(store.audit.list({ action: 'watchdog.takeover' })).toHaveLength(1);
    expect(leasesOf(store).current()).toMatchObject({ epoch: 2 });
    expect(truthOf(p.user)).toEqual({ positions: [], openOrders: [] });
  });

  it('--policy cancel cancels every order (with or without a cloid) and leaves the positions', async () => {
    const p = await paperAccount('cancel');
    const store = await storeOf(p);
    leasesOf(store).renew(holderId('runtime', { nonce: 'eeee0005' }), 100, Date.now() - 10_000);
    const w = startWatchdog(['--once', '--policy', 'cancel', '--poll', '10', '--grace', '0'], { env: p.env });
    expect(await w.done).toBe(0);
    const t = truthOf(p.user);
    expect(t.openOrders).toEqual([]);
    expect(t.positions).toHaveLength(2);
    expect(w.lines.find((l) => l.msg === 'watchdog acted')).toMatchObject({ level: 60, policy: 'cancel', ok: true, result: { done: true, cancelled: 2 } });
  });

  it('paper without KEEL_API_URL is refused with one line (exit 2), a bad policy too', async () => {
    const p = await paperAccount('nourl');
    const { KEEL_API_URL: _gone, ...env } = p.env;
    const w = startWatchdog(['--once'], { env });
    expect(await w.done).toBe(2);
    expect(w.stderr().trim().split('\n')).toHaveLength(1);
    expect(w.stderr()).toMatch(/KEEL_API_URL is required/);
    const bad = startWatchdog(['--policy', 'panic'], { env: p.env });
    expect(await bad.done).not.toBe(0);
    expect(bad.stderr()).toMatch(/--policy must be one of cancel, flatten/);
    expect(truthOf(p.user).positions).toHaveLength(2);
  });
});
