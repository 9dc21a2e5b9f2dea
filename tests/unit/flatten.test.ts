/**
 * Flatten's pure pieces and the edges of its loop the simulator cannot produce on demand: the close
 * price and size rules (fast-check properties), a commit failure that must stop the send, a venue
 * call that never answers, and a caller's abort. The loop runs on an injected clock.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dec, isValidPrice, isValidSize, type Decimal } from '../../src/domain/decimal.ts';
import type { AccountState, Instrument, OrderIntent, PlaceResult, Position, VenueOrder } from '../../src/domain/types.ts';
import { closeIntentFor, closePrice, flatten, flattenReportToJson, type FlattenOptions } from '../../src/ops/flatten.ts';
import type { VenuePort } from '../../src/venue/port.ts';

const BTC: Instrument = { coin: 'BTC', assetId: 0, szDecimals: 5, maxLeverage: 40, isMajor: true };

function position(coin: string, szi: Decimal.Value): Position {
  return { coin, szi: dec(szi), entryPx: dec(100), unrealizedPnl: dec(0), leverage: 1, marginUsed: dec(0) };
}

const decimalArb = (min: number, max: number, dp: number) => fc.integer({ min: Math.round(min * 10 ** dp), max: Math.round(max * 10 ** dp) }).map((n) => dec(n).div(10 ** dp));

describe('close price and size', () => {
  it('the limit is a valid price within the slippage cap on the right side of the mid', () => {
    fc.assert(
      fc.property(decimalArb(0.0001, 200_000, 6), fc.integer({ min: 0, max: 5 }), decimalArb(0.01, 20, 2), fc.constantFrom('buy' as const, 'sell' as const), (mid, szDecimals, slip, side) => {
        const px = closePrice(side, mid, slip, szDecimals);
        if (px === undefined) return; // no valid price at that scale (rounds to zero)
        expect(isValidPrice(px, szDecimals)).toBe(true);
        const s = slip.div(100);
        if (side === 'buy') expect(px.lte(mid.mul(dec(1).plus(s)))).toBe(true);
        else expect(px.gte(mid.mul(dec(1).minus(s)))).toBe(true);
      }),
    );
  });

  it('a close is a reduce-only IOC on the closing side, never larger than the position, on the lot', () => {
    fc.assert(
      fc.property(decimalArb(-50, 50, 8), fc.integer({ min: 0, max: 5 }), decimalArb(1, 100_000, 2), (szi, szDecimals, mid) => {
        fc.pre(!szi.isZero());
        const c = closeIntentFor(position('X', szi), { ...BTC, coin: 'X', szDecimals }, mid, 1, 1_000, 6_000);
        if (!c.ok) {
          expect(c.error).toMatch(/below the lot|no usable mid/);
          return;
        }
        const i = c.intent;
        expect(i).toMatchObject({ coin: 'X', side: szi.gt(0) ? 'sell' : 'buy', reduceOnly: true, tif: 'Ioc', kind: 'flatten', createdAt: 1_000, expiresAfter: 6_000 });
        expect(i.sz.lte(szi.abs())).toBe(true);
        expect(isValidSize(i.sz, szDecimals)).toBe(true);
        expect(szi.abs().minus(i.sz).lt(dec(10).pow(-szDecimals))).toBe(true);
      }),
    );
  });

  it('refuses without a mid, and for dust below the lot', () => {
    expect(closeIntentFor(position('BTC', '0.01'), BTC, undefined, 1, 0, 0)).toEqual({ ok: false, error: 'no usable mid for BTC' });
    expect(closeIntentFor(position('BTC', '0.000001'), BTC, dec(60_000), 1, 0, 0)).toMatchObject({ ok: false, error: expect.stringMatching(/below the lot/) });
  });

  it('1 % from a 60 000 mid: sell at 59 400, buy at 60 600', () => {
    expect(closePrice('sell', dec(60_000), 1, 5)!.toFixed()).toBe('59400');
    expect(closePrice('buy', dec(60_000), 1, 5)!.toFixed()).toBe('60600');
    expect(closePrice('buy', dec('1.23456'), 1, 0)!.toFixed()).toBe('1.2469');
  });
});

/** A scripted venue for the edges: answers come from the script, unlisted methods fail loudly. */
function scriptedVenue(s: { orders?: () => Promise<VenueOrder[]>; account?: () => Promise<AccountState>; place?: (i: OrderIntent) => Promise<PlaceResult> }): VenuePort & { placed: OrderIntent[] } {
  const placed: OrderIntent[] = [];
  const nope = () => Promise.reject(new Error('not scripted'));
  return {
    network: 'paper',
    url: 'http://scripted',
    account: '0x0',
    placed,
    instruments: async () => [BTC],
    mids: async () => new Map([['BTC', dec(60_000)]]),
    candles: nope,
    accountState: s.account ?? (async () => ({ accountValue: dec(1), totalMarginUsed: dec(0), totalNtlPos: dec(0), withdrawable: dec(1), positions: [], time: 0 })),
    openOrders: s.orders ?? (async () => []),
    orderStatus: nope,
    fills: nope,
    place: async (i) => {
      placed.push(i);
      return s.place ? s.place(i) : { kind: 'filled', oid: 1, totalSz: i.sz, avgPx: i.px };
    },
    cancel: async () => ({ kind: 'cancelled' }),
    scheduleCancel: async () => ({ ok: true }),
    updateLeverage: async () => ({ ok: true }),
    subscribeMarket: nope,
    subscribeUser: nope,
    onConnectionState: () => () => {},
    close: async () => {},
  };
}

