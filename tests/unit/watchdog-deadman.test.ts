/**
 * The dead-man keeper against a scripted venue and a manual clock with its own timer queue:
 * renewal cadence, retries, unhealthy / healthy, trigger counting and the daily budget, the venue's
 * "too many", clean stop with and without disarming, the trigger log, and the config schema.
 * (tests/integration/watchdog-deadman.test.ts runs it against the real simulator.)
 */
import { describe, expect, it } from 'vitest';
import { DAY_MS, DeadManKeeper, parseDeadManConfig, type DeadManConfigInput, type DeadManTimers, type TriggerLog } from '../../src/ops/watchdog-deadman.ts';

/** Noon UTC of some day: far from a day boundary. */
const T0 = 1_700_006_400_000 - (1_700_006_400_000 % DAY_MS) + DAY_MS / 2;

function rig(opts: { config?: DeadManConfigInput; answer?: (time: number | undefined) => { ok: true } | { ok: false; error: string }; triggerLog?: TriggerLog } = {}) {
  let now = T0;
  const calls: { at: number; time: number | undefined; expiresAfter: number }[] = [];
  const queue: { at: number; fn: () => void; id: number }[] = [];
  let ids = 0;
  const timers: DeadManTimers = {
    set: (fn, ms) => {
      const id = ++ids;
      queue.push({ at: now + ms, fn, id });
      return id;
    },
    clear: (h) => {
      const i = queue.findIndex((q) => q.id === h);
      if (i >= 0) queue.splice(i, 1);
    },
  };
  const venue = {
    scheduleCancel: async (time: number | undefined, o: { expiresAfter: number }) => {
      calls.push({ at: now, time, expiresAfter: o.expiresAfter });
      return opts.answer ? opts.answer(time) : { ok: true as const };
    },
  };
  const keeper = new DeadManKeeper({ venue, now: () => now, timers, ...(opts.config ? { config: opts.config } : {}), ...(opts.triggerLog ? { triggerLog: opts.triggerLog } : {}) });
  async function advance(ms: number) {
    const target = now + ms;
    for (;;) {
      queue.sort((a, b) => a.at - b.at);
      const next = queue[0];
      if (!next || next.at > target) break;
      queue.shift();
      now = next.at;
      next.fn();
      await keeper.settled();
    }
    now = target;
  }
  return { keeper, calls, advance, queue, now: () => now };
}

