/**
 * Conversions between domain values and SQLite columns: decimals as wire TEXT, booleans as 0/1,
 * JSON as TEXT. Reading is parsing at an edge: a value that does not decode is a `corrupt_row`
 * StoreError naming the column, never garbage handed to a machine.
 */
import { toWire, tryParseDecimal, type Decimal } from '../domain/decimal.ts';
import { StoreError } from './errors.ts';

export function decToDb(d: Decimal): string {
  if (!d.isFinite()) throw new StoreError('invalid_input', `not a finite decimal: ${d.toString()}`);
  return toWire(d);
}

export function optDecToDb(d: Decimal | undefined): string | null {
  return d === undefined ? null : decToDb(d);
}

export function decFromDb(v: string, column: string): Decimal {
  const d = tryParseDecimal(v);
  if (d === undefined) throw new StoreError('corrupt_row', `column ${column} holds ${JSON.stringify(v)}, not a decimal`, { column, value: v });
  return d;
}

export function optDecFromDb(v: string | null, column: string): Decimal | undefined {
  return v === null ? undefined : decFromDb(v, column);
}

export function boolToDb(b: boolean): number {
  return b ? 1 : 0;
}

export function boolFromDb(v: number, column: string): boolean {
  if (v === 0 || v === 1) return v === 1;
  throw new StoreError('corrupt_row', `column ${column} holds ${String(v)}, not 0/1`, { column, value: v });
}

export function oneOf<T extends string>(v: string, allowed: readonly T[], column: string): T {
  if ((allowed as readonly string[]).includes(v)) return v as T;
  throw new StoreError('corrupt_row', `column ${column} holds ${JSON.stringify(v)}, not one of ${allowed.join(', ')}`, { column, value: v });
}

export function jsonFromDb(v: string, column: string): unknown {
  try {
    return JSON.parse(v) as unknown;
  } catch (cause) {
    throw new StoreError('corrupt_row', `column ${column} is not JSON`, { column, value: v }, { cause });
  }
}

export function jsonToDb(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) throw new StoreError('invalid_input', 'value is not JSON-serialisable');
  return s;
}

export function undefIfNull<T>(v: T | null): T | undefined {
  return v === null ? undefined : v;
}

