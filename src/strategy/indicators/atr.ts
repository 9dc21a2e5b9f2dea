/**
 * True range and ATR with Wilder smoothing, TA-Lib conventions (TA_TRANGE, TA_ATR): the true range
 * exists from the second bar (it needs the previous close); ATR's first output, at index
 * `period`, is the plain mean of the first `period` true ranges (bars 1..period), then
 * atr = (atr · (period − 1) + tr) / period.
 *
 * Invariants: O(1) state.
 */
import { type HlcBar, type StreamingIndicator, requirePeriod, runSeries } from './indicator.ts';

export function trueRange(bar: HlcBar, prevClose: number): number {
  return Math.max(bar.h - bar.l, Math.abs(bar.h - prevClose), Math.abs(bar.l - prevClose));
}

export class Atr implements StreamingIndicator<HlcBar, number> {
  readonly period: number;
  #count = 0;
  #prevClose = 0;
  #sum = 0;
  #tr: number | undefined;
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

  /** The latest true range (undefined on the first bar). */
  get trueRange(): number | undefined {
    return this.#tr;
  }

  update(bar: HlcBar): number | undefined {
    const i = this.#count++;
    const prevClose = this.#prevClose;
    this.#prevClose = bar.c;
    if (i === 0) return undefined;
    const tr = trueRange(bar, prevClose);
    this.#tr = tr;
    const n = this.period;
    if (this.#value === undefined) {
      this.#sum += tr;
      if (i === n) this.#value = this.#sum / n;
    } else {
      this.#value = (this.#value * (n - 1) + tr) / n;
    }
    return this.#value;
  }
}

export function atrSeries(bars: readonly HlcBar[], period = 14): (number | undefined)[] {
  return runSeries(new Atr(period), bars);
}
