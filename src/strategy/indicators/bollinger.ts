/**
 * Bollinger Bands with TA-Lib's conventions (TA_BBANDS, SMA middle): middle = SMA(period),
 * bands = middle ± k · σ with σ the POPULATION standard deviation of the same window; first output
 * at index period − 1. `width` is (upper − lower) / middle, a fraction (not a percentage).
 *
 * Invariants: a fixed ring of `period` doubles. The running sums are kept relative to a shift
 * (the window mean at the last resync) so that E[x²] − E[x]² does not cancel catastrophically on
 * large prices, and are recomputed from the ring each time it wraps (amortised O(1), no drift).
 */
import { type StreamingIndicator, requirePeriod, runSeries } from './indicator.ts';

export interface BollingerValue {
  readonly upper: number;
  readonly middle: number;
  readonly lower: number;
  readonly stdDev: number;
  /** (upper − lower) / middle; NaN-free: 0 when middle is 0. */
  readonly width: number;
}

export class Bollinger implements StreamingIndicator<number, BollingerValue> {
  readonly period: number;
  readonly multiplier: number;
  readonly #ring: Float64Array;
  #next = 0;
  #count = 0;
  #shift = 0;
  #s1 = 0;
  #s2 = 0;
  #value: BollingerValue | undefined;

  constructor(period = 20, multiplier = 2) {
    this.period = requirePeriod('period', period);
    this.multiplier = multiplier;
    this.#ring = new Float64Array(period);
  }

  get value(): BollingerValue | undefined {
    return this.#value;
  }

  get count(): number {
    return this.#count;
  }

  update(x: number): BollingerValue | undefined {
    if (this.#count === 0) this.#shift = x;
    const old = this.#ring[this.#next]!;
    this.#ring[this.#next] = x;
    this.#next = (this.#next + 1) % this.period;
    this.#count++;
    const d = x - this.#shift;
    this.#s1 += d;
    this.#s2 += d * d;
    if (this.#count > this.period) {
      const o = old - this.#shift;
      this.#s1 -= o;
      this.#s2 -= o * o;
    }
    if (this.#next === 0) this.#resync();
    if (this.#count < this.period) return undefined;
    const n = this.period;
    const m1 = this.#s1 / n;
    const variance = this.#s2 / n - m1 * m1;
    const stdDev = variance > 0 ? Math.sqrt(variance) : 0;
    const middle = this.#shift + m1;
    const upper = middle + this.multiplier * stdDev;
    const lower = middle - this.multiplier * stdDev;
    this.#value = { upper, middle, lower, stdDev, width: middle !== 0 ? (upper - lower) / middle : 0 };
    return this.#value;
  }

  #resync(): void {
    let sum = 0;
    for (const v of this.#ring) sum += v;
    this.#shift = sum / this.period;
    let s1 = 0;
    let s2 = 0;
    for (const v of this.#ring) {
      const d = v - this.#shift;
      s1 += d;
      s2 += d * d;
    }
    this.#s1 = s1;
    this.#s2 = s2;
  }
}

export function bollingerSeries(values: readonly number[], period = 20, multiplier = 2): (BollingerValue | undefined)[] {
  return runSeries(new Bollinger(period, multiplier), values);
}
