/**
 * The `ws` breaker around subscribe requests, with the REAL adapter and the REAL simulator: an
 * outage that refuses WebSocket connections makes subscribes time out and opens the breaker, an
 * open breaker refuses at once without touching the socket, and once the outage ends the breaker
 * half-opens and a real subscription closes it and delivers data. The caller's abort of an action
 * is not held against the exchange breaker.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import type { Cloid } from '../../src/domain/types.ts';
import { createHyperliquidVenue, VenueError } from '../../src/venue/index.ts';
import type { BreakerChange } from '../../src/venue/breakers.ts';
import { createResilientVenue } from '../../src/venue/resilient-venue.ts';
import { WeightBudget } from '../../src/venue/weight-budget.ts';
import { cloidOf, startRig, until, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;

async function setFaults(body: Record<string, number>): Promise<void> {
  const r = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  expect(r.status).toBe(200);
}

beforeAll(async () => {
  rig = await startRig('breakers-ws', { bookIntervalMs: 0 });
  rig.sim.step(1_000);
});
afterAll(async () => {
  await setFaults({});
  await rig.close();
});

function build() {
  const adapter = createHyperliquidVenue({
    network: 'paper',
    apiUrl: rig.sim.url,
    wallet: rig.agent,
    account: rig.master.address,
    timeoutMs: 3_000,
    now: () => rig.sim.clock.now(),
    ws: { reconnectDelayMs: () => 50, resubscribeDelayMs: 100, connectionTimeoutMs: 500 },
  });
  let subscribes = 0;
  const counted = new Proxy(adapter, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'subscribeMarket' && typeof v === 'function') {
        return (...args: unknown[]) => {
          subscribes++;
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  const budget = new WeightBudget({ perMinute: 1_000_000, initialFraction: 1 });
  const venue = createResilientVenue(counted, {
    budget,
    now: () => rig.sim.clock.now(),
    breakers: {
      ws: { timeoutMs: 1_000, volumeThreshold: 3, errorThresholdPercentage: 50, resetTimeoutMs: 300, rollingWindowMs: 10_000 },
      exchange: { timeoutMs: 2_000, volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 300, rollingWindowMs: 10_000 },
    },
  });
  const changes: BreakerChange[] = [];
  venue.onBreakerChange((c) => changes.push(c));
  return { venue, budget, changes, subscribes: () => subscribes };
}

describe('ws breaker', () => {
  it('subscribes that fail during an outage (refused connections) open it; it fails fast, then recovers through half-open', async () => {
    const { venue, budget, changes, subscribes } = build();
    try {
      await setFaults({ outage: 1 });
      const noop = { onMids: () => {} };
      while (venue.breakerStates().ws !== 'open' && subscribes() < 10) {
        const e = await venue.subscribeMarket(['BTC'], [], noop).then(
          () => undefined,
          (err: unknown) => err,
        );
        // Refused connections fail the subscribe outright or leave it hanging past the timeout.
        expect(e).toBeInstanceOf(VenueError);
        expect((e as VenueError).kind).toBe('transport');
      }
      expect(subscribes()).toBe(3);
      const fast = await venue.subscribeMarket(['BTC'], [], noop).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect((fast as VenueError).message).toContain('circuit open: ws');
      expect(subscribes()).toBe(3);
      expect(venue.breakerStates()).toEqual({ info: 'closed', exchange: 'closed', ws: 'open' });

      await setFaults({});
      await until(() => (venue.breakerStates().ws === 'halfOpen' ? true : undefined));
      const mids: string[] = [];
      // The trial subscription may need the socket to reconnect first: give it the adapter's time.
      const sub = await until(
        async () => {
          if (venue.breakerStates().ws === 'open') await until(() => (venue.breakerStates().ws === 'halfOpen' ? true : undefined));
          return venue.subscribeMarket(['BTC'], [], { onMids: (m) => void mids.push(m.get('BTC')?.toString() ?? '') }).catch(() => undefined);
        },
        { timeoutMs: 10_000 },
      );
      expect(venue.breakerStates().ws).toBe('closed');
      await until(() => (mids.length > 0 ? true : undefined), { sim: rig.sim, stepMs: 1_000 });
      expect(mids[0]).toMatch(/^\d/);
      await sub.unsubscribe();
      expect(changes.filter((c) => c.breaker === 'ws').map((c) => c.state).slice(0, 2)).toEqual(['open', 'halfOpen']);
      expect(changes.at(-1)).toEqual({ breaker: 'ws', state: 'closed', previous: 'halfOpen' });
    } finally {
      await venue.close();
      budget.close();
    }
  });
});

describe('caller aborts', () => {
  it('an action the caller aborts is not held against the exchange breaker; one aborted while waiting for weight is rejected as not sent', async () => {
    const { venue, budget } = build();
    try {
      // Warm the adapter's asset-id cache so the action itself is what the latency delays.
      expect(await venue.updateLeverage('BTC', 3, { expiresAfter: rig.sim.clock.now() + 30_000 })).toEqual({ ok: true });
      await setFaults({ latency: 1, latencyMs: 1_000 });
      for (let i = 0; i < 4; i++) {
        const ac = new AbortController();
        const p = venue.updateLeverage('BTC', 4, { expiresAfter: rig.sim.clock.now() + 30_000, signal: ac.signal });
        setTimeout(() => ac.abort(), 50);
        const r = await p;
        expect(r.ok === false && r.error).toMatch(/^transport: .*abort/i);
      }
      // Four failures would have opened it (threshold 2 calls, 50 %): the caller's aborts did not count.
      expect(venue.breakerStates().exchange).toBe('closed');
      // An abort while waiting for weight: certainly not sent, so a place says `rejected`.
      const drained = new WeightBudget({ perMinute: 60, margin: 0, initialFraction: 0 });
      const v2 = createResilientVenue(createHyperliquidVenue({ network: 'paper', apiUrl: rig.sim.url, wallet: rig.agent, account: rig.master.address }), { budget: drained });
      const ac = new AbortController();
      const p = v2.place(
        { cloid: cloidOf(0xabc) as Cloid, coin: 'BTC', assetId: 0, side: 'buy', sz: dec('0.001'), px: dec('1000'), reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: 0 },
        { expiresAfter: Date.now() + 30_000, signal: ac.signal },
      );
      ac.abort();
      const r = await p;
      expect(r.kind).toBe('rejected');
      expect(r.kind === 'rejected' && r.error).toMatch(/^not sent/);
      drained.close();
      await v2.close();
    } finally {
      await setFaults({});
      await venue.close();
      budget.close();
    }
  });
});
