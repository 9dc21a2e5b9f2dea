/**
 * Decimal arithmetic for prices, sizes and money, and Hyperliquid's tick / lot rules.
 *
 * Invariants: no float ever carries a price or a size; every value sent on the wire is produced
 * by `toWire` (plain notation, no trailing zeros), and every value read from the wire goes through
 * `parseDecimal`, which refuses NaN, infinities, exponents and empty strings.
 *
 * Library: decimal.js (arbitrary precision, immutable, well kept); configured once here with
 * enough precision for 1e-18 sizes times 1e12 prices.
 */
import { Decimal as DecimalJs } from 'decimal.js';

export const Decimal = DecimalJs.clone({ precision: 40, rounding: DecimalJs.ROUND_HALF_EVEN, toExpNeg: -40, toExpPos: 40 });
export type Decimal = InstanceType<typeof Decimal>;
// Lets callers write `Decimal.Value` for anything decimal.js accepts (string, number, Decimal).
// eslint-disable-next-line @typescript-eslint/no-namespace
export declare namespace Decimal {
  type Value = DecimalJs.Value;
}

export const ZERO = new Decimal(0);
export const ONE = new Decimal(1);

/** Perpetuals allow `6 - szDecimals` price decimals; spot allows `8 - szDecimals`. */
export const PERP_MAX_DECIMALS = 6;
/** Prices carry at most five significant figures (integers are always valid). */
export const MAX_SIG_FIGS = 5;

const WIRE_NUMBER = /^-?(?:0|[1-9]\d*)(?:\.\d+)?$/;

/** Thrown only when a caller breaks an invariant; edge parsing returns values instead. */
export class DecimalFormatError extends Error {
  readonly input: unknown;
  constructor(input: unknown) {
    super(`not a decimal number: ${JSON.stringify(input)}`);
    this.name = 'DecimalFormatError';
    this.input = input;
  }
}

/** Parses a wire decimal (string, or a finite number the SDK may pass). Returns undefined when invalid. */
export function tryParseDecimal(input: unknown): Decimal | undefined {
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return undefined;
    // Shortest round-trip representation, the same the SDK uses when it stringifies numbers.
    input = String(input);
    if (/e/i.test(input as string)) return new Decimal(input as string);
  }
  if (typeof input !== 'string' || !WIRE_NUMBER.test(input)) return undefined;
  return new Decimal(input);
}

export function parseDecimal(input: unknown): Decimal {
  const d = tryParseDecimal(input);
  if (d === undefined) throw new DecimalFormatError(input);
  return d;
}

export function dec(v: DecimalJs.Value): Decimal {
  return new Decimal(v);
}

/** Wire form: plain notation, trailing zeros stripped ("65000.0" → "65000", "0.10" → "0.1"). */
export function toWire(d: Decimal): string {
  if (d.isZero()) return '0';
  return d.toFixed();
}

/** Hyperliquid's display form for some fields ("29792.0"): at least one decimal place. */
export function toWireWithPoint(d: Decimal): string {
  const s = toWire(d);
  return s.includes('.') ? s : `${s}.0`;
}

export function decimalsOf(d: Decimal): number {
  return Math.max(0, d.decimalPlaces());
}

/** True when `px` satisfies the price rule for an asset with `szDecimals` (perp unless `maxDecimals` given). */
export function isValidPrice(px: Decimal, szDecimals: number, maxDecimals = PERP_MAX_DECIMALS): boolean {
  if (px.lte(0)) return false;
  if (px.isInteger()) return true;
  if (decimalsOf(px) > maxDecimals - szDecimals) return false;
  return px.precision(true) <= MAX_SIG_FIGS;
}

/** True when `sz` has at most `szDecimals` decimals and is positive. */
export function isValidSize(sz: Decimal, szDecimals: number): boolean {
  return sz.gt(0) && decimalsOf(sz) <= szDecimals;
}

/**
 * Rounds a price to the nearest valid price (5 significant figures and the decimal limit),
 * in the given direction: 'down' for bids you do not want to overpay, 'up' for asks.
 */
export function roundPrice(px: Decimal, szDecimals: number, mode: 'down' | 'up' | 'nearest' = 'nearest', maxDecimals = PERP_MAX_DECIMALS): Decimal {
  const rounding = mode === 'down' ? Decimal.ROUND_DOWN : mode === 'up' ? Decimal.ROUND_UP : Decimal.ROUND_HALF_UP;
  if (px.lte(0)) return ZERO;
  const intDigits = px.abs().floor().isZero() ? 0 : px.abs().floor().toFixed().length;
  if (intDigits >= MAX_SIG_FIGS) return px.toDecimalPlaces(0, rounding);
  const bySig = px.toSignificantDigits(MAX_SIG_FIGS, rounding);
  return bySig.toDecimalPlaces(Math.max(0, maxDecimals - szDecimals), rounding);
}

/** Rounds a size to the lot (szDecimals), toward zero by default. */
export function roundSize(sz: Decimal, szDecimals: number, mode: 'down' | 'nearest' = 'down'): Decimal {
  return sz.toDecimalPlaces(szDecimals, mode === 'down' ? Decimal.ROUND_DOWN : Decimal.ROUND_HALF_UP);
}

export function minDec(a: Decimal, b: Decimal): Decimal {
  return a.lt(b) ? a : b;
}

export function maxDec(a: Decimal, b: Decimal): Decimal {
  return a.gt(b) ? a : b;
}
