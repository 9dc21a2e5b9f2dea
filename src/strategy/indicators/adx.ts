/**
 * ADX with TA-Lib's conventions (TA_ADX, TA_PLUS_DI, TA_MINUS_DI).
 *
 * Directional movement from the second bar: up = h − prevH, down = prevL − l; +DM = up when
 * up > down and up > 0, −DM = down when down > up and down > 0. TR, +DM and −DM are Wilder sums:
 * the plain sums of bars 1..period−1, then s = s − s / period + x from bar `period` on, where
 * +DI/−DI = 100 · DM / TR and DX = 100 · |+DI − −DI| / (+DI + −DI) start. The first ADX (index
 * 2·period − 1, so 27 for 14) is the mean of the first `period` DX values, then
 * adx = (adx · (period − 1) + dx) / period. A bar where TR or +DI + −DI is zero leaves ADX as is
 * (TA-Lib does the same).
 *
 * Invariants: O(1) state.
 */
import { trueRange } from './atr.ts';
import { type HlcBar, type StreamingIndicator, requirePeriod, runSeries } from './indicator.ts';

const EPS = 1e-14; // TA-Lib's TA_IS_ZERO

export class Adx implements StreamingIndicator<HlcBar, number> {
  readonly period: number;
  #count = 0;
  #prev: HlcBar | undefined;
  #tr = 0;
  #plusDm = 0;
  #minusDm = 0;
  #sumDx = 0;
  #plusDi: number | undefined;
  #minusDi: number | undefined;
  #dx: number | undefined;
  #value: number | undefined;

  constructor(period = 14) {
    this.period = requirePeriod('period', period, 2);
  }

  get value(): number | undefined {
    return this.#value;
  }

  get count(): number {
    return this.#count;
  }

  /** +DI of the latest bar (from index `period`). */
  get plusDi(): number | undefined {
    return this.#plusDi;
  }

  get minusDi(): number | undefined {
    return this.#minusDi;
  }

  get dx(): number | undefined {
    return this.#dx;
  }

  /** The Wilder-smoothed sums behind the DIs (diagnostics; compared with worksheets in tests). */
  get smoothed(): { readonly tr: number; readonly plusDm: number; readonly minusDm: number } {
    return { tr: this.#tr, plusDm: this.#plusDm, minusDm: this.#minusDm };
  }

  update(bar: HlcBar): number | undefined {
    const i = this.#count++;
    const prev = this.#prev;
    this.#prev = { h: bar.h, l: bar.l, c: bar.c };
    if (prev === undefined) return undefined;
    const n = this.period;
    const up = bar.h - prev.h;
    const down = prev.l - bar.l;
    let plus = 0;
    let minus = 0;
    if (down > 0 && up < down) minus = down;
    else if (up > 0 && up > down) plus = up;
    const tr = trueRange(bar, prev.c);
    if (i < n) {
      this.#tr += tr;
      this.#plusDm += plus;
      this.#minusDm += minus;
      return undefined;
    }
    this.#tr = this.#tr - this.#tr / n + tr;
    this.#plusDm = this.#plusDm - this.#plusDm / n + plus;
    this.#minusDm = this.#minusDm - this.#minusDm / n + minus;
    let dx: number | undefined;
    if (Math.abs(this.#tr) > EPS) {
      const plusDi = 100 * (this.#plusDm / this.#tr);
      const minusDi = 100 * (this.#minusDm / this.#tr);
      this.#plusDi = plusDi;
      this.#minusDi = minusDi;
      const sum = plusDi + minusDi;
      if (Math.abs(sum) > EPS) dx = 100 * (Math.abs(minusDi - plusDi) / sum);
    }
    this.#dx = dx;
    if (i < 2 * n - 1) {
      if (dx !== undefined) this.#sumDx += dx;
      return undefined;
    }
    if (i === 2 * n - 1) {
      if (dx !== undefined) this.#sumDx += dx;
      this.#value = this.#sumDx / n;
    } else if (dx !== undefined) {
      this.#value = (this.#value! * (n - 1) + dx) / n;
    }
    return this.#value;
  }
}

export function adxSeries(bars: readonly HlcBar[], period = 14): (number | undefined)[] {
  return runSeries(new Adx(period), bars);
}
