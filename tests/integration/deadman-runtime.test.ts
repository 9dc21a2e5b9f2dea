/**
 * Issue 4, acceptance 3 (dead-man part), at process level: a real `keel run` against an external
 * `keel sim` arms the venue's dead-man switch (`scheduleCancel`); once the runtime is SIGKILLed
 * nothing renews it, and at the armed time the simulator cancels every resting order of the
 * account with status `scheduledCancel`.
 *
 * Time: the runtime's DeadManKeeper is built without configuration (supervisor/runtime.ts), so its
 * horizon is the default 60 s, renewed every 20 s: after the kill the switch fires 40–60 s later
 * on the wall clock. Rather than wait, the test moves the simulator's exchange clock to just past
 * the armed time with `POST /_sim/clock {"step"}` (which freezes the wall clock into manual mode and
 * steps it). The runtime is dead by then, so the step changes nothing it did; the market is slowed
 * to 1× first so the stepped seconds do not trigger the stop or target before the switch fires.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { eventually, killAll, removeTempDirs, replayWindow, simState, startKeel, startSim, tempDir, type SimState } from '../helpers/processes.ts';

afterEach(killAll);
afterAll(removeTempDirs);

interface DeadManStatus {
  readonly running: boolean;
  readonly healthy: boolean;
  readonly expiry?: number;
}

type SimAccount = SimState['accounts'][number] & { readonly scheduledCancel: number | null };

async function simClock(url: string, body: object): Promise<{ mode: string; now: number }> {
  const r = await fetch(`${url}/_sim/clock`, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(5_000) });
  expect(r.ok, `POST /_sim/clock ${JSON.stringify(body)}: HTTP ${r.status}`).toBe(true);
  return (await r.json()) as { mode: string; now: number };
}

describe('dead-man switch armed by the runtime', () => {
  it('a SIGKILLed runtime leaves its resting orders cancelled by the venue (scheduledCancel)', { timeout: 75_000 }, async () => {
    const dir = tempDir('deadman-run');
    // A replay window dense with signals at 600×: a position with its protective orders quickly.
    const { url } = await startSim({ speed: 600, seed: 21, data: replayWindow(dir, 110) });
    const keel = await startKeel({ dataDir: path.join(dir, 'data'), env: { KEEL_API_URL: url } });
    const account = String((await keel.child.waitForMsg('keel starting', 10_000)).account);

    const restingOrders = () =>
      eventually(
        async () => {
          const sim = await simState(url);
          const acct = sim.accounts.find((a) => a.address === account);
          const open = sim.openOrders.filter((o) => o.user === account);
          return acct?.positions.some((p) => Number(p.szi) !== 0) && open.length > 0 ? open : undefined;
        },
        { timeoutMs: 15_000, what: `a position and resting orders on the venue\n${keel.child.tail(15)}` },
      );
    await keel.child.waitForMsg('protecting position', 45_000);
    await restingOrders();
    await simClock(url, { speed: 1 });
    const before = await restingOrders();

    // The runtime armed the switch, and the venue holds the same time.
    const status = await keel.status();
    const dm = status['deadMan'] as DeadManStatus;
    expect(dm.running).toBe(true);
    expect(dm.healthy).toBe(true);
    expect(typeof dm.expiry).toBe('number');
    const armed = await simState(url);
    const acct = armed.accounts.find((a) => a.address === account) as SimAccount;
    expect(acct.scheduledCancel).not.toBeNull();
    expect(acct.scheduledCancel!).toBeGreaterThan(armed.time);
    // At most one renewal (every 20 s) apart, and within the 60 s horizon.
    expect(Math.abs(acct.scheduledCancel! - dm.expiry!)).toBeLessThanOrEqual(60_000);
    expect(acct.scheduledCancel! - armed.time).toBeLessThanOrEqual(60_000 + 1_000);
    // Nothing cancelled by the switch yet (not vacuous: the kill is what lets it fire).
    expect(armed.orders.filter((o) => o.user === account && o.status === 'scheduledCancel')).toEqual([]);

    expect(await keel.child.kill('SIGKILL')).toEqual({ code: null, signal: 'SIGKILL' });
    const killed = await simState(url);
    const armedAt = (killed.accounts.find((a) => a.address === account) as SimAccount).scheduledCancel!;
    const resting = killed.openOrders.filter((o) => o.user === account);
    expect(resting.length).toBeGreaterThan(0);
    // Still resting just before the armed time: the switch, not something else, cancels them.
    await simClock(url, { step: Math.max(0, armedAt - killed.time - 1_000) });
    const justBefore = await simState(url);
    expect(justBefore.openOrders.filter((o) => o.user === account).map((o) => o.oid).sort()).toEqual(resting.map((o) => o.oid).sort());

    await simClock(url, { step: 1_500 });
    const after = await simState(url);
    expect(after.openOrders.filter((o) => o.user === account)).toEqual([]);
    const byOid = new Map(after.orders.map((o) => [o.oid, o]));
    for (const o of resting) expect(byOid.get(o.oid)?.status, `order ${o.oid} (${o.cloid})`).toBe('scheduledCancel');
    expect(before.every((o) => byOid.has(o.oid))).toBe(true);
    // The switch fired once and is disarmed.
    expect((after.accounts.find((a) => a.address === account) as SimAccount).scheduledCancel).toBeNull();
  });
});
