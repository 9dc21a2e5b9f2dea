import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CandleDataError,
  coinFromFileName,
  convertVolume,
  formatIssue,
  joinAndFill,
  loadBundledSeries,
  loadCandleSeries,
  parseCandleFile,
  parseLeanMinute,
  parseManifest,
  parsePlainCsv,
  tryLoadCandleSeries,
  universeOf,
} from '../../src/sim/market/index.ts';

const DAY = Date.UTC(2022, 11, 13);

describe('Lean minute parser', () => {
  it('takes the date from the file name and the minute from the first column', () => {
    const r = parseLeanMinute('0,17204,17207.6,17203.9,17207.6,4242\r\n60000,17207.5,17219.8,17207.5,17219.8,17069\n\n', 'x/20221213_btcusd_minute_trade.csv');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.bars.map((b) => b.t)).toEqual([DAY, DAY + 60_000]);
    expect(r.bars[1]!.h.toFixed()).toBe('17219.8');
    expect(r.bars[0]!.v.toFixed()).toBe('4242');
  });

  it('reports bad rows as issues naming file and line, without throwing', () => {
    const text = ['0,1,2,0.5,1.5,10', '60000,1,2,0.5,abc,10', '120000,1,2,0.5', '180000,1,1.2,0.5,1.5,1', '30000,1,2,0.5,1,1', '240000,1,2,0.5,1,-1', '240000,1,2,1.5,1,1'].join('\n');
    const r = parseLeanMinute(text, 'd/20200101_x.csv');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const byLine = new Map(r.issues.map((i) => [i.line, i.message]));
    expect([...byLine.keys()]).toEqual([2, 4, 5, 6, 7, 3].sort((a, b) => a - b));
    expect(byLine.get(2)).toMatch(/close is not a number: "abc"/);
    expect(byLine.get(3)).toMatch(/expected 6 columns/);
    expect(byLine.get(4)).toMatch(/high 1.2 is below/);
    expect(byLine.get(5)).toMatch(/not a minute boundary/);
    expect(byLine.get(6)).toMatch(/volume must not be negative/);
    expect(byLine.get(7)).toMatch(/low 1.5 is above/);
    expect(formatIssue(r.issues[0]!)).toBe('d/20200101_x.csv:2: close is not a number: "abc"');
  });

  it('refuses a file without a date in its name, and out-of-order rows', () => {
    const a = parseLeanMinute('0,1,1,1,1,1', 'btc.csv');
    expect(a.ok).toBe(false);
    if (!a.ok) expect(a.issues[0]!.message).toMatch(/YYYYMMDD_/);
    const b = parseLeanMinute('60000,1,1,1,1,1\n60000,1,1,1,1,1', '20200101_x.csv');
    expect(b.ok).toBe(false);
    if (!b.ok) expect(b.issues[0]).toMatchObject({ line: 2, message: expect.stringMatching(/not after the previous/) });
    const c = parseLeanMinute('0,1,1,1,1,1', '20200230_x.csv');
    expect(c.ok).toBe(false);
  });
});

describe('plain CSV parser', () => {
  it('reads the header-ed format with epoch-ms times and exponent numbers', () => {
    const r = parsePlainCsv('Time,Open,High,Low,Close,Volume\n1670889600000,10,11,9,10.5,1e-3\n', 'sol.csv');
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.bars[0]!.t).toBe(1670889600000);
      expect(r.bars[0]!.v.toFixed()).toBe('0.001');
    }
  });

  it('explains a wrong header, second timestamps and unaligned times', () => {
    const h = parsePlainCsv('date,o,h,l,c,v\n1,1,1,1,1,1', 'a.csv');
    expect(h.ok).toBe(false);
    if (!h.ok) expect(formatIssue(h.issues[0]!)).toMatch(/^a\.csv:1: expected the header "time,open,high,low,close,volume"/);
    const s = parsePlainCsv('time,open,high,low,close,volume\n1670889600,1,1,1,1,1\n1670889600001,1,1,1,1,1', 'a.csv');
    expect(s.ok).toBe(false);
    if (!s.ok) {
      expect(s.issues[0]).toMatchObject({ line: 2, message: expect.stringMatching(/looks like seconds/) });
      expect(s.issues[1]).toMatchObject({ line: 3, message: expect.stringMatching(/minute boundary/) });
    }
  });

  it('is chosen by parseCandleFile when the first line is a header', () => {
    expect(parseCandleFile('time,open,high,low,close,volume\n1670889600000,1,1,1,1,1', 'whatever.csv').ok).toBe(true);
    expect(parseCandleFile('0,1,1,1,1,1', '20221213_whatever.csv').ok).toBe(true);
  });
});

