/**
 * Reads the reference indicator files in tests/fixtures/indicators (see SOURCES.md there) into
 * columns of numbers; an empty cell or "NaN" is undefined.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const FIXTURE_DIR = resolve(import.meta.dirname, '../fixtures/indicators');

export interface Table {
  readonly rows: number;
  col(name: string): (number | undefined)[];
  /** A column that must be complete (prices). */
  num(name: string): number[];
}

export function readTable(file: string): Table {
  const lines = readFileSync(resolve(FIXTURE_DIR, file), 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = lines[0]!.split(',').map((h) => h.trim());
  const body = lines.slice(1).map((l) => l.split(','));
  const col = (name: string): (number | undefined)[] => {
    const k = header.indexOf(name);
    if (k < 0) throw new Error(`${file}: no column ${JSON.stringify(name)} in ${header.join('|')}`);
    return body.map((cells) => {
      const s = (cells[k] ?? '').trim();
      if (s === '' || s === 'NaN') return undefined;
      const x = Number(s);
      if (!Number.isFinite(x)) throw new Error(`${file}: bad number ${s} in ${name}`);
      return x;
    });
  };
  const num = (name: string): number[] =>
    col(name).map((x, i) => {
      if (x === undefined) throw new Error(`${file}: ${name} is empty on data row ${i}`);
      return x;
    });
  return { rows: body.length, col, num };
}

/** Index of the first defined value. */
export function firstDefined(xs: readonly (number | undefined)[]): number {
  return xs.findIndex((x) => x !== undefined);
}