describe('dead-man keeper', () => {
  it('arms now + horizon at start and renews every horizon / 3', async () => {
    const r = rig();
    expect(await r.keeper.start()).toEqual({ kind: 'armed', expiry: T0 + 60_000 });
    expect(r.calls).toEqual([{ at: T0, time: T0 + 60_000, expiresAfter: T0 + 5_000 }]);
    await r.advance(59_999);
    expect(r.calls.map((c) => c.at - T0)).toEqual([0, 20_000, 40_000]);
    expect(r.keeper.expiry()).toBe(T0 + 100_000);
    expect(r.keeper.status()).toMatchObject({ running: true, healthy: true, triggersToday: 0, budgetSpent: false });
  });

  it('a failed arm keeps the confirmed expiry and retries after retryMs', async () => {
    let fail = false;
    const r = rig({ config: { retryMs: 500 }, answer: () => (fail ? { ok: false, error: 'transport: socket hang up' } : { ok: true }) });
    await r.keeper.start();
    fail = true;
    await r.advance(20_999);
    expect(r.calls.map((c) => c.at - T0)).toEqual([0, 20_000, 20_500]);
    expect(r.keeper.expiry()).toBe(T0 + 60_000);
    expect(r.keeper.status().lastError).toBe('transport: socket hang up');
    fail = false;
    await r.advance(1);
    expect(r.calls.map((c) => c.at - T0)).toEqual([0, 20_000, 20_500, 21_000]);
    expect(r.keeper.expiry()).toBe(T0 + 81_000);
    expect(r.keeper.status().lastError).toBeUndefined();
  });

  it('unhealthy: stops renewing, the armed time passes and counts as a trigger; healthy again: arms at once', async () => {
    const r = rig();
    await r.keeper.start();
    await r.keeper.setHealthy(false, 'orderManager stalled');
    await r.advance(59_999);
    expect(r.calls).toHaveLength(1);
    expect(r.keeper.status()).toMatchObject({ healthy: false, unhealthyReason: 'orderManager stalled', expiry: T0 + 60_000, triggersToday: 0 });
    await r.advance(1);
    expect(r.keeper.status()).toMatchObject({ expiry: undefined, triggersToday: 1 });
    await r.keeper.setHealthy(true, 'orderManager beating');
    expect(r.calls.at(-1)).toMatchObject({ at: T0 + 60_000, time: T0 + 120_000 });
    await r.advance(20_000);
    expect(r.calls).toHaveLength(3);
  });

  it('never arms once 9 triggers happened today; arms again the next UTC day', async () => {
    const r = rig();
    await r.keeper.start();
    for (let i = 0; i < 9; i++) {
      await r.keeper.setHealthy(false, 'test');
      await r.advance(60_000);
      await r.keeper.setHealthy(true, 'test');
    }
    // The ninth re-arm was refused: only 9 arms after the first.
    expect(r.calls).toHaveLength(9);
    expect(r.keeper.status()).toMatchObject({ triggersToday: 9, budgetSpent: true, expiry: undefined });
    expect(await r.keeper.renewNow()).toEqual({ kind: 'budget', triggersToday: 9 });
    expect(r.calls).toHaveLength(9);
    // It looks again on its period, and arms once the UTC day has turned.
    const midnight = r.now() - (r.now() % DAY_MS) + DAY_MS;
    await r.advance(midnight - r.now() - 1);
    expect(r.calls).toHaveLength(9);
    await r.advance(20_001);
    expect(r.calls.length).toBeGreaterThanOrEqual(10);
    expect(r.calls[9]!.at).toBeGreaterThanOrEqual(midnight);
    expect(r.keeper.status()).toMatchObject({ triggersToday: 0, budgetSpent: false });
  });

  it('the venue saying "too many" spends the budget for the day', async () => {
    const r = rig({ answer: (t) => (t === undefined ? { ok: true } : { ok: false, error: 'Too many scheduled cancels today.' }) });
    expect(await r.keeper.start()).toMatchObject({ kind: 'failed' });
    expect(r.keeper.status().budgetSpent).toBe(true);
    await r.advance(60_000);
    expect(r.calls).toHaveLength(1);
  });

  it('stop() leaves the switch armed (the venue fires); stop({ disarm: true }) clears it', async () => {
    const a = rig();
    await a.keeper.start();
    await a.keeper.stop();
    await a.advance(120_000);
    expect(a.calls).toHaveLength(1);
    expect(await a.keeper.renewNow()).toEqual({ kind: 'skipped', reason: 'stopped' });
    const b = rig();
    await b.keeper.start();
    await b.keeper.stop({ disarm: true });
    expect(b.calls.map((c) => c.time)).toEqual([T0 + 60_000, undefined]);
    expect(b.keeper.expiry()).toBeUndefined();
    await b.advance(120_000);
    expect(b.keeper.status().triggersToday).toBe(0);
  });

  it('noteTrigger counts a trigger seen elsewhere once, and the trigger log survives a restart', async () => {
    let saved: readonly number[] = [];
    const log: TriggerLog = { load: () => saved, save: (t) => void (saved = [...t]) };
    const r = rig({ triggerLog: log });
    await r.keeper.start();
    await r.keeper.setHealthy(false, 'test');
    await r.advance(60_500);
    r.keeper.noteTrigger(T0 + 60_003); // the cancelled orders' updates: the same trigger
    r.keeper.noteTrigger(T0 - 3_600_000); // an earlier one we had not seen
    expect(r.keeper.status().triggersToday).toBe(2);
    expect(saved).toEqual([T0 + 60_000, T0 - 3_600_000]);
    const again = rig({ triggerLog: log });
    expect(again.keeper.status().triggersToday).toBe(2);
  });

  it('config: the horizon must leave the venue its 5 s', () => {
    expect(parseDeadManConfig({ horizonMs: 5_000 })).toMatchObject({ ok: false, error: expect.stringContaining('deadMan.horizonMs') });
    expect(parseDeadManConfig({ horizonMs: 20_000, renewEveryMs: 16_000 })).toMatchObject({ ok: false, error: expect.stringContaining('renewEveryMs') });
    expect(parseDeadManConfig({})).toMatchObject({ ok: true, config: { horizonMs: 60_000, maxTriggersPerDay: 9 } });
    expect(() => new DeadManKeeper({ venue: { scheduleCancel: async () => ({ ok: true }) }, now: () => 0, config: { horizonMs: 1 } })).toThrow(/horizonMs/);
  });
});