describe('joining, gap filling and volume units', () => {
  it('fills absent minutes with flat zero-volume bars at the previous close', () => {
    const a = parsePlainCsv('time,open,high,low,close,volume\n1670889600000,10,11,9,10.5,3\n1670889780000,10.6,10.6,10.6,10.6,1', 'a.csv');
    expect(a.ok).toBe(true);
    if (!a.ok) return;
    const j = joinAndFill([{ file: 'a.csv', bars: a.bars }]);
    expect(j.ok).toBe(true);
    if (!j.ok) return;
    expect(j.bars.map((b) => [b.t - 1670889600000, b.o.toFixed(), b.h.toFixed(), b.l.toFixed(), b.c.toFixed(), b.v.toFixed()])).toEqual([
      [0, '10', '11', '9', '10.5', '3'],
      [60_000, '10.5', '10.5', '10.5', '10.5', '0'],
      [120_000, '10.5', '10.5', '10.5', '10.5', '0'],
      [180_000, '10.6', '10.6', '10.6', '10.6', '1'],
    ]);
    const overlap = joinAndFill([{ file: 'a.csv', bars: a.bars }, { file: 'b.csv', bars: a.bars }]);
    expect(overlap.ok).toBe(false);
    if (!overlap.ok) expect(overlap.issues[0]!.file).toBe('b.csv');
  });

  it('converts contracts of 100 USD to coin units with the close', () => {
    const r = parseLeanMinute('0,17204,17207.6,17203.9,17207.6,4242', '20221213_btcusd.csv');
    if (!r.ok) throw new Error('parse');
    expect(convertVolume(r.bars, 'contracts100usd')[0]!.v.toDecimalPlaces(8).toFixed()).toBe('24.651898');
    expect(convertVolume(r.bars, 'quote')[0]!.v.toDecimalPlaces(8).toFixed()).toBe('0.24651898');
  });
});

describe('loader', () => {
  it('loads the bundled BTC and ETH series from the repo (contiguous, gap-filled)', () => {
    const series = loadBundledSeries();
    expect(universeOf(series)).toEqual([
      { name: 'BTC', szDecimals: 5, maxLeverage: 40 },
      { name: 'ETH', szDecimals: 4, maxLeverage: 25 },
    ]);
    const [btc, eth] = series as [(typeof series)[0], (typeof series)[0]];
    expect(btc.bars.length).toBe(1440);
    expect(eth.bars.length).toBe(2880);
    for (const s of series) s.bars.forEach((b, k) => expect(b.t).toBe(s.bars[0]!.t + k * 60_000));
    expect(btc.bars[0]!.t).toBe(DAY);
    // 2022-12-13 04:29 is absent from the recording: flat at the 04:28 close, no volume.
    const gap = btc.bars[269]!;
    expect([gap.o, gap.h, gap.l, gap.c, gap.v].map((d) => d.toFixed())).toEqual(['17167', '17167', '17167', '17167', '0']);
    // 2018-04-04 stops at 16:52 (close 380.07); the rest of the day is filled flat.
    const eth1653 = eth.bars[16 * 60 + 53]!;
    expect(eth1653.t).toBe(Date.UTC(2018, 3, 4, 16, 53));
    expect(eth1653.c.toFixed()).toBe('380.07');
    expect(eth1653.v.isZero()).toBe(true);
    expect(eth.bars[1440]!.o.toFixed()).toBe('378.42');
  });

  it('collects issues from every bad file with file:line and throws them together', () => {
    const dir = mkdtempSync(join(tmpdir(), 'keel-market-'));
    writeFileSync(join(dir, 'markets.json'), JSON.stringify([{ coin: 'AAA', szDecimals: 2, maxLeverage: 10, files: ['a.csv'] }, { coin: 'BBB', szDecimals: 2, maxLeverage: 10, files: ['20240101_b.csv'] }]));
    writeFileSync(join(dir, 'a.csv'), 'time,open,high,low,close,volume\n1704067200000,1,1,1,1,1\n1704067260000,1,x,1,1,1\n');
    writeFileSync(join(dir, '20240101_b.csv'), '0,1,1,1,1,1\n60000,1,1,1,1\n');
    const r = tryLoadCandleSeries(dir);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues.map(formatIssue)).toEqual([
      `${join(dir, 'a.csv')}:3: high is not a number: "x"`,
      `${join(dir, '20240101_b.csv')}:2: expected 6 columns (ms_since_midnight,open,high,low,close,volume), found 5`,
    ]);
    expect(() => loadCandleSeries(dir)).toThrow(CandleDataError);
    expect(() => loadCandleSeries(dir)).toThrow(/a\.csv:3: high is not a number/);
    expect(() => loadCandleSeries(join(dir, 'missing'))).toThrow(/no such file/);
  });

  it('validates the manifest', () => {
    expect(parseManifest({}, 'm.json').ok).toBe(false);
    const r = parseManifest([{ coin: 'BTC', szDecimals: 9, maxLeverage: 40, files: ['a.csv'] }, { coin: 'ETH', szDecimals: 4, maxLeverage: 25, files: ['b.csv'], volumeUnit: 'lots' }], 'm.json');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.message)).toEqual(['entry 0 (BTC): szDecimals must be an integer 0..6', 'entry 1 (ETH): volumeUnit must be one of base, quote, contracts100usd']);
  });

  it('without a manifest, infers coins from file names', () => {
    expect(coinFromFileName('/x/20221213_btcusd_minute_trade_perp.csv')).toBe('BTC');
    expect(coinFromFileName('kPEPE_2024.csv')).toBe('kPEPE');
    const dir = mkdtempSync(join(tmpdir(), 'keel-market-'));
    writeFileSync(join(dir, 'SOL_1.csv'), 'time,open,high,low,close,volume\n1704067200000,101,102,100,101.5,7\n');
    const [sol] = loadCandleSeries(dir);
    expect(sol).toMatchObject({ coin: 'SOL', szDecimals: 3, maxLeverage: 20 });
  });
});