function clockOpts(over: Partial<FlattenOptions> = {}): FlattenOptions {
  let t = 1_000_000;
  return {
    deadlineMs: 1_000,
    slippagePct: 1,
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
    log: { info() {}, warn() {}, error() {} },
    commitIntent: (i) => ({ ...i, cloid: `0x${'ab'.repeat(16)}` }),
    ...over,
  };
}

const holding = async (): Promise<AccountState> => ({ accountValue: dec(1), totalMarginUsed: dec(0), totalNtlPos: dec(0), withdrawable: dec(1), positions: [position('BTC', '0.5')], time: 0 });

describe('the loop at its edges', () => {
  it('a failed intent commit means nothing is sent, and the report says not flat', async () => {
    const venue = scriptedVenue({ account: holding });
    const r = await flatten(
      venue,
      clockOpts({
        commitIntent: () => {
          throw new Error('disk full');
        },
      }),
    );
    expect(venue.placed).toEqual([]);
    expect(r.flat).toBe(false);
    expect(r.closeOrders.length).toBeGreaterThan(0);
    expect(r.closeOrders.every((c) => c.result === undefined && c.cloid === '')).toBe(true);
    expect(r.reason).toMatch(/^deadline passed: 1 position\(s\) \(BTC 0\.5\) and 0 open order\(s\) remain$/);
    expect(flattenReportToJson(r).closeOrders).toContainEqual(expect.objectContaining({ result: { kind: 'not_sent' } }));
  });

  it('a venue that never answers cannot hold the loop: each call is cut at requestTimeoutMs', async () => {
    const venue = scriptedVenue({ orders: () => new Promise<never>(() => {}), account: () => new Promise<never>(() => {}) });
    const r = await flatten(venue, clockOpts({ requestTimeoutMs: 20, deadlineMs: 500 }));
    expect(r).toMatchObject({ flat: false, reason: 'deadline passed before the venue could be read' });
    expect(r.loops).toBeGreaterThan(1);
    expect(r.failures).toBeGreaterThanOrEqual(2 * r.loops);
  });

  it('an unknown close is not taken as done: the next read decides', async () => {
    let reads = 0;
    const venue = scriptedVenue({
      // The lost close did execute: the second read shows no position.
      account: async () => (++reads === 1 ? holding() : { ...(await holding()), positions: [] }),
      place: async () => ({ kind: 'unknown', cause: 'lost response' }),
    });
    const r = await flatten(venue, clockOpts());
    expect(r).toMatchObject({ flat: true, loops: 2 });
    expect(venue.placed).toHaveLength(1);
    expect(r.closeOrders[0]!.result).toEqual({ kind: 'unknown', cause: 'lost response' });
  });

  it('stops when the caller aborts, reporting what the last read showed', async () => {
    const ac = new AbortController();
    const venue = scriptedVenue({ account: holding, place: async () => (ac.abort(), { kind: 'rejected', error: 'Order could not immediately match' }) });
    const r = await flatten(venue, clockOpts({ signal: ac.signal, deadlineMs: 60_000 }));
    expect(r).toMatchObject({ flat: false, loops: 1 });
    expect(r.reason).toMatch(/^stopped by the caller: 1 position/);
  });
});
