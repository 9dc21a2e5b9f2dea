/**
 * Circuit breakers and the weight budget around the REAL Hyperliquid adapter, against the REAL
 * simulator over loopback: 5xx and outages open the breakers, open breakers fail fast without
 * reaching the simulator, recovery goes half-open then closed; a request slower than the breaker's
 * timeout is abandoned and reported unknown, and the order is then resolved by cloid; 429s make
 * the budget back off; and the budget keeps a start-up burst under the simulator's real IP limit.
 *
 * What reached the simulator is counted by a pass-through VenuePort between the resilient layer
 * and the adapter: a call it does not see was never sent.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dec, roundPrice, type Decimal } from '../../src/domain/decimal.ts';
import type { Cloid, OrderIntent } from '../../src/domain/types.ts';
import { startSimulator } from '../../src/sim/server/simulator.ts';
import { createHyperliquidVenue, VenueError, type VenuePort } from '../../src/venue/index.ts';
import type { ActOptions } from '../../src/venue/port.ts';
import type { BreakerChange, BreakerClass, BreakerSettings } from '../../src/venue/breakers.ts';
import { createResilientVenue, type ResilientVenue } from '../../src/venue/resilient-venue.ts';
import { WeightBudget, type BudgetClock } from '../../src/venue/weight-budget.ts';
import { cloidOf, startRig, until, walletFor, type SdkRig } from '../helpers/sim.ts';

/** Counts what passes through to the adapter (and so to the simulator), with the wall time. */
function counting(inner: VenuePort) {
  const calls: { method: string; at: number; signal?: AbortSignal }[] = [];
  const count = (m: string) => calls.filter((c) => c.method === m).length;
  const rec = (method: string, opts?: ActOptions) => calls.push({ method, at: Date.now(), ...(opts?.signal ? { signal: opts.signal } : {}) });
  const port: VenuePort = {
    network: inner.network,
    url: inner.url,
    account: inner.account,
    instruments: () => (rec('instruments'), inner.instruments()),
    mids: () => (rec('mids'), inner.mids()),
    candles: (c, i, s, e) => (rec('candles'), inner.candles(c, i, s, e)),
    accountState: () => (rec('accountState'), inner.accountState()),
    openOrders: () => (rec('openOrders'), inner.openOrders()),
    orderStatus: (c) => (rec('orderStatus'), inner.orderStatus(c)),
    fills: (s) => (rec('fills'), inner.fills(s)),
    place: (i, o) => (rec('place', o), inner.place(i, o)),
    cancel: (c, id, o) => (rec('cancel', o), inner.cancel(c, id, o)),
    scheduleCancel: (t, o) => (rec('scheduleCancel', o), inner.scheduleCancel(t, o)),
    updateLeverage: (c, l, o) => (rec('updateLeverage', o), inner.updateLeverage(c, l, o)),
    subscribeMarket: (c, i, h) => (rec('subscribeMarket'), inner.subscribeMarket(c, i, h)),
    subscribeUser: (h) => (rec('subscribeUser'), inner.subscribeUser(h)),
    onConnectionState: (l) => inner.onConnectionState(l),
    close: () => inner.close(),
  };
  return { port, calls, count };
}

const FAST: Partial<Record<BreakerClass, Partial<BreakerSettings>>> = {
  info: { timeoutMs: 1_000, volumeThreshold: 4, errorThresholdPercentage: 50, resetTimeoutMs: 300, rollingWindowMs: 10_000 },
  exchange: { timeoutMs: 1_000, volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 300, rollingWindowMs: 10_000 },
};

let rig: SdkRig;
let bid: Decimal;
let seq = 0;
const opened: { venue: ResilientVenue; budget: WeightBudget }[] = [];

function build(opts: { budget?: WeightBudget } = {}) {
  const adapter = createHyperliquidVenue({
    network: 'paper',
    apiUrl: rig.sim.url,
    wallet: rig.agent,
    account: rig.master.address,
    timeoutMs: 3_000,
    now: () => rig.sim.clock.now(),
  });
  const c = counting(adapter);
  const budget = opts.budget ?? new WeightBudget({ perMinute: 1_000_000, initialFraction: 1, seed: 1 });
  const venue = createResilientVenue(c.port, { budget, breakers: FAST, now: () => rig.sim.clock.now() });
  const changes: BreakerChange[] = [];
  venue.onBreakerChange((ch) => changes.push(ch));
  opened.push({ venue, budget });
  return { venue, budget, changes, ...c };
}

