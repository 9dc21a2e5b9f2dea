/**
 * Exponential moving average with TA-Lib's default seeding: the first output (index period − 1)
 * is the SMA of the first `period` inputs; after it, ema = (x − ema) · k + ema with
 * k = 2 / (period + 1) (the same operation order as TA-Lib, so results agree to the last bits).
 *
 * Invariants: O(1) state (a running sum during the seed, then one double).
 */
import { type StreamingIndicator, requirePeriod, runSeries } from './indicator.ts';

export class Ema implements StreamingIndicator<number, number> {
  readonly period: number;
  readonly k: number;
  #count = 0;
  #seedSum = 0;
  #value: number | undefined;

  constructor(period: number) {
    this.period = requirePeriod('period', period);
    this.k = 2 / (period + 1);
  }

  get value(): number | undefined {
    return this.#value;
  }

  get count(): number {
    return this.#count;
  }

  update(x: number): number | undefined {
    this.#count++;
    if (this.#value !== undefined) {
      this.#value = (x - this.#value) * this.k + this.#value;
    } else {
      this.#seedSum += x;
      if (this.#count === this.period) this.#value = this.#seedSum / this.period;
    }
    return this.#value;
  }

  /** Starts the recursion from a given seed (TA-Lib's MACD seeds its fast EMA late; see macd.ts). */
  static seeded(period: number, seed: number, inputsSeen: number): Ema {
    const e = new Ema(period);
    e.#value = seed;
    e.#count = inputsSeen;
    return e;
  }
}

export function emaSeries(values: readonly number[], period: number): (number | undefined)[] {
  return runSeries(new Ema(period), values);
}
