/**
 * The dead-man keeper against the REAL simulator (manual clock) through the real adapter
 * (createHyperliquidVenue): while it renews, resting orders outlive its first horizon; once it stops
 * (keel's death: nothing renews any more) and the clock passes the armed time, the simulator
 * cancels every resting order, triggers included, with status `scheduledCancel`. It also spends at
 * most 9 of the venue's 10 daily triggers, counted from what it observed.
 *
 * The keeper's timers run on the simulator's clock (a queue stepped with it), so renewals happen
 * exactly when they would in production, deterministically.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { dec, roundPrice, toWire } from '../../src/domain/decimal.ts';
import { DAY_MS, DeadManKeeper, type DeadManTimers } from '../../src/ops/watchdog-deadman.ts';
import { createHyperliquidVenue, type HyperliquidVenue } from '../../src/venue/index.ts';
import { cloidOf, startRig, type SdkRig } from '../helpers/sim.ts';

const open: { rig: SdkRig; venue: HyperliquidVenue; keeper: DeadManKeeper }[] = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.keeper.stop();
    await o.venue.close();
    await o.rig.close();
  }
});

/** A rig whose manual clock starts a minute into today's UTC day (the trigger budget is per day). */
async function setUp(label: string) {
  const startTime = Date.now() - (Date.now() % DAY_MS) + 60_000;
  const rig = await startRig(label, { startTime, bookIntervalMs: 0 });
  rig.sim.step(1_000);
  const now = () => rig.sim.clock.now();
  const venue = createHyperliquidVenue({ network: 'paper', apiUrl: rig.sim.url, wallet: rig.agent, account: rig.user, timeoutMs: 5_000, now });
  const queue: { at: number; fn: () => void; id: number }[] = [];
  let ids = 0;
  const timers: DeadManTimers = {
    set: (fn, ms) => {
      const id = ++ids;
      queue.push({ at: now() + ms, fn, id });
      return id;
    },
    clear: (h) => {
      const i = queue.findIndex((q) => q.id === h);
      if (i >= 0) queue.splice(i, 1);
    },
  };
  const keeper = new DeadManKeeper({ venue, now, timers, config: { horizonMs: 60_000 } });
  open.push({ rig, venue, keeper });
  /** Steps the simulator's clock by `ms`, firing the keeper's timers as they fall due. */
  async function advance(ms: number) {
    const target = now() + ms;
    for (;;) {
      queue.sort((a, b) => a.at - b.at);
      const next = queue[0];
      if (!next || next.at > target) break;
      queue.shift();
      if (next.at > now()) rig.sim.step(next.at - now());
      next.fn();
      await keeper.settled();
    }
    if (target > now()) rig.sim.step(target - now());
  }
  return { rig, venue, keeper, advance, now };
}

/** Rests a bid and an ask away from the mid (with cloids) and a stop trigger far above. */
async function restOrders(rig: SdkRig, n: number): Promise<void> {
  const meta = await rig.info.meta();
  const mids = await rig.info.allMids();
  const a = meta.universe.findIndex((u) => u.name === 'BTC');
  const sz = meta.universe[a]!.szDecimals;
  const px = (f: number) => toWire(roundPrice(dec(mids.BTC!).mul(f), sz));
  const r = await rig.ex.order({
    orders: [
      { a, b: true, p: px(0.95), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(n) as `0x${string}` },
      { a, b: false, p: px(1.05), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(n + 1) as `0x${string}` },
      { a, b: true, p: px(1.3), s: '0.001', r: false, t: { trigger: { isMarket: true, triggerPx: px(1.25), tpsl: 'sl' } }, c: cloidOf(n + 2) as `0x${string}` },
    ],
    grouping: 'na',
  });
  expect(JSON.stringify(r.response.data.statuses)).not.toContain('error');
}

function truth(rig: SdkRig) {
  const gt = rig.sim.exchange.groundTruth();
  return {
    open: gt.openOrders.filter((o) => o.user === rig.user),
    orders: gt.orders.filter((o) => o.user === rig.user),
    scheduledCancel: gt.accounts.find((x) => x.address === rig.user)?.scheduledCancel ?? null,
  };
}

describe('dead-man keeper on the simulator', () => {
  it('renewed, resting orders outlive the first horizon; once renewals stop (keel dead) the simulator cancels every one with status scheduledCancel', async () => {
    const { rig, keeper, advance, now } = await setUp('deadman-kill');
    await restOrders(rig, 100);
    expect(truth(rig).open).toHaveLength(3);
    const t0 = now();
    expect(await keeper.start()).toEqual({ kind: 'armed', expiry: t0 + 60_000 });
    expect(truth(rig).scheduledCancel).toBe(t0 + 60_000);

    // Two and a half horizons of renewals: the first armed time passes, nothing is cancelled.
    await advance(150_000);
    expect(truth(rig).open).toHaveLength(3);
    expect(keeper.expiry()).toBeGreaterThan(now() + 40_000 - 1);
    expect(truth(rig).scheduledCancel).toBe(keeper.expiry());

    // keel dies: nothing renews any more.
    await keeper.stop();
    const armed = truth(rig).scheduledCancel!;
    await advance(armed - now() - 1);
    expect(truth(rig).open).toHaveLength(3);
    await advance(2);
    const t = truth(rig);
    expect(t.open).toEqual([]);
    expect(t.orders).toHaveLength(3);
    for (const o of t.orders) {
      expect(o.status).toBe('scheduledCancel');
      expect(o.statusTimestamp).toBeGreaterThanOrEqual(armed);
      expect(o.statusTimestamp).toBeLessThanOrEqual(armed + 1);
    }
    expect(t.orders.filter((o) => o.isTrigger)).toHaveLength(1);
    expect(t.scheduledCancel).toBeNull();
  });

  it('a clean stop with disarm keeps the resting orders', async () => {
    const { rig, keeper, advance } = await setUp('deadman-clean');
    await restOrders(rig, 200);
    await keeper.start();
    await advance(30_000);
    await keeper.stop({ disarm: true });
    expect(truth(rig).scheduledCancel).toBeNull();
    await advance(120_000);
    expect(truth(rig).open).toHaveLength(3);
  });

  it('spends at most 9 of the 10 daily triggers: after the ninth it refuses to arm', async () => {
    const { rig, keeper, advance } = await setUp('deadman-budget');
    await restOrders(rig, 300);
    expect(await keeper.start()).toMatchObject({ kind: 'armed' });
    for (let i = 1; i <= 9; i++) {
      await keeper.setHealthy(false, `cycle ${i}`);
      await advance(61_000);
      expect(truth(rig).scheduledCancel).toBeNull();
      await keeper.setHealthy(true, `cycle ${i}`);
    }
    expect(keeper.status()).toMatchObject({ triggersToday: 9, budgetSpent: true, expiry: undefined });
    expect(truth(rig).scheduledCancel).toBeNull();
    expect(await keeper.renewNow()).toEqual({ kind: 'budget', triggersToday: 9 });
    // The first cycle's trigger cancelled the resting orders.
    expect(truth(rig).orders.map((o) => o.status)).toEqual(['scheduledCancel', 'scheduledCancel', 'scheduledCancel']);
    // The venue still has its tenth trigger for flatten's fallback: it accepts one more arm.
    const r = await rig.ex.scheduleCancel({ time: rig.sim.clock.now() + 10_000 });
    expect(r.status).toBe('ok');
  });
});