async function setFaults(body: Record<string, number>): Promise<void> {
  const r = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  expect(r.status).toBe(200);
}

async function simOrders(): Promise<{ cloid: string | null; oid: number; status: string }[]> {
  const r = await fetch(`${rig.sim.url}/_sim/state`);
  return ((await r.json()) as { orders: { cloid: string | null; oid: number; status: string }[] }).orders;
}

/** A BTC buy far enough below the bid to rest (the manual clock holds the market still). */
function restingBuy(): OrderIntent {
  return { cloid: cloidOf(0x9000 + ++seq) as Cloid, coin: 'BTC', assetId: 0, side: 'buy', sz: dec('0.001'), px: roundPrice(bid.mul(0.95), 5, 'down'), reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: rig.sim.clock.now() };
}

const act = (): ActOptions => ({ expiresAfter: rig.sim.clock.now() + 30_000 });

async function failing<T>(p: Promise<T>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

beforeAll(async () => {
  rig = await startRig('breakers', { bookIntervalMs: 0 });
  rig.sim.step(1_000);
  const b = await rig.info.l2Book({ coin: 'BTC' });
  bid = dec(b!.levels[0][0]!.px);
});
afterEach(async () => {
  await setFaults({});
  for (const o of opened.splice(0)) {
    await o.venue.close();
    o.budget.close();
  }
});
afterAll(async () => {
  await rig.close();
});

describe('info breaker', () => {
  it('opens after the threshold of 5xx answers, then fails fast without reaching the simulator', async () => {
    const { venue, count, changes } = build();
    await venue.mids(); // healthy first
    await setFaults({ http5xx: 1 });
    let attempts = 0;
    while (venue.breakerStates().info === 'closed' && attempts < 20) {
      attempts++;
      const e = await failing(venue.mids());
      expect(e).toBeInstanceOf(VenueError);
      expect((e as VenueError).kind).toBe('transport');
    }
    expect(venue.breakerStates().info).toBe('open');
    // opossum decides on each failure once the window holds 4 calls: 1 success + 3 failures is
    // 75 % > 50 %, so the third failure opens it (the first two were below the volume threshold).
    expect(count('mids')).toBe(1 + attempts);
    expect(attempts).toBe(3);
    const reached = count('mids');
    for (let i = 0; i < 10; i++) {
      const e = await failing(venue.orderStatus(cloidOf(1) as Cloid));
      expect((e as VenueError).message).toContain('circuit open: info');
      expect((e as VenueError).kind).toBe('transport');
    }
    expect(count('mids')).toBe(reached);
    expect(count('orderStatus')).toBe(0);
    expect(venue.breakerStates()).toEqual({ info: 'open', exchange: 'closed', ws: 'closed' });
    expect(changes).toEqual([{ breaker: 'info', state: 'open', previous: 'closed' }]);
  });

  it('after the fault clears and resetTimeout passes it half-opens, and one good call closes it', async () => {
    const { venue, count, changes } = build();
    await setFaults({ outage: 1 });
    while (venue.breakerStates().info !== 'open') await failing(venue.accountState());
    // Still failing when the trial comes: the trial fails and the breaker opens again.
    await until(() => (venue.breakerStates().info === 'halfOpen' ? true : undefined));
    const before = count('accountState');
    await failing(venue.accountState());
    expect(count('accountState')).toBe(before + 1);
    expect(venue.breakerStates().info).toBe('open');
    await setFaults({});
    await until(() => (venue.breakerStates().info === 'halfOpen' ? true : undefined));
    const st = await venue.accountState();
    expect(st.withdrawable.gt(0)).toBe(true);
    expect(venue.breakerStates().info).toBe('closed');
    expect(changes.map((c) => c.state)).toEqual(['open', 'halfOpen', 'open', 'halfOpen', 'closed']);
    expect(changes.every((c) => c.breaker === 'info')).toBe(true);
  });

  it('venue refusals are answers, not failures: they never open the breaker', async () => {
    const { venue, count } = build();
    for (let i = 0; i < 8; i++) {
      const e = await failing(venue.candles('BTC', '7m', 0));
      expect((e as VenueError).kind).toBe('rejected');
    }
    expect(venue.breakerStates().info).toBe('closed');
    expect(count('candles')).toBe(8);
  });
});

describe('exchange breaker', () => {
  it('an outage opens it; then place is rejected "circuit open: exchange" and provably never sent', async () => {
    const { venue, count, changes } = build();
    await setFaults({ outage: 1 });
    const unknowns: Cloid[] = [];
    while (venue.breakerStates().exchange !== 'open' && unknowns.length < 10) {
      const intent = restingBuy();
      const r = await venue.place(intent, act());
      expect(r.kind).toBe('unknown');
      unknowns.push(intent.cloid);
    }
    expect(unknowns).toHaveLength(3);
    const notSent = restingBuy();
    const r = await venue.place(notSent, act());
    expect(r).toEqual({ kind: 'rejected', error: 'circuit open: exchange' });
    expect(count('place')).toBe(3);
    expect(await venue.scheduleCancel(undefined, act())).toEqual({ ok: false, error: 'circuit open: exchange' });
    expect((await venue.cancel('BTC', notSent.cloid, act())).kind).toBe('unknown');
    expect(count('scheduleCancel') + count('cancel')).toBe(0);
    await setFaults({});
    const cloids = new Set((await simOrders()).map((o) => o.cloid));
    expect(cloids.has(notSent.cloid)).toBe(false);
    // The info breaker never saw the exchange's trouble.
    expect(venue.breakerStates().info).toBe('closed');
    expect(changes).toEqual([{ breaker: 'exchange', state: 'open', previous: 'closed' }]);
    // Recovery: the half-open trial is a real order, and it closes the breaker.
    await until(() => (venue.breakerStates().exchange === 'halfOpen' ? true : undefined));
    const trial = await venue.place(restingBuy(), act());
    expect(trial.kind).toBe('resting');
    expect(venue.breakerStates().exchange).toBe('closed');
  });

  it('a venue rejection (an order error string) is not a breaker failure', async () => {
    const { venue } = build();
    for (let i = 0; i < 6; i++) {
      const intent = restingBuy();
      // Far outside the 80 % band: the venue refuses it.
      const r = await venue.place({ ...intent, px: roundPrice(intent.px.mul(0.1), 5, 'down') }, act());
      expect(r.kind).toBe('rejected');
    }
    expect(venue.breakerStates().exchange).toBe('closed');
  });

  it('a place slower than the breaker timeout is abandoned (signal aborted), reported unknown, and resolved by cloid', async () => {
    const { venue, calls } = build();
    await setFaults({ latency: 1, latencyMs: 3_000 });
    const intent = restingBuy();
    const r = await venue.place(intent, act());
    expect(r.kind).toBe('unknown');
    expect(r.kind === 'unknown' && r.cause).toMatch(/^timeout/);
    const sent = calls.find((c) => c.method === 'place')!;
    expect(sent.signal?.aborted).toBe(true);
    await setFaults({});
    // Let the simulator's delayed handler finish whatever it will do with the request.
    await new Promise((res) => setTimeout(res, 2_300));
    const status = await venue.orderStatus(intent.cloid);
    const truth = (await simOrders()).find((o) => o.cloid === intent.cloid);
    expect(status.found).toBe(truth !== undefined);
    // The simulator reads the body only after its delay, so a request really abandoned (its
    // connection torn down by the abort) never executes; one merely forgotten would have.
    expect(truth).toBeUndefined();
  });

  it('a lost answer is unknown too, and the order the simulator did execute is found by cloid', async () => {
    const { venue } = build();
    await setFaults({ lostResponse: 1 });
    const intent = restingBuy();
    const r = await venue.place(intent, act());
    expect(r.kind).toBe('unknown');
    await setFaults({});
    const status = await venue.orderStatus(intent.cloid);
    const truth = (await simOrders()).find((o) => o.cloid === intent.cloid);
    expect(truth).toBeDefined();
    expect(status).toMatchObject({ found: true, oid: truth!.oid, status: 'open' });
    // One unknown is below the exchange breaker's volume threshold.
    expect(venue.breakerStates().exchange).toBe('closed');
  });
});

describe('429 backoff', () => {
  it('a 429 makes the budget drain and back off; the next request reaches the simulator only after the backoff', async () => {
    const budget = new WeightBudget({ perMinute: 1_000_000, initialFraction: 1, seed: 5, backoff: { baseMs: 400, maxMs: 2_000 } });
    const { venue, calls } = build({ budget });
    await setFaults({ rateLimit: 1 });
    const e = await failing(venue.mids());
    expect((e as VenueError).kind).toBe('rate_limited');
    const s = budget.stats();
    expect(s.rateLimited).toBe(1);
    expect(s.backoffUntil).toBeDefined();
    await setFaults({});
    const mids = await venue.mids();
    expect(mids.get('BTC')).toBeDefined();
    const second = calls.filter((c) => c.method === 'mids')[1]!;
    expect(second.at).toBeGreaterThanOrEqual(s.backoffUntil!);
    // An action answered 429 is an unknown outcome (the adapter's rule) and feeds the budget too.
    await setFaults({ rateLimit: 1 });
    const r = await venue.place(restingBuy(), act());
    expect(r.kind === 'unknown' && r.cause).toMatch(/^rate_limited/);
    expect(budget.stats().rateLimited).toBe(2);
  });
});

describe('weight budget against the real IP limit', () => {
  it('keeps a start-up burst of 200 info requests under 1200 weight / minute with no 429; without it the same burst is refused', async () => {
    // A second simulator with the venue's real limit, on a manual clock that the budget shares:
    // the budget's timers advance the simulator's time, so a minute of refill takes milliseconds.
    const sim = await startSimulator({ clock: 'manual', seed: 11, blockMs: 1_000, ipWeightPerMinute: 1_200 });
    const master = walletFor('burst:master');
    sim.fund(master.address, 10_000);
    const adapter = createHyperliquidVenue({ network: 'paper', apiUrl: sim.url, wallet: master, account: master.address, timeoutMs: 3_000, now: () => sim.clock.now() });
    try {
      const timers = new Map<number, { at: number; fn: () => void }>();
      let nextId = 0;
      const clock: BudgetClock = {
        now: () => sim.clock.now(),
        setTimeout: (fn, ms) => (timers.set(++nextId, { at: sim.clock.now() + ms, fn }), nextId),
        clearTimeout: (h) => void timers.delete(h as number),
      };
      const budget = new WeightBudget({ clock, seed: 2 });
      const c = counting(adapter);
      const venue = createResilientVenue(c.port, { budget, now: () => sim.clock.now() });
      // A boot-like burst: 50 heavy (weight 20) and 150 light (weight 2) requests = 1300 weight.
      const burst = () =>
        Array.from({ length: 200 }, (_, i) => {
          switch (i % 4) {
            case 0:
              return venue.openOrders();
            case 1:
              return venue.mids();
            case 2:
              return venue.accountState();
            default:
              return venue.orderStatus(cloidOf(i) as Cloid);
          }
        });
      let done = false;
      const all = Promise.allSettled(burst()).finally(() => (done = true));
      const t0 = sim.clock.now();
      while (!done) {
        await new Promise((r) => setTimeout(r, 2));
        const next = [...timers.entries()].sort((a, b) => a[1].at - b[1].at)[0];
        if (!next) continue;
        const [id, t] = next;
        if (t.at > sim.clock.now()) sim.step(t.at - sim.clock.now());
        timers.delete(id);
        t.fn();
      }
      const results = await all;
      const failures = results.filter((r) => r.status === 'rejected');
      expect(failures).toEqual([]);
      expect(budget.stats().rateLimited).toBe(0);
      expect(c.calls).toHaveLength(200);
      // The budget, not luck, paced it: the burst took simulated refill time.
      expect(sim.clock.now() - t0).toBeGreaterThan(30_000);
      await venue.close();
      budget.close();

      // Control: the same burst straight at the adapter, once the simulator's bucket is full again.
      sim.step(120_000);
      const bare = createHyperliquidVenue({ network: 'paper', apiUrl: sim.url, wallet: master, account: master.address, timeoutMs: 3_000 });
      const raw = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => (i % 4 === 0 ? bare.openOrders() : i % 4 === 1 ? bare.mids() : i % 4 === 2 ? bare.accountState() : bare.orderStatus(cloidOf(i) as Cloid))),
      );
      await bare.close();
      const limited = raw.filter((r) => r.status === 'rejected' && r.reason instanceof VenueError && r.reason.kind === 'rate_limited');
      expect(limited.length).toBeGreaterThan(0);
    } finally {
      await adapter.close();
      await sim.close();
    }
  });
});
