/**
 * Parsers for recorded 1-minute candle files (pure: text in, bars or issues out).
 *
 * Two formats are accepted (documented in data/README.md):
 *   - Lean minute files (QuantConnect): no header, `ms_since_midnight,open,high,low,close,volume`,
 *     the UTC date taken from the file name `YYYYMMDD_*.csv`;
 *   - plain CSV with the header `time,open,high,low,close,volume`, `time` in epoch milliseconds.
 *
 * Invariants of a successful parse: bars are 1-minute, minute-aligned, strictly increasing in time,
 * 0 < low ≤ min(open, close) ≤ max(open, close) ≤ high, volume ≥ 0, every value an exact Decimal.
 * A bad row never throws: it becomes a `CandleIssue` naming the file and the 1-based line.
 */
import { Decimal } from '../../domain/decimal.ts';

export const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Absent minutes are filled; a hole longer than this is far more likely a wrong file than a quiet market. */
export const MAX_GAP_MINUTES = 7 * 24 * 60;
/** Stop collecting after this many issues: the first ones are what the user needs to see. */
const MAX_ISSUES = 20;

/** One recorded 1-minute bar; `t` is its open time (epoch ms, UTC), volume in the coin's units. */
export interface Bar {
  readonly t: number;
  readonly o: Decimal;
  readonly h: Decimal;
  readonly l: Decimal;
  readonly c: Decimal;
  readonly v: Decimal;
}

export interface CandleIssue {
  readonly file: string;
  /** 1-based line number, 0 when the issue concerns the whole file. */
  readonly line: number;
  readonly message: string;
}

export type ParseResult = { readonly ok: true; readonly bars: Bar[] } | { readonly ok: false; readonly issues: CandleIssue[] };

/** How a file's volume column is expressed; the replay always works in units of the coin. */
export type VolumeUnit = 'base' | 'quote' | 'contracts100usd';
export const VOLUME_UNITS: readonly VolumeUnit[] = ['base', 'quote', 'contracts100usd'];

export function formatIssue(i: CandleIssue): string {
  return i.line > 0 ? `${i.file}:${i.line}: ${i.message}` : `${i.file}: ${i.message}`;
}

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER = /^\d+$/;
const LEAN_NAME = /^(\d{4})(\d{2})(\d{2})_[^/\\]*\.csv$/i;
const PLAIN_HEADER = ['time', 'open', 'high', 'low', 'close', 'volume'];

function baseName(file: string): string {
  const parts = file.split(/[/\\]/);
  return parts[parts.length - 1] ?? file;
}

/** Midnight (UTC, epoch ms) of a Lean file's date, or undefined when the name carries no valid date. */
export function leanFileDate(file: string): number | undefined {
  const m = LEAN_NAME.exec(baseName(file));
  if (!m) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(y, mo - 1, d);
  const check = new Date(t);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return undefined;
  return t;
}

interface Row {
  readonly line: number;
  readonly cells: string[];
}

function rowsOf(text: string): Row[] {
  const rows: Row[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '').trim();
    if (raw === '') continue;
    rows.push({ line: i + 1, cells: raw.split(',').map((c) => c.trim()) });
  }
  return rows;
}

/**
 * Validates the five numeric cells of a bar and appends it; returns an issue message or undefined.
 * `t` has already been validated by the caller.
 */
function toBar(t: number, cells: readonly string[]): Bar | string {
  const names = ['open', 'high', 'low', 'close', 'volume'] as const;
  const vals: Decimal[] = [];
  for (let k = 0; k < 5; k++) {
    const s = cells[k] ?? '';
    if (!NUMBER.test(s)) return `${names[k]} is not a number: ${JSON.stringify(s)}`;
    vals.push(new Decimal(s));
  }
  const [o, h, l, c, v] = vals as [Decimal, Decimal, Decimal, Decimal, Decimal];
  if (!o.gt(0) || !h.gt(0) || !l.gt(0) || !c.gt(0)) return 'prices must be positive';
  if (v.lt(0)) return 'volume must not be negative';
  if (h.lt(o) || h.lt(c) || h.lt(l)) return `high ${h.toFixed()} is below open, close or low`;
  if (l.gt(o) || l.gt(c)) return `low ${l.toFixed()} is above open or close`;
  return { t, o, h, l, c, v };
}

function pushOrder(bars: Bar[], bar: Bar, file: string, line: number, issues: CandleIssue[]): void {
  const prev = bars[bars.length - 1];
  if (prev !== undefined && bar.t <= prev.t) {
    issues.push({ file, line, message: `time ${bar.t} is not after the previous row's ${prev.t} (rows must be in increasing time, no duplicates)` });
    return;
  }
  bars.push(bar);
}

