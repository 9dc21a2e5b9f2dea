/**
 * Builds higher-timeframe candles from closed base candles (e.g. 1m → 5m), purely: candles in,
 * closed aggregated candles out, no clock.
 *
 * Invariants:
 *   - only closed base candles of the configured interval and coin count; a bar whose open time is
 *     not after the last one accepted (duplicate or out of order) is ignored;
 *   - buckets are aligned on multiples of the target interval since the epoch (as Hyperliquid's
 *     fixed intervals are), `t` = bucket start, `T` = bucket end − 1, `closed` = true;
 *   - a bucket is emitted as soon as its last base bar arrives, or, if that bar is missing (a gap),
 *     when the first bar of a later bucket arrives; a bucket with no bar at all is skipped, never
 *     invented (a feed that wants flat bars for quiet minutes sends them, as the simulator does);
 *   - o = first open, h = max high, l = min low, c = last close, v = Σ volume of the bars present.
 */
import type { Candle, Coin } from '../domain/types.ts';

const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Length of a fixed interval written `<n>m`, `<n>h` or `<n>d` (as Hyperliquid names them); undefined otherwise. */
export function intervalMs(interval: string): number | undefined {
  const m = /^([1-9]\d{0,3})([mhd])$/.exec(interval);
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** Why an aggregator cannot be built: the caller's configuration, reported as a value. */
export type AggregatorConfigIssue = { readonly kind: 'bad_interval'; readonly interval: string } | { readonly kind: 'not_a_multiple'; readonly from: string; readonly to: string };

export interface CandleAggregatorOptions {
  readonly from: string;
  readonly to: string;
  /** Only candles of this coin count (by default, the coin of the first candle accepted). */
  readonly coin?: Coin;
}

interface Bucket {
  start: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
}

export class CandleAggregator {
  readonly from: string;
  readonly to: string;
  readonly #fromMs: number;
  readonly #toMs: number;
  #coin: Coin | undefined;
  #lastT = Number.NEGATIVE_INFINITY;
  #bucket: Bucket | undefined;

  private constructor(from: string, to: string, fromMs: number, toMs: number, coin: Coin | undefined) {
    this.from = from;
    this.to = to;
    this.#fromMs = fromMs;
    this.#toMs = toMs;
    this.#coin = coin;
  }

  /** Validates the intervals: `to` must be a whole multiple (≥ 1) of `from`. */
  static create(options: CandleAggregatorOptions): { ok: true; aggregator: CandleAggregator } | { ok: false; issue: AggregatorConfigIssue } {
    const fromMs = intervalMs(options.from);
    if (fromMs === undefined) return { ok: false, issue: { kind: 'bad_interval', interval: options.from } };
    const toMs = intervalMs(options.to);
    if (toMs === undefined) return { ok: false, issue: { kind: 'bad_interval', interval: options.to } };
    if (toMs < fromMs || toMs % fromMs !== 0) return { ok: false, issue: { kind: 'not_a_multiple', from: options.from, to: options.to } };
    return { ok: true, aggregator: new CandleAggregator(options.from, options.to, fromMs, toMs, options.coin) };
  }

  /** Base bars per target bar. */
  get ratio(): number {
    return this.#toMs / this.#fromMs;
  }

  /**
   * Feeds one base candle; returns the target candles it closes, oldest first (none, one, or two
   * when a bar both ends a gap-truncated bucket and completes its own).
   */
  update(candle: Candle): Candle[] {
    if (!candle.closed || candle.interval !== this.from || candle.t <= this.#lastT) return [];
    if (this.#coin === undefined) this.#coin = candle.coin;
    else if (candle.coin !== this.#coin) return [];
    this.#lastT = candle.t;
    const out: Candle[] = [];
    const start = Math.floor(candle.t / this.#toMs) * this.#toMs;
    let b = this.#bucket;
    if (b !== undefined && b.start !== start) {
      out.push(this.#emit(b));
      b = undefined;
    }
    if (b === undefined) {
      b = { start, o: candle.o, h: candle.h, l: candle.l, c: candle.c, v: candle.v };
    } else {
      b.h = Math.max(b.h, candle.h);
      b.l = Math.min(b.l, candle.l);
      b.c = candle.c;
      b.v += candle.v;
    }
    if (candle.t + this.#fromMs >= start + this.#toMs) {
      out.push(this.#emit(b));
      this.#bucket = undefined;
    } else {
      this.#bucket = b;
    }
    return out;
  }

  #emit(b: Bucket): Candle {
    return { coin: this.#coin!, interval: this.to, t: b.start, T: b.start + this.#toMs - 1, o: b.o, h: b.h, l: b.l, c: b.c, v: b.v, closed: true };
  }
}
