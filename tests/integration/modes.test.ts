/**
 * Acceptance 2 of the resilience issue, on real processes: `keel run` against an external
 * `keel sim` (KEEL_API_URL), each fault class driving its mode change and the recovery.
 *   (a) WebSocket down → Degraded (the feed falls back to REST polling) → faults off → Normal after
 *       the (shortened) hysteresis;
 *   (b) exchange outage → Critical (the feed goes stale on both paths), the gate `reducing`, no
 *       entry committed while Critical → faults off → Normal;
 *   (c) kill switch (`keel kill --yes`) → Emergency, the venue flat with no open orders within the
 *       flatten deadline; `keel resume` does not leave it; it survives a restart; `keel ack` after a
 *       clean reconciliation leaves it.
 *
 * The hysteresis comes from a configuration file (`keel run --config`), as an operator sets it.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ChildHandle, eventually, killAll, removeTempDirs, replayWindow, runCli, setFaults, simState, startSim, tempDir, type KeelStatus, type LogLine } from '../helpers/processes.ts';

afterEach(killAll);
afterAll(removeTempDirs);

interface Status extends KeelStatus {
  readonly mode: string;
  readonly gate: string;
  readonly conditions: readonly string[];
  readonly feed: { readonly source: string; readonly stale: boolean };
}

interface Run {
  readonly child: ChildHandle;
  readonly opsUrl: string;
  /** The resolved `host:port` of the ops server, for the CLI's KEEL_HTTP_ADDR. */
  readonly addr: string;
  status(): Promise<Status>;
}

/** `keel run --config <file>` against `apiUrl`; resolves once the ops server listens. */
async function startRun(opts: { dataDir: string; apiUrl: string; config: string; name?: string }): Promise<Run> {
  const child = new ChildHandle(opts.name ?? 'keel run', ['run', '--config', opts.config], { KEEL_DATA_DIR: opts.dataDir, KEEL_HTTP_ADDR: '127.0.0.1:0', KEEL_API_URL: opts.apiUrl });
  const line = await child.waitForMsg('ops http listening', 30_000);
  const opsUrl = String(line.url);
  return {
    child,
    opsUrl,
    addr: new URL(opsUrl).host,
    async status() {
      const r = await fetch(`${opsUrl}/status`, { signal: AbortSignal.timeout(5_000) });
      if (!r.ok) throw new Error(`GET ${opsUrl}/status: HTTP ${r.status}`);
      return (await r.json()) as Status;
    },
  };
}

async function simSpeed(url: string, speed: number): Promise<void> {
  const r = await fetch(`${url}/_sim/clock`, { method: 'POST', body: JSON.stringify({ speed }), signal: AbortSignal.timeout(5_000) });
  expect(r.ok).toBe(true);
}

function configFile(dir: string, hysteresisMs: number): string {
  const file = path.join(dir, 'keel.yaml');
  writeFileSync(file, `mode:\n  hysteresisMs: ${hysteresisMs}\n`);
  return file;
}

/** Polls /status until `pred` holds; returns that status. */
function statusUntil(run: Run, what: string, pred: (s: Status) => boolean, timeoutMs: number): Promise<Status> {
  return eventually(
    async () => {
      const s = await run.status();
      return pred(s) ? s : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `${what}\n${run.child.tail(15)}` },
  );
}

const modeLine = (from: string, to: string) => `mode ${from} → ${to}`;
const modeChanges = (run: Run) => run.child.messages(/^mode \w+ → \w+$/).map((l) => l.msg);
/**
 * The log line of a transition `/status` already shows: the child's stdout reaches this process
 * on its own schedule, so wait for it rather than read what has arrived.
 */
const modeLogged = (run: Run, from: string | RegExp, to: string) =>
  run.child.waitFor((l) => (typeof from === 'string' ? l.msg === modeLine(from, to) : from.test(l.msg) && l.msg.endsWith(`→ ${to}`)), { timeoutMs: 5_000, what: `mode … → ${to}` });

