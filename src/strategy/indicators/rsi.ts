/**
 * RSI with Wilder smoothing, TA-Lib conventions (TA_RSI, default compatibility): the average gain
 * and loss start as the plain means of the first `period` changes (first output at index
 * `period`), then avg = (avg · (period − 1) + change) / period. RSI = 100 · gain / (gain + loss),
 * 0 when both are zero (as TA-Lib).
 *
 * Invariants: O(1) state.
 */
import { type StreamingIndicator, requirePeriod, runSeries } from './indicator.ts';

const EPS = 1e-14; // TA-Lib's TA_IS_ZERO

export class Rsi implements StreamingIndicator<number, number> {
  readonly period: number;
  #count = 0;
  #prev = 0;
  #gain = 0;
  #loss = 0;
  #value: number | undefined;

  constructor(period = 14) {
    this.period = requirePeriod('period', period);
  }

  get value(): number | undefined {
    return this.#value;
  }

  get count(): number {
    return this.#count;
  }

  update(x: number): number | undefined {
    const i = this.#count++;
    const change = x - this.#prev;
    this.#prev = x;
    if (i === 0) return undefined;
    const n = this.period;
    if (i <= n) {
      if (change < 0) this.#loss -= change;
      else this.#gain += change;
      if (i < n) return undefined;
      this.#gain /= n;
      this.#loss /= n;
    } else {
      this.#gain *= n - 1;
      this.#loss *= n - 1;
      if (change < 0) this.#loss -= change;
      else this.#gain += change;
      this.#gain /= n;
      this.#loss /= n;
    }
    const total = this.#gain + this.#loss;
    this.#value = Math.abs(total) > EPS ? 100 * (this.#gain / total) : 0;
    return this.#value;
  }
}

export function rsiSeries(values: readonly number[], period = 14): (number | undefined)[] {
  return runSeries(new Rsi(period), values);
}
