/**
 * Hyperliquid candle intervals and their bucket boundaries (UTC).
 *
 * Invariants: every bucket start is aligned like the exchange's (`1m`..`3d` and `1w` on epoch
 * multiples, so Hyperliquid's weeks start on Thursday 00:00 UTC like 1970-01-01 — as its API serves
 * them, see rainbow-me/rainbow#6920 — and `1M` on the first of the month),
 * and `bucketEnd(t) = start of the next bucket`, so a candle's `T` is `bucketEnd − 1`.
 */
export const CANDLE_INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;
export type CandleInterval = (typeof CANDLE_INTERVALS)[number];

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const FIXED: Record<Exclude<CandleInterval, '1M'>, number> = {
  '1m': MIN, '3m': 3 * MIN, '5m': 5 * MIN, '15m': 15 * MIN, '30m': 30 * MIN,
  '1h': HOUR, '2h': 2 * HOUR, '4h': 4 * HOUR, '8h': 8 * HOUR, '12h': 12 * HOUR,
  '1d': DAY, '3d': 3 * DAY, '1w': WEEK,
};

export function isCandleInterval(x: unknown): x is CandleInterval {
  return typeof x === 'string' && (CANDLE_INTERVALS as readonly string[]).includes(x);
}

/** Start of the bucket containing `t`. */
export function bucketStart(t: number, interval: CandleInterval): number {
  if (interval === '1M') {
    const d = new Date(t);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  const ms = FIXED[interval];
  return Math.floor(t / ms) * ms;
}

/** Start of the bucket after the one starting at `start` (exclusive end). */
export function bucketEnd(start: number, interval: CandleInterval): number {
  if (interval === '1M') {
    const d = new Date(start);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  return start + FIXED[interval];
}
