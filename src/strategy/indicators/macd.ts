/**
 * MACD with TA-Lib's conventions (TA_MACD): macd = EMA(fast) − EMA(slow), signal = EMA(signal) of
 * macd, histogram = macd − signal.
 *
 * TA-Lib aligns the two EMAs: both start at index slow − 1, the slow one seeded with the SMA of the
 * first `slow` inputs and the fast one with the SMA of the `fast` inputs ending there (not of the
 * first `fast` inputs). The signal EMA is seeded with the SMA of the first `signal` MACD values,
 * so with (12, 26, 9) the first MACD line is at index 25 and the first output at index 33.
 *
 * Invariants: O(1) state (a ring of `fast` inputs used only until the seed, then three EMAs);
 * `update` returns undefined before index slow + signal − 2, exactly like TA-Lib.
 */
import { Ema } from './ema.ts';
import { IndicatorConfigError, type StreamingIndicator, requirePeriod, runSeries } from './indicator.ts';

export interface MacdValue {
  readonly macd: number;
  readonly signal: number;
  readonly histogram: number;
}

export class Macd implements StreamingIndicator<number, MacdValue> {
  readonly fastPeriod: number;
  readonly slowPeriod: number;
  readonly signalPeriod: number;
  readonly #slow: Ema;
  readonly #signal: Ema;
  #fast: Ema | undefined;
  readonly #fastRing: Float64Array;
  #count = 0;
  #line: number | undefined;
  #value: MacdValue | undefined;

  constructor(fast = 12, slow = 26, signal = 9) {
    this.fastPeriod = requirePeriod('fast', fast);
    this.slowPeriod = requirePeriod('slow', slow);
    this.signalPeriod = requirePeriod('signal', signal);
    if (fast >= slow) throw new IndicatorConfigError('fast', fast, `less than slow (${slow})`);
    this.#slow = new Ema(slow);
    this.#signal = new Ema(signal);
    this.#fastRing = new Float64Array(fast);
  }

  get value(): MacdValue | undefined {
    return this.#value;
  }

  get count(): number {
    return this.#count;
  }

  /** The MACD line alone, available from index slow − 1 (before the signal line is). */
  get line(): number | undefined {
    return this.#line;
  }

  /** Index (0-based) of the first full output. */
  get lookback(): number {
    return this.slowPeriod + this.signalPeriod - 2;
  }

  update(x: number): MacdValue | undefined {
    const i = this.#count++;
    const slow = this.#slow.update(x);
    let fast: number | undefined;
    if (this.#fast !== undefined) {
      fast = this.#fast.update(x);
    } else {
      this.#fastRing[i % this.fastPeriod] = x;
      if (slow !== undefined) {
        let s = 0;
        for (const v of this.#fastRing) s += v;
        fast = s / this.fastPeriod;
        this.#fast = Ema.seeded(this.fastPeriod, fast, i + 1);
      }
    }
    if (fast === undefined || slow === undefined) return undefined;
    const line = fast - slow;
    this.#line = line;
    const signal = this.#signal.update(line);
    this.#value = signal === undefined ? undefined : { macd: line, signal, histogram: line - signal };
    return this.#value;
  }
}

export function macdSeries(values: readonly number[], fast = 12, slow = 26, signal = 9): (MacdValue | undefined)[] {
  return runSeries(new Macd(fast, slow, signal), values);
}
