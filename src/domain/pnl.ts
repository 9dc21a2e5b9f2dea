/**
 * Round-trip PnL, fees included (seed 000's formula):
 *   gross = (exit − entry) × sz for a long, (entry − exit) × sz for a short;
 *   net   = gross − every fee of the entry and exit fills.
 * A fee is what the venue charged: positive when paid, negative for a maker rebate (so a rebate
 * raises net PnL).
 *
 * Invariants: pure Decimal arithmetic, no floats, no rounding; `roundTripFromFills` takes the
 * size-weighted average of each side and computes gross exactly, without a rounded average.
 */
import { ZERO, type Decimal } from './decimal.ts';
import type { Direction } from './types.ts';

export interface PnlInput {
  readonly direction: Direction;
  readonly sz: Decimal;
  readonly entryPx: Decimal;
  readonly exitPx: Decimal;
  /** Fees of the entry fills (for a partial close: the share attributable to `sz`). */
  readonly entryFees: Decimal;
  readonly exitFees: Decimal;
}

export interface Pnl {
  readonly gross: Decimal;
  readonly fees: Decimal;
  readonly net: Decimal;
}

/** PnL of closing `sz` opened at `entryPx` and closed at `exitPx`. */
export function tradePnl(i: PnlInput): Pnl {
  const move = i.direction === 'long' ? i.exitPx.minus(i.entryPx) : i.entryPx.minus(i.exitPx);
  const gross = move.times(i.sz);
  const fees = i.entryFees.plus(i.exitFees);
  return { gross, fees, net: gross.minus(fees) };
}

export interface PnlFill {
  readonly px: Decimal;
  readonly sz: Decimal;
  readonly fee: Decimal;
}

export interface RoundTrip extends Pnl {
  readonly sz: Decimal;
  /** Size-weighted average prices (rounded only by decimal.js's 40-digit precision, for display). */
  readonly entryPx: Decimal;
  readonly exitPx: Decimal;
}

/**
 * A complete round trip from its fills: the exit fills must close exactly what the entry fills
 * opened (several of each, e.g. a take-profit in two steps). Returns undefined when they do not,
 * or when either side is empty: a partial close is priced with `tradePnl` and a share of fees.
 */
export function roundTripFromFills(direction: Direction, entries: readonly PnlFill[], exits: readonly PnlFill[]): RoundTrip | undefined {
  const sum = (fs: readonly PnlFill[], f: (x: PnlFill) => Decimal): Decimal => fs.reduce((a, x) => a.plus(f(x)), ZERO);
  const entrySz = sum(entries, (f) => f.sz);
  const exitSz = sum(exits, (f) => f.sz);
  if (entrySz.lte(0) || !entrySz.eq(exitSz)) return undefined;
  const entryNotional = sum(entries, (f) => f.px.times(f.sz));
  const exitNotional = sum(exits, (f) => f.px.times(f.sz));
  // Equal to (exitAvg − entryAvg) × sz, computed without dividing.
  const gross = direction === 'long' ? exitNotional.minus(entryNotional) : entryNotional.minus(exitNotional);
  const fees = sum(entries, (f) => f.fee).plus(sum(exits, (f) => f.fee));
  return { sz: entrySz, entryPx: entryNotional.div(entrySz), exitPx: exitNotional.div(exitSz), gross, fees, net: gross.minus(fees) };
}
