/**
 * Simple moving average (TA-Lib SMA): the mean of the last `period` inputs, first output at index
 * period − 1.
 *
 * Invariants: a fixed ring of `period` doubles; the running sum is recomputed from the ring each
 * time it wraps, so rounding drift never accumulates past one window (amortised O(1)).
 */
import { type StreamingIndicator, requirePeriod, runSeries } from './indicator.ts';

export class Sma implements StreamingIndicator<number, number> {
  readonly period: number;
  readonly #ring: Float64Array;
  #next = 0;
  #count = 0;
  #sum = 0;
  #value: number | undefined;

  constructor(period: number) {
    this.period = requirePeriod('period', period);
    this.#ring = new Float64Array(period);
  }

  get value(): number | undefined {
    return this.#value;
  }

  get count(): number {
    return this.#count;
  }

  update(x: number): number | undefined {
    const old = this.#ring[this.#next]!;
    this.#ring[this.#next] = x;
    this.#next = (this.#next + 1) % this.period;
    this.#count++;
    if (this.#count <= this.period) this.#sum += x;
    else this.#sum += x - old;
    if (this.#next === 0) {
      let s = 0;
      for (const v of this.#ring) s += v;
      this.#sum = s;
    }
    this.#value = this.#count >= this.period ? this.#sum / this.period : undefined;
    return this.#value;
  }
}

export function smaSeries(values: readonly number[], period: number): (number | undefined)[] {
  return runSeries(new Sma(period), values);
}
