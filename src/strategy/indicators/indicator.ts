/**
 * Shared shapes of keel's streaming indicators.
 *
 * Invariants every indicator keeps: `update` is O(1) (amortised O(1) where a fixed-size window is
 * re-summed to cancel floating-point drift), memory is bounded by the period (no array grows with
 * the stream), `update` returns `undefined` exactly during TA-Lib's lookback and a value from the
 * first index TA-Lib outputs, and the same inputs always give bit-identical outputs.
 */

/** A bar as the range-based indicators (ATR, ADX) read it; a domain `Candle` satisfies it. */
export interface HlcBar {
  readonly h: number;
  readonly l: number;
  readonly c: number;
}

/** One streaming indicator: feed inputs in order, read the latest output. */
export interface StreamingIndicator<In, Out> {
  update(input: In): Out | undefined;
  /** The latest output (undefined during the warm-up). */
  readonly value: Out | undefined;
  /** Inputs seen so far. */
  readonly count: number;
}

/** Thrown on a programming error (a period that is not a positive integer); inputs never throw. */
export class IndicatorConfigError extends Error {
  readonly parameter: string;
  readonly received: unknown;
  constructor(parameter: string, received: unknown, expected: string) {
    super(`indicator parameter ${parameter} must be ${expected}, got ${String(received)}`);
    this.name = 'IndicatorConfigError';
    this.parameter = parameter;
    this.received = received;
  }
}

export function requirePeriod(name: string, period: number, min = 1): number {
  if (!Number.isInteger(period) || period < min) throw new IndicatorConfigError(name, period, `an integer ≥ ${min}`);
  return period;
}

/** Runs a fresh streaming indicator over a whole series: output i belongs to input i. */
export function runSeries<In, Out>(indicator: StreamingIndicator<In, Out>, inputs: readonly In[]): (Out | undefined)[] {
  return inputs.map((x) => indicator.update(x));
}
