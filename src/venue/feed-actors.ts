/**
 * The market feed's effect actors, over any `VenuePort`: the WebSocket stream (invoked for the
 * feed's whole life) and the REST poller (invoked only while the feed is polling). The supervisor
 * provides them to machines/market-feed.machine.ts with `.provide({ actors })`.
 *
 * Invariants: they only forward parsed domain values as FEED_INPUT events stamped with receive
 * times from the injected clock; decisions (which path, staleness, closing bars) stay in the
 * machine. A failed subscribe or poll is reported as `feed.in.error` and retried, never thrown;
 * cleanup unsubscribes and stops every timer, so a stopped actor sends nothing more.
 */
import { fromCallback } from 'xstate';
import type { Candle, Coin } from '../domain/types.ts';
import type { Decimal } from '../domain/decimal.ts';
import type { Subscription, VenuePort } from './port.ts';
import { FEED_INPUT, intervalMs, seriesKey, type FeedInputEvent, type MarketPollInput, type MarketStreamInput } from './feed-port.ts';

export interface FeedActorDeps {
  readonly venue: VenuePort;
  /** The clock stamped on connection events and polls (default Date.now). */
  readonly now?: () => number;
  /** Delay before retrying a failed subscribe (default 2 s). */
  readonly retryMs?: number;
  /** Bars of look-back on a series' first poll (default 3). */
  readonly lookbackBars?: number;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** WebSocket actor: subscribes to mids, books, trades and candles, and reports connection changes. */
export function createMarketStreamActor(deps: FeedActorDeps) {
  const now = deps.now ?? Date.now;
  return fromCallback<FeedInputEvent, MarketStreamInput>(({ sendBack, input }) => {
    let stopped = false;
    let sub: Subscription | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const send = (e: FeedInputEvent) => {
      if (!stopped) sendBack(e);
    };
    const offConn = deps.venue.onConnectionState((state) => send({ type: FEED_INPUT.connection, state, at: now() }));
    const attempt = () => {
      timer = undefined;
      deps.venue
        .subscribeMarket(input.coins, input.intervals, {
          onMids: (mids, at) => send({ type: FEED_INPUT.mids, source: 'ws', mids, at }),
          onCandle: (candle, at) => send({ type: FEED_INPUT.candles, source: 'ws', candles: [candle], at }),
          onTrades: (coin, trades, at) => {
            const last = trades[trades.length - 1];
            if (last) send({ type: FEED_INPUT.trades, source: 'ws', coin, lastPx: last.px, count: trades.length, at });
          },
          onBook: (coin, bestBid, bestAsk, _time, at) =>
            send({ type: FEED_INPUT.book, source: 'ws', coin, ...(bestBid ? { bestBid } : {}), ...(bestAsk ? { bestAsk } : {}), at }),
        })
        .then(
          (s) => {
            if (stopped) void s.unsubscribe().catch(() => {});
            else {
              sub = s;
              // The subscription was acknowledged over an open socket.
              send({ type: FEED_INPUT.connection, state: 'up', at: now() });
            }
          },
          (e: unknown) => {
            send({ type: FEED_INPUT.error, source: 'ws', message: `subscribe: ${message(e)}`, at: now() });
            if (!stopped) timer = setTimeout(attempt, deps.retryMs ?? 2_000);
          },
        );
    };
    attempt();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      offConn();
      void sub?.unsubscribe().catch(() => {});
    };
  });
}

/** REST actor: polls `mids()` and `candles()` every `pollIntervalMs`, one poll at a time. */
export function createMarketPollActor(deps: FeedActorDeps) {
  const now = deps.now ?? Date.now;
  const lookback = deps.lookbackBars ?? 3;
  return fromCallback<FeedInputEvent, MarketPollInput>(({ sendBack, input }) => {
    let stopped = false;
    let running = false;
    const since = new Map(Object.entries(input.since));
    const wanted = new Set(input.coins);
    const send = (e: FeedInputEvent) => {
      if (!stopped) sendBack(e);
    };
    const poll = async () => {
      if (running || stopped) return;
      running = true;
      try {
        try {
          const all = await deps.venue.mids();
          const mids = new Map<Coin, Decimal>();
          for (const [c, px] of all) if (wanted.has(c)) mids.set(c, px);
          send({ type: FEED_INPUT.mids, source: 'rest', mids, at: now() });
        } catch (e) {
          send({ type: FEED_INPUT.error, source: 'rest', message: `mids: ${message(e)}`, at: now() });
        }
        for (const coin of input.coins) {
          for (const interval of input.intervals) {
            if (stopped) return;
            const key = seriesKey(coin, interval);
            const start = since.get(key) ?? now() - lookback * (intervalMs(interval) ?? 60_000);
            let candles: Candle[];
            try {
              candles = await deps.venue.candles(coin, interval, start);
            } catch (e) {
              send({ type: FEED_INPUT.error, source: 'rest', message: `candles ${key}: ${message(e)}`, at: now() });
              continue;
            }
            if (candles.length === 0) continue;
            // Ask from the newest bar next time: it is the one still in progress.
            since.set(key, Math.max(...candles.map((c) => c.t)));
            send({ type: FEED_INPUT.candles, source: 'rest', candles, at: now() });
          }
        }
      } finally {
        running = false;
      }
    };
    void poll();
    const timer = setInterval(() => void poll(), input.pollIntervalMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  });
}