describe('operating modes driven by the simulator’s fault classes', () => {
  it('WebSocket down → Degraded → recovered → Normal after the hysteresis', { timeout: 60_000 }, async () => {
    const { url } = await startSim({ speed: 60, seed: 11 });
    const dir = tempDir('modes-ws');
    const run = await startRun({ dataDir: path.join(dir, 'data'), apiUrl: url, config: configFile(dir, 2_000) });
    await run.child.waitForMsg('reconciled with the venue', 20_000);
    await statusUntil(run, 'Normal on the WebSocket', (s) => s.mode === 'Normal' && s.feed.source === 'ws', 20_000);

    await setFaults(url, { wsDisconnect: 1 });
    const degraded = await statusUntil(run, 'Degraded', (s) => s.mode === 'Degraded', 20_000);
    expect(degraded.conditions).toContain('wsDown');
    expect(degraded.feed.source).toBe('rest');
    expect(degraded.gate).toBe('active');
    const down = await modeLogged(run, 'Normal', 'Degraded');
    expect((down as LogLine & { conditions: string[] }).conditions).toContain('wsDown');

    await setFaults(url, {});
    const normal = await statusUntil(run, 'back to Normal', (s) => s.mode === 'Normal', 25_000);
    expect(normal.feed.source).toBe('ws');
    expect(normal.conditions).toEqual([]);
    const up = await modeLogged(run, 'Degraded', 'Normal');
    expect(String(up.reason)).toMatch(/clear for 2000 ms/);
    expect(modeChanges(run)).toEqual([modeLine('Normal', 'Degraded'), modeLine('Degraded', 'Normal')]);
  });

  it('exchange outage → Critical, gate reducing, no entries while Critical → recovered → Normal', { timeout: 75_000 }, async () => {
    // 110 market-minutes into the recorded day at 600×: the default strategy signals every few
    // seconds, so signals reach the gate while it is still reducing after the outage.
    const dir = tempDir('modes-outage');
    const { url } = await startSim({ speed: 600, seed: 12, data: replayWindow(dir, 110) });
    // A hysteresis long enough that the candles backfilled after the outage (held until the info
    // breaker lets the REST backfill through, ≤ its 10 s reset) produce signals while Critical.
    const run = await startRun({ dataDir: path.join(dir, 'data'), apiUrl: url, config: configFile(dir, 12_000) });
    await run.child.waitForMsg('reconciled with the venue', 20_000);
    await statusUntil(run, 'Normal on the WebSocket', (s) => s.mode === 'Normal' && s.feed.source === 'ws', 20_000);

    await setFaults(url, { outage: 1 });
    // The WebSocket is refused (Degraded at once); REST answers 502 (info breaker open); once
    // neither path has delivered for the feed's both-silent period (15 s) the feed is stale.
    const critical = await statusUntil(run, 'Critical', (s) => s.mode === 'Critical', 30_000);
    expect(critical.conditions).toContain('feedStale');
    expect(critical.feed.stale).toBe(true);
    expect(critical.gate).toBe('reducing');
    const entered = run.child.lines.indexOf(await modeLogged(run, /^mode \w+ → /, 'Critical'));
    expect(entered).toBeGreaterThanOrEqual(0);
    expect(run.child.lines[entered]!.reason).toMatch(/stale on both paths/);

    await setFaults(url, {});
    const normal = await statusUntil(run, 'back to Normal', (s) => s.mode === 'Normal', 45_000);
    expect(normal.gate).toBe('active');
    expect(normal.feed).toEqual({ source: 'ws', stale: false });

    await modeLogged(run, 'Degraded', 'Normal');
    const left = run.child.lines.findIndex((l, i) => i > entered && /^mode Critical → \w+$/.test(l.msg));
    expect(left).toBeGreaterThan(entered);
    const whileCritical = run.child.lines.slice(entered, left);
    expect(whileCritical.filter((l) => l.msg === 'entry intent committed' || l.msg === 'risk verdict: approved')).toEqual([]);
    // Not vacuous: signals did reach the gate while Critical, and it refused them as reduce-only.
    const denied = whileCritical.filter((l) => l.msg === 'risk verdict: denied');
    expect(denied.length, run.child.tail(40)).toBeGreaterThan(0);
    expect(denied.every((l) => l.reason === 'gate_reducing')).toBe(true);
    expect(modeChanges(run)).toEqual([modeLine('Normal', 'Degraded'), modeLine('Degraded', 'Critical'), modeLine('Critical', 'Degraded'), modeLine('Degraded', 'Normal')]);
  });

  it('kill switch → Emergency, flat within the deadline; resume and a restart keep it; ack after a clean reconciliation leaves it', { timeout: 90_000 }, async () => {
    const dir = tempDir('modes-kill');
    const { url } = await startSim({ speed: 600, seed: 13, data: replayWindow(dir, 110) });
    const dataDir = path.join(dir, 'data');
    const config = configFile(dir, 2_000);
    const run = await startRun({ dataDir, apiUrl: url, config });
    const account = (await run.child.waitForMsg('keel starting', 10_000)).account as string;

    // Wait for a position with its protective orders resting on the venue, then slow the market
    // to 1× so no stop or target closes it before the kill switch does.
    const positionWithOrders = () =>
      eventually(
        async () => {
          const sim = await simState(url);
          const acct = sim.accounts.find((a) => a.address === account);
          const open = sim.openOrders.filter((o) => o.user === account);
          return acct?.positions.some((p) => Number(p.szi) !== 0) && open.length > 0 ? true : undefined;
        },
        { timeoutMs: 15_000, what: 'a position and open orders on the venue' },
      );
    await run.child.waitForMsg('protecting position', 40_000);
    await positionWithOrders();
    await simSpeed(url, 1);
    await positionWithOrders();

    const cli = (cmd: string[]) => runCli(cmd, { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: run.addr }, 45_000);
    const killed = await cli(['kill', '--yes']);
    expect(killed.exit.code, killed.stderr + killed.stdout).toBe(0);
    const answer = JSON.parse(killed.stdout) as { mode: string; flatten: { flat: boolean; elapsedMs: number; cancelled: number; closeOrders: unknown[] } };
    expect(answer.mode).toBe('Emergency');
    expect(answer.flatten.flat).toBe(true);
    // Not vacuous: the kill cancelled resting orders and closed a position.
    expect(answer.flatten.cancelled).toBeGreaterThan(0);
    expect(answer.flatten.closeOrders.length).toBeGreaterThan(0);
    expect(answer.flatten.elapsedMs).toBeLessThanOrEqual(30_000);
    const killedAt = run.child.lines.length;
    await simSpeed(url, 600);

    const st = await run.status();
    expect(st.mode).toBe('Emergency');
    expect(st.conditions).toContain('kill');
    expect(st.gate).toBe('halted');
    const sim = await simState(url);
    expect(sim.accounts.find((a) => a.address === account)!.positions.filter((p) => Number(p.szi) !== 0)).toEqual([]);
    expect(sim.openOrders.filter((o) => o.user === account)).toEqual([]);
    expect(String((await modeLogged(run, /^mode \w+ → /, 'Emergency')).reason)).toMatch(/^kill switch by cli:/);
    expect(run.child.messages(/^mode \w+ → Emergency$/).length).toBe(1);

    // `resume` is for a pause: it does not leave Emergency.
    const resumed = await cli(['resume']);
    expect(resumed.exit.code, resumed.stderr).toBe(0);
    const afterResume = await run.status();
    expect(afterResume.mode).toBe('Emergency');
    expect(afterResume.gate).toBe('halted');

    // Persisted: a restart comes back in Emergency and opens nothing.
    expect(await run.child.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(run.child.lines.slice(killedAt).filter((l) => l.msg === 'entry intent committed')).toEqual([]);
    const again = await startRun({ dataDir, apiUrl: url, config, name: 'keel run (restart)' });
    await again.child.waitForMsg('reconciled with the venue', 20_000);
    expect((await again.child.waitForMsg('mode restored from the database', 1_000)).mode).toBe('Emergency');
    const restarted = await again.status();
    expect(restarted.mode).toBe('Emergency');
    expect(restarted.gate).toBe('halted');
    // Signals keep coming and are refused at the halted gate (not vacuous: wait for one).
    const refused = await again.child.waitFor((l) => l.msg === 'risk verdict: denied' && l.reason === 'gate_halted', { timeoutMs: 20_000, what: 'a signal refused at the halted gate' });
    expect(refused.reason).toBe('gate_halted');
    expect((await again.status()).mode).toBe('Emergency');

    const acked = await runCli(['ack'], { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: again.addr }, 45_000);
    expect(acked.exit.code, acked.stderr + acked.stdout).toBe(0);
    const ack = JSON.parse(acked.stdout) as { ok: boolean; mode: string };
    expect(ack.ok).toBe(true);
    expect(ack.mode).not.toBe('Emergency');
    expect(again.child.lines.filter((l) => l.msg === 'entry intent committed' || l.msg === 'risk verdict: approved')).toEqual([]);
    const back = await statusUntil(again, 'Normal after the ack and the hysteresis', (s) => s.mode === 'Normal', 15_000);
    expect(back.gate).toBe('active');
    await modeLogged(again, /^mode \w+ → /, 'Normal');
    const leaving = again.child.messages(/^mode Emergency → \w+$/);
    expect(leaving.length).toBe(1);
    expect(String(leaving[0]!.reason)).toMatch(/operator ack by cli:.* after a clean reconciliation/);
  });
});
