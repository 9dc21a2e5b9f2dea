/**
 * The market feed's input vocabulary: the events the feed actors (feed-actors.ts) send to the
 * market-feed machine (machines/market-feed.machine.ts). It lives beside the venue port so the
 * machine imports port types only and the adapters never import a machine.
 *
 * Invariants: every event carries `at`, the receive time from the injected clock (ms); values are
 * already parsed domain types (the adapter parsed them); `source` names the path that delivered
 * them, so the feed can tell WebSocket liveness from REST polling.
 */
import type { Decimal } from '../domain/decimal.ts';
import type { Candle, Coin } from '../domain/types.ts';

export type FeedSource = 'ws' | 'rest';

export const FEED_INPUT = {
  mids: 'feed.in.mids',
  candles: 'feed.in.candles',
  trades: 'feed.in.trades',
  book: 'feed.in.book',
  connection: 'feed.in.connection',
  error: 'feed.in.error',
} as const;

export type FeedInputEvent =
  | { readonly type: typeof FEED_INPUT.mids; readonly source: FeedSource; readonly mids: ReadonlyMap<Coin, Decimal>; readonly at: number }
  /** Bars in time order; the WebSocket sends one in-progress bar, REST a recent window. */
  | { readonly type: typeof FEED_INPUT.candles; readonly source: FeedSource; readonly candles: readonly Candle[]; readonly at: number }
  | { readonly type: typeof FEED_INPUT.trades; readonly source: FeedSource; readonly coin: Coin; readonly lastPx: Decimal; readonly count: number; readonly at: number }
  | { readonly type: typeof FEED_INPUT.book; readonly source: FeedSource; readonly coin: Coin; readonly bestBid?: Decimal; readonly bestAsk?: Decimal; readonly at: number }
  | { readonly type: typeof FEED_INPUT.connection; readonly state: 'up' | 'down'; readonly at: number }
  /** A failed subscribe or poll: information for logs and the watchdog, not a state change. */
  | { readonly type: typeof FEED_INPUT.error; readonly source: FeedSource; readonly message: string; readonly at: number };

/** Input of the WebSocket actor the feed invokes for its whole life. */
export interface MarketStreamInput {
  readonly coins: readonly Coin[];
  readonly intervals: readonly string[];
}

/** Input of the REST actor the feed invokes while polling. */
export interface MarketPollInput extends MarketStreamInput {
  readonly pollIntervalMs: number;
  /** Latest bar open time known per `coin|interval` (seriesKey), so polling asks only for what is new. */
  readonly since: Readonly<Record<string, number>>;
}

/** Key of one candle series. */
export const seriesKey = (coin: Coin, interval: string): string => `${coin}|${interval}`;

const MIN = 60_000;
const INTERVAL_MS: Readonly<Record<string, number>> = {
  '1m': MIN,
  '3m': 3 * MIN,
  '5m': 5 * MIN,
  '15m': 15 * MIN,
  '30m': 30 * MIN,
  '1h': 60 * MIN,
  '2h': 120 * MIN,
  '4h': 240 * MIN,
  '8h': 480 * MIN,
  '12h': 720 * MIN,
  '1d': 1440 * MIN,
  '3d': 3 * 1440 * MIN,
  '1w': 7 * 1440 * MIN,
  // Months vary; 31 days is an upper bound, which is what look-back windows need.
  '1M': 31 * 1440 * MIN,
};

/** Nominal length of a Hyperliquid candle interval in ms, or undefined for an unknown interval. */
export function intervalMs(interval: string): number | undefined {
  return INTERVAL_MS[interval];
}
