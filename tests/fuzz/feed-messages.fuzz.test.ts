/**
 * Fuzzing the feed (issue 4, acceptance 6): 10,000 malformed WebSocket payloads per channel
 * (mutated real samples and junk, seeded) through the adapter's parse path — the `Ws*` schema,
 * the `to*` converter and the same filtering src/venue/hyperliquid-venue.ts applies — and, for the
 * market channels, into one long-lived market-feed machine (machines/market-feed.machine.ts).
 *
 * For every input: nothing throws; a rejected payload yields a bounded error text and no event, and
 * the machine's snapshot is the very same object afterwards (no state change); an accepted one
 * yields domain values whose invariants hold (finite, positive prices; known sides; non-negative
 * integer ids), and the machine, fed its event, keeps finite positive tick levels and finite bars.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import type { Decimal } from '../../src/domain/decimal.ts';
import type { Coin } from '../../src/domain/types.ts';
import { FEED_INPUT, type FeedInputEvent } from '../../src/venue/feed-port.ts';
import { CandleWireSchema, WsAllMidsSchema, WsBookSchema, WsOrderUpdatesSchema, WsTradesSchema, WsUserFillsSchema, describeIssues, toCandle, toFill, toMids } from '../../src/venue/hyperliquid-schemas.ts';
import { marketFeedMachine } from '../../machines/market-feed.machine.ts';
import { fuzzParams, malformedFrom } from './malformed.ts';
import * as S from './wire-samples.ts';

const COINS: readonly Coin[] = ['BTC', 'ETH'];
const T0 = 1_700_000_000_000;

type Parsed = { readonly ok: true; readonly events: readonly FeedInputEvent[] } | { readonly ok: false; readonly why: string };

/** The adapter's market-channel handlers (hyperliquid-venue.ts `subscribeMarket`), as a pure function. */
function marketEvents(channel: 'allMids' | 'l2Book' | 'trades' | 'candle', raw: unknown, at: number): Parsed {
  switch (channel) {
    case 'allMids': {
      const p = WsAllMidsSchema.safeParse(raw);
      if (!p.success) return { ok: false, why: describeIssues(p.error) };
      const m = toMids(p.data.mids);
      if (!(m instanceof Map)) return { ok: false, why: m.error };
      const mids = new Map<Coin, Decimal>([...m].filter(([c]) => COINS.includes(c)));
      return { ok: true, events: [{ type: FEED_INPUT.mids, source: 'ws', mids, at }] };
    }
    case 'l2Book': {
      const p = WsBookSchema.safeParse(raw);
      if (!p.success) return { ok: false, why: describeIssues(p.error) };
      if (!COINS.includes(p.data.coin)) return { ok: true, events: [] };
      const [bids, asks] = p.data.levels;
      return { ok: true, events: [{ type: FEED_INPUT.book, source: 'ws', coin: p.data.coin, ...(bids[0] ? { bestBid: bids[0].px } : {}), ...(asks[0] ? { bestAsk: asks[0].px } : {}), at }] };
    }
    case 'trades': {
      const p = WsTradesSchema.safeParse(raw);
      if (!p.success) return { ok: false, why: describeIssues(p.error) };
      const events: FeedInputEvent[] = [];
      for (const coin of COINS) {
        const mine = p.data.filter((t) => t.coin === coin);
        const last = mine[mine.length - 1];
        if (last) events.push({ type: FEED_INPUT.trades, source: 'ws', coin, lastPx: last.px, count: mine.length, at });
      }
      return { ok: true, events };
    }
    case 'candle': {
      const p = CandleWireSchema.safeParse(raw);
      if (!p.success) return { ok: false, why: describeIssues(p.error) };
      if (!COINS.includes(p.data.s) || p.data.i !== '1m') return { ok: true, events: [] };
      return { ok: true, events: [{ type: FEED_INPUT.candles, source: 'ws', candles: [toCandle(p.data, false)], at }] };
    }
  }
}

function checkEvent(e: FeedInputEvent): void {
  switch (e.type) {
    case FEED_INPUT.mids:
      for (const [c, px] of e.mids) S.expectPositive(px, `mid ${c}`);
      break;
    case FEED_INPUT.book:
      if (e.bestBid) S.expectPositive(e.bestBid, 'bestBid');
      if (e.bestAsk) S.expectPositive(e.bestAsk, 'bestAsk');
      break;
    case FEED_INPUT.trades:
      S.expectPositive(e.lastPx, 'lastPx');
      S.check(Number.isInteger(e.count) && e.count > 0, 'count');
      break;
    case FEED_INPUT.candles:
      e.candles.forEach(S.checkCandle);
      break;
    default:
      break;
  }
}