/** Parses a Lean minute file (`ms_since_midnight,o,h,l,c,v`, date from the file name). */
export function parseLeanMinute(text: string, file: string): ParseResult {
  const midnight = leanFileDate(file);
  if (midnight === undefined) {
    return { ok: false, issues: [{ file, line: 0, message: 'a Lean minute file must be named YYYYMMDD_<anything>.csv (the date of its rows, UTC)' }] };
  }
  const issues: CandleIssue[] = [];
  const bars: Bar[] = [];
  for (const { line, cells } of rowsOf(text)) {
    if (issues.length >= MAX_ISSUES) break;
    if (cells.length !== 6) {
      issues.push({ file, line, message: `expected 6 columns (ms_since_midnight,open,high,low,close,volume), found ${cells.length}` });
      continue;
    }
    const ms = cells[0] ?? '';
    if (!INTEGER.test(ms)) {
      issues.push({ file, line, message: `ms_since_midnight is not a whole number: ${JSON.stringify(ms)}` });
      continue;
    }
    const off = Number(ms);
    if (off >= DAY_MS || off % MINUTE_MS !== 0) {
      issues.push({ file, line, message: `ms_since_midnight ${off} is not a minute boundary within the day` });
      continue;
    }
    const bar = toBar(midnight + off, cells.slice(1));
    if (typeof bar === 'string') issues.push({ file, line, message: bar });
    else pushOrder(bars, bar, file, line, issues);
  }
  if (issues.length > 0) return { ok: false, issues };
  if (bars.length === 0) return { ok: false, issues: [{ file, line: 0, message: 'no candles in file' }] };
  return { ok: true, bars };
}

/** Parses a header-ed CSV `time,open,high,low,close,volume` with `time` in epoch milliseconds. */
export function parsePlainCsv(text: string, file: string): ParseResult {
  const rows = rowsOf(text);
  const head = rows[0];
  if (head === undefined) return { ok: false, issues: [{ file, line: 0, message: 'empty file' }] };
  const header = head.cells.map((c) => c.toLowerCase());
  if (header.length !== 6 || header.some((h, k) => h !== PLAIN_HEADER[k])) {
    return { ok: false, issues: [{ file, line: head.line, message: `expected the header "${PLAIN_HEADER.join(',')}", found "${head.cells.join(',')}"` }] };
  }
  const issues: CandleIssue[] = [];
  const bars: Bar[] = [];
  for (const { line, cells } of rows.slice(1)) {
    if (issues.length >= MAX_ISSUES) break;
    if (cells.length !== 6) {
      issues.push({ file, line, message: `expected 6 columns (${PLAIN_HEADER.join(',')}), found ${cells.length}` });
      continue;
    }
    const ts = cells[0] ?? '';
    if (!INTEGER.test(ts)) {
      issues.push({ file, line, message: `time is not a whole number of epoch milliseconds: ${JSON.stringify(ts)}` });
      continue;
    }
    const t = Number(ts);
    if (t < 1e11) {
      issues.push({ file, line, message: `time ${t} looks like seconds; times must be epoch milliseconds` });
      continue;
    }
    if (t % MINUTE_MS !== 0) {
      issues.push({ file, line, message: `time ${t} is not on a minute boundary (bars must be 1-minute)` });
      continue;
    }
    const bar = toBar(t, cells.slice(1));
    if (typeof bar === 'string') issues.push({ file, line, message: bar });
    else pushOrder(bars, bar, file, line, issues);
  }
  if (issues.length > 0) return { ok: false, issues };
  if (bars.length === 0) return { ok: false, issues: [{ file, line: 0, message: 'no candles in file' }] };
  return { ok: true, bars };
}

/** Picks the format: a first line starting with a letter is a header (plain CSV); otherwise Lean. */
export function parseCandleFile(text: string, file: string): ParseResult {
  const first = text.trimStart();
  return /^[A-Za-z]/.test(first) ? parsePlainCsv(text, file) : parseLeanMinute(text, file);
}

/** Expresses every bar's volume in units of the coin. */
export function convertVolume(bars: readonly Bar[], unit: VolumeUnit): Bar[] {
  if (unit === 'base') return [...bars];
  const hundred = new Decimal(100);
  // The conversion uses the bar's close: the price at which the venue itself reports such volume.
  return bars.map((b) => ({ ...b, v: unit === 'quote' ? b.v.div(b.c) : b.v.mul(hundred).div(b.c) }));
}

/**
 * Concatenates the bars of several files (each already in order), then fills every absent minute
 * with a flat, zero-volume bar at the previous close: minutes with no trade are absent from
 * trade-built files, and the replay needs a contiguous series.
 */
export function joinAndFill(parts: readonly { readonly file: string; readonly bars: readonly Bar[] }[]): ParseResult {
  const all: Bar[] = [];
  const issues: CandleIssue[] = [];
  let prevFile = '';
  for (const { file, bars } of parts) {
    const first = bars[0];
    const prev = all[all.length - 1];
    if (first !== undefined && prev !== undefined && first.t <= prev.t) {
      issues.push({ file, line: 0, message: `its first candle (${new Date(first.t).toISOString()}) is not after the last candle of ${prevFile}; list files in time order without overlap` });
      continue;
    }
    for (const b of bars) {
      const last = all[all.length - 1];
      if (last !== undefined) {
        const gap = (b.t - last.t) / MINUTE_MS - 1;
        if (gap > MAX_GAP_MINUTES) {
          issues.push({ file, line: 0, message: `${gap} minutes missing before ${new Date(b.t).toISOString()} (more than ${MAX_GAP_MINUTES})` });
          return { ok: false, issues };
        }
        for (let t = last.t + MINUTE_MS; t < b.t; t += MINUTE_MS) {
          all.push({ t, o: last.c, h: last.c, l: last.c, c: last.c, v: new Decimal(0) });
        }
      }
      all.push(b);
    }
    prevFile = file;
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, bars: all };
}
