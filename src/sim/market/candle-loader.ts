/**
 * Loads recorded candle files into `CoinSeries` (the I/O shell around candle-format.ts).
 *
 * A data directory holds a manifest `markets.json` (a JSON array of
 * `{coin, szDecimals, maxLeverage, files, volumeUnit?}`, file paths relative to the manifest) that
 * maps files to coins and is also the simulator's `meta` universe, in that order. Without a
 * manifest, coins are inferred from file names (see `coinFromFileName`).
 *
 * Invariants of a loaded series: bars contiguous 1-minute (absent minutes filled flat), volume in
 * units of the coin, coin names unique. Problems come back as `CandleIssue`s naming file and line;
 * `loadCandleSeries` throws them together in one `CandleDataError` for callers at the program edge.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { AssetSpec } from '../types.ts';
import { type Bar, type CandleIssue, type VolumeUnit, VOLUME_UNITS, convertVolume, formatIssue, joinAndFill, leanFileDate, parseCandleFile } from './candle-format.ts';

export interface CoinSeries {
  readonly coin: string;
  readonly szDecimals: number;
  readonly maxLeverage: number;
  /** Contiguous 1-minute bars, oldest first, volume in coin units. */
  readonly bars: readonly Bar[];
  /** The files the bars came from, in order. */
  readonly files: readonly string[];
}

export interface MarketManifestEntry {
  readonly coin: string;
  readonly szDecimals: number;
  readonly maxLeverage: number;
  readonly files: readonly string[];
  readonly volumeUnit: VolumeUnit;
}

export type LoadResult = { readonly ok: true; readonly series: CoinSeries[] } | { readonly ok: false; readonly issues: CandleIssue[] };