function startFeed() {
  const clock = new SimulatedClock();
  clock.set(T0);
  const actor = createActor(marketFeedMachine, { clock, input: { coins: [...COINS], intervals: ['1m'], candleCloseGraceMs: null } });
  actor.start();
  return actor;
}

type FeedActor = ReturnType<typeof startFeed>;

/** The machine's accumulated state stays sane: finite positive tick levels, finite pending bars, a finite clock. */
function checkFeed(actor: FeedActor): void {
  const ctx = actor.getSnapshot().context;
  S.check(Number.isFinite(ctx.now), 'feed clock finite');
  for (const [c, t] of Object.entries(ctx.mids)) S.expectPositive(t.last, `tick level ${c}`);
  for (const [k, t] of Object.entries(ctx.closes)) S.expectPositive(t.last, `close level ${k}`);
  for (const t of Object.values(ctx.candles)) if (t.pending) S.checkCandle(t.pending);
}

const MARKET: readonly { readonly channel: 'allMids' | 'l2Book' | 'trades' | 'candle'; readonly samples: readonly unknown[] }[] = [
  { channel: 'allMids', samples: [S.WS_ALL_MIDS] },
  { channel: 'l2Book', samples: [S.WS_BOOK] },
  { channel: 'trades', samples: [S.WS_TRADES] },
  { channel: 'candle', samples: [S.CANDLE] },
];

describe('fuzz: feed messages (10,000 malformed payloads per channel)', () => {
  for (const { channel, samples } of MARKET) {
    it(`${channel}: rejected payloads change nothing; accepted ones keep the feed's invariants`, () => {
      for (const s of samples) expect(marketEvents(channel, s, T0).ok, `${channel} sample parses`).toBe(true);
      const feed = startFeed();
      let at = T0;
      let rejected = 0;
      let accepted = 0;
      fc.assert(
        fc.property(malformedFrom(...samples), (raw) => {
          at += 100;
          const before = feed.getSnapshot();
          const r = marketEvents(channel, raw, at);
          if (!r.ok) {
            rejected++;
            S.check(r.why.length > 0 && r.why.length < 1_000, `error text of ${r.why.length} chars`);
            // Nothing reaches the machine: its snapshot is untouched.
            S.check(feed.getSnapshot() === before, 'a rejected payload changed the feed');
            return;
          }
          accepted++;
          for (const e of r.events) {
            checkEvent(e);
            feed.send(e);
          }
          checkFeed(feed);
        }),
        fuzzParams(0xfeed + channel.length),
      );
      expect(rejected).toBeGreaterThan(5_000);
      expect(feed.getSnapshot().status).toBe('active');
      // Some mutations stay valid (extra keys, other numbers): the machine was really exercised.
      expect(accepted).toBeGreaterThan(50);
      feed.stop();
    });
  }

  it('userFills: rejected or fills whose invariants hold', () => {
    let rejected = 0;
    fc.assert(
      fc.property(malformedFrom(S.WS_USER_FILLS), (raw) => {
        const p = WsUserFillsSchema.safeParse(raw);
        if (!p.success) {
          rejected++;
          S.check(describeIssues(p.error).length < 1_000, 'bounded error text');
          return;
        }
        p.data.fills.map(toFill).forEach(S.checkFill);
      }),
      fuzzParams(0xf111),
    );
    expect(rejected).toBeGreaterThan(5_000);
  });

  it('orderUpdates: rejected or updates whose invariants hold', () => {
    let rejected = 0;
    fc.assert(
      fc.property(malformedFrom(S.WS_ORDER_UPDATES), (raw) => {
        const p = WsOrderUpdatesSchema.safeParse(raw);
        if (!p.success) {
          rejected++;
          S.check(describeIssues(p.error).length < 1_000, 'bounded error text');
          return;
        }
        for (const u of p.data) {
          S.expectId(u.order.oid, 'oid');
          S.expectCloid(u.order.cloid ?? undefined);
          S.expectNonNegative(u.order.sz, 'sz');
          S.expectNonNegative(u.order.origSz, 'origSz');
          S.check(typeof u.status === 'string' && u.status.length > 0, 'status');
          S.expectId(u.statusTimestamp, 'statusTimestamp');
        }
      }),
      fuzzParams(0x0bd),
    );
    expect(rejected).toBeGreaterThan(5_000);
  });
});