export class CandleDataError extends Error {
  readonly issues: readonly CandleIssue[];
  constructor(issues: readonly CandleIssue[]) {
    super(`invalid candle data:\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    this.name = 'CandleDataError';
    this.issues = issues;
  }
}

export const MANIFEST_NAME = 'markets.json';

/** The data folder bundled with keel (repo root `data/`), resolved from this module, never from the cwd. */
export function bundledDataDir(): string {
  return resolve(import.meta.dirname, '../../../data');
}

/** Validates a parsed manifest; `file` names it in issues. */
export function parseManifest(json: unknown, file: string): { ok: true; entries: MarketManifestEntry[] } | { ok: false; issues: CandleIssue[] } {
  const issues: CandleIssue[] = [];
  const bad = (message: string): void => void issues.push({ file, line: 0, message });
  if (!Array.isArray(json)) return { ok: false, issues: [{ file, line: 0, message: 'the manifest must be a JSON array of {coin, szDecimals, maxLeverage, files, volumeUnit?}' }] };
  const entries: MarketManifestEntry[] = [];
  const seen = new Set<string>();
  json.forEach((e: unknown, k) => {
    const at = `entry ${k}`;
    if (typeof e !== 'object' || e === null) return bad(`${at}: not an object`);
    const r = e as Record<string, unknown>;
    const { coin, szDecimals, maxLeverage, files } = r;
    const volumeUnit = r['volumeUnit'] ?? 'base';
    if (typeof coin !== 'string' || !/^[A-Za-z0-9]{1,20}$/.test(coin)) return bad(`${at}: coin must be a short alphanumeric name`);
    if (seen.has(coin)) return bad(`${at}: coin ${coin} is listed twice`);
    seen.add(coin);
    if (typeof szDecimals !== 'number' || !Number.isInteger(szDecimals) || szDecimals < 0 || szDecimals > 6) return bad(`${at} (${coin}): szDecimals must be an integer 0..6`);
    if (typeof maxLeverage !== 'number' || !Number.isInteger(maxLeverage) || maxLeverage < 1 || maxLeverage > 100) return bad(`${at} (${coin}): maxLeverage must be an integer 1..100`);
    if (!Array.isArray(files) || files.length === 0 || files.some((f) => typeof f !== 'string' || f === '')) return bad(`${at} (${coin}): files must be a non-empty array of paths`);
    if (!VOLUME_UNITS.includes(volumeUnit as VolumeUnit)) return bad(`${at} (${coin}): volumeUnit must be one of ${VOLUME_UNITS.join(', ')}`);
    entries.push({ coin, szDecimals, maxLeverage, files: files as string[], volumeUnit: volumeUnit as VolumeUnit });
  });
  if (issues.length === 0 && entries.length === 0) bad('the manifest lists no market');
  return issues.length > 0 ? { ok: false, issues } : { ok: true, entries };
}

/**
 * Coin of a file without a manifest: Lean `YYYYMMDD_<symbol>_…csv` gives the symbol upper-cased
 * with a trailing usd/usdt/usdc removed (`btcusd` → `BTC`); any other `<COIN>[_.-]…csv` gives its
 * first token as written (so `kPEPE.csv` stays `kPEPE`).
 */
export function coinFromFileName(file: string): string | undefined {
  const base = file.split(/[/\\]/).pop() ?? file;
  if (leanFileDate(base) !== undefined) {
    const sym = base.split('_')[1] ?? '';
    const coin = sym.toUpperCase().replace(/(USDT|USDC|USD)$/, '');
    return coin === '' ? undefined : coin;
  }
  const m = /^([A-Za-z0-9]+)[_.\-]/.exec(base);
  return m?.[1];
}

/** Hyperliquid-like default lot size when no manifest says: about a cent of notional per lot, at most 5 decimals. */
function defaultSzDecimals(bars: readonly Bar[]): number {
  const px = bars[0]?.c.toNumber() ?? 1;
  return Math.max(0, Math.min(5, Math.floor(Math.log10(px)) + 1));
}

function loadEntry(entry: MarketManifestEntry, baseDir: string, issues: CandleIssue[]): CoinSeries | undefined {
  const parts: { file: string; bars: Bar[] }[] = [];
  const paths = entry.files.map((f) => resolve(baseDir, f));
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      issues.push({ file: path, line: 0, message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    const r = parseCandleFile(text, path);
    if (!r.ok) issues.push(...r.issues);
    else parts.push({ file: path, bars: convertVolume(r.bars, entry.volumeUnit) });
  }
  if (parts.length !== paths.length) return undefined;
  const joined = joinAndFill(parts);
  if (!joined.ok) {
    issues.push(...joined.issues);
    return undefined;
  }
  return { coin: entry.coin, szDecimals: entry.szDecimals, maxLeverage: entry.maxLeverage, bars: joined.bars, files: paths };
}

function loadManifest(path: string): LoadResult {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return { ok: false, issues: [{ file: path, line: 0, message: `cannot read the manifest: ${(err as Error).message}` }] };
  }
  const m = parseManifest(json, path);
  if (!m.ok) return m;
  const issues: CandleIssue[] = [];
  const series: CoinSeries[] = [];
  for (const e of m.entries) {
    const s = loadEntry(e, dirname(path), issues);
    if (s) series.push(s);
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, series };
}

function loadFiles(files: readonly string[]): LoadResult {
  const byCoin = new Map<string, string[]>();
  const issues: CandleIssue[] = [];
  for (const f of files) {
    const coin = coinFromFileName(f);
    if (coin === undefined) {
      issues.push({ file: f, line: 0, message: 'cannot tell the coin from the file name; name it <COIN>_….csv or list it in a markets.json manifest' });
      continue;
    }
    byCoin.set(coin, [...(byCoin.get(coin) ?? []), f]);
  }
  const series: CoinSeries[] = [];
  for (const [coin, list] of byCoin) {
    // File names sort in time order for both Lean (date prefix) and sensibly named plain files.
    const sorted = [...list].sort();
    const s = loadEntry({ coin, szDecimals: 0, maxLeverage: 20, files: sorted, volumeUnit: 'base' }, process.cwd(), issues);
    if (s) series.push({ ...s, szDecimals: defaultSzDecimals(s.bars) });
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, series };
}

/**
 * Loads candle series from a data directory (its `markets.json`, or every `*.csv` in it when there
 * is no manifest), a manifest file, or a list of CSV files. Never throws; see `loadCandleSeries`.
 */
export function tryLoadCandleSeries(source: string | readonly string[]): LoadResult {
  if (typeof source !== 'string') return loadFiles(source.map((f) => resolve(f)));
  const path = resolve(source);
  if (!existsSync(path)) return { ok: false, issues: [{ file: path, line: 0, message: 'no such file or directory' }] };
  if (statSync(path).isDirectory()) {
    const manifest = join(path, MANIFEST_NAME);
    if (existsSync(manifest)) return loadManifest(manifest);
    const csvs = readdirSync(path).filter((f) => f.toLowerCase().endsWith('.csv')).map((f) => join(path, f));
    if (csvs.length === 0) return { ok: false, issues: [{ file: path, line: 0, message: `no ${MANIFEST_NAME} and no .csv file in this directory` }] };
    return loadFiles(csvs);
  }
  return path.toLowerCase().endsWith('.json') ? loadManifest(path) : loadFiles([path]);
}

/** As `tryLoadCandleSeries`, but throws a `CandleDataError` listing every issue (file:line: message). */
export function loadCandleSeries(source: string | readonly string[]): CoinSeries[] {
  const r = tryLoadCandleSeries(source);
  if (!r.ok) throw new CandleDataError(r.issues);
  return r.series;
}

/** The bundled BTC and ETH series from the repo's `data/`. */
export function loadBundledSeries(): CoinSeries[] {
  return loadCandleSeries(bundledDataDir());
}

/** The `meta` universe the series stand for: asset id = index. */
export function universeOf(series: readonly CoinSeries[]): AssetSpec[] {
  return series.map((s) => ({ name: s.coin, szDecimals: s.szDecimals, maxLeverage: s.maxLeverage }));
}
