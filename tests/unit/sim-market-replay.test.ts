import { describe, expect, it } from 'vitest';
import { Decimal, isValidPrice, isValidSize, toWire } from '../../src/domain/decimal.ts';
import type { MarketBlock } from '../../src/sim/types.ts';
import { type CoinSeries, MarketReplay, loadBundledSeries, tickUnits } from '../../src/sim/market/index.ts';

const SERIES = loadBundledSeries();
const START = Date.UTC(2025, 0, 1); // minute-aligned: block 0 is the open of bar `historyBars`
const HIST = 300;

function replay(seed = 7, extra: Partial<ConstructorParameters<typeof MarketReplay>[0]> = {}): MarketReplay {
  return new MarketReplay({ seed, series: SERIES, startTime: START, historyBars: HIST, ...extra });
}

function flat(blocks: readonly MarketBlock[]): string {
  return JSON.stringify(blocks, (_k, v: unknown) => (v instanceof Decimal ? toWire(v) : v));
}

/** A synthetic series; prices and volumes as strings, one bar per minute from 2024-01-01. */
function series(coin: string, szDecimals: number, bars: [string, string, string, string, string][]): CoinSeries {
  const t0 = Date.UTC(2024, 0, 1);
  return {
    coin,
    szDecimals,
    maxLeverage: 10,
    files: [],
    bars: bars.map(([o, h, l, c, v], k) => ({ t: t0 + k * 60_000, o: new Decimal(o), h: new Decimal(h), l: new Decimal(l), c: new Decimal(c), v: new Decimal(v) })),
  };
}

const barOf = (s: CoinSeries, mt: number, base: number) => s.bars[Math.floor((mt - base) / 60_000) % s.bars.length]!;

describe('determinism', () => {
  it('two replays with the same seed produce identical blocks; another seed differs', () => {
    const a = replay(11), b = replay(11), c = replay(12);
    let same = true, differs = false;
    for (let n = 0; n < 1500; n++) {
      const fa = flat(a.next()), fb = flat(b.next()), fc = flat(c.next());
      same &&= fa === fb;
      differs ||= fa !== fc;
    }
    expect(same).toBe(true);
    expect(differs).toBe(true);
  });

  it('block(n) is a pure function of n: recomputed or requested out of order it is the same', () => {
    const a = replay(3);
    const seen: string[] = [];
    for (let n = 0; n < 800; n++) seen.push(flat(a.next()));
    expect(flat(a.block(799))).toBe(seen[799]);
    expect(flat(a.block(123))).toBe(seen[123]);
    expect(flat(replay(3).block(456))).toBe(seen[456]);
    expect(a.head).toBe(799);
  });

  it('setSpeed applies from the next block and leaves the past unchanged', () => {
    const a = replay(5);
    const early = [] as string[];
    for (let n = 0; n < 10; n++) early.push(flat(a.next()));
    expect(a.marketTime(9)).toBe(START + 900);
    a.setSpeed(10);
    expect(a.marketTime(9)).toBe(START + 900);
    expect(a.marketTime(10)).toBe(START + 900 + 1000);
    expect(a.next()[0]!.marketTime).toBe(START + 1900);
    expect(a.next()[0]!.time).toBe(START + 1100);
    expect(flat(a.block(4))).toBe(early[4]);
    // Same speed history → same blocks.
    const b = replay(5);
    for (let n = 0; n < 10; n++) b.next();
    b.setSpeed(3);
    b.setSpeed(10); // a second change before the next block replaces the first
    b.next();
    expect(flat(b.next())).toBe(flat(a.block(11)));
    expect(() => a.setSpeed(0)).toThrow(RangeError);
  });
});

describe('price path', () => {
  const r = replay(21);
  const blocks: MarketBlock[][] = [];
  for (let n = 0; n <= 600 * 12; n++) blocks.push(r.next());

  it('stays within each recorded bar [low, high], starts at the open and ends at the close', () => {
    SERIES.forEach((s, ci) => {
      const byBar = new Map<number, number[]>();
      for (const bl of blocks) {
        const b = bl[ci]!;
        const bar = barOf(s, b.marketTime, r.baseTime);
        expect(b.mid.gte(bar.l) && b.mid.lte(bar.h)).toBe(true);
        expect(b.oraclePx.gte(bar.l) && b.oraclePx.lte(bar.h)).toBe(true);
        const j = Math.floor((b.marketTime - r.baseTime) / 60_000);
        byBar.set(j, [...(byBar.get(j) ?? []), b.mid.toNumber()]);
        // Block at a bar's first millisecond: the path is at the open.
        if ((b.marketTime - r.baseTime) % 60_000 === 0) expect(b.mid.eq(bar.o)).toBe(true);
      }
      for (const [j, mids] of byBar) {
        if (mids.length < 600) continue; // only fully sampled bars
        const bar = s.bars[j]!;
        const range = bar.h.minus(bar.l).toNumber();
        const slack = range * 0.02 + 1e-9;
        // Sampled every 100 ms, the path comes within a hair of the high, the low and the close.
        expect(Math.max(...mids)).toBeGreaterThanOrEqual(bar.h.toNumber() - slack - 0.1);
        expect(Math.min(...mids)).toBeLessThanOrEqual(bar.l.toNumber() + slack + 0.1);
        expect(Math.abs(mids[mids.length - 1]! - bar.c.toNumber())).toBeLessThanOrEqual(range * 0.05 + 0.1);
      }
    });
  });

  it('builds an uncrossed, tick-valid book of 20 levels a side around the mid', () => {
    const spreads: number[] = [];
    const topBtc: number[] = [];
    const problems: string[] = [];
    SERIES.forEach((s, ci) => {
      for (const bl of blocks.slice(0, 2400)) {
        const b = bl[ci]!;
        const at = `${s.coin}#${b.block}`;
        if (b.bids.length !== 20 || b.asks.length !== 20) problems.push(`${at}: depth`);
        if (!(b.bids[0]!.px.lt(b.mid) && b.asks[0]!.px.gt(b.mid))) problems.push(`${at}: touch vs mid`);
        for (const l of [...b.bids, ...b.asks]) {
          if (!isValidPrice(l.px, s.szDecimals)) problems.push(`${at}: px ${toWire(l.px)}`);
          if (!isValidSize(l.sz, s.szDecimals)) problems.push(`${at}: sz ${toWire(l.sz)}`);
          if (!(l.n >= 1 && l.n <= 20)) problems.push(`${at}: n ${l.n}`);
        }
        for (let i = 1; i < 20; i++) {
          if (!b.bids[i]!.px.lt(b.bids[i - 1]!.px)) problems.push(`${at}: bids not descending`);
          if (!b.asks[i]!.px.gt(b.asks[i - 1]!.px)) problems.push(`${at}: asks not ascending`);
        }
        const tick = tickUnits(b.mid.toNumber() * 10 ** (6 - s.szDecimals), 6 - s.szDecimals) / 10 ** (6 - s.szDecimals);
        spreads.push(b.asks[0]!.px.minus(b.bids[0]!.px).toNumber() / tick);
        if (s.coin === 'BTC') topBtc.push(b.bids[0]!.sz.toNumber(), b.asks[0]!.sz.toNumber());
      }
    });
    expect(problems.slice(0, 5)).toEqual([]);
    expect(Math.min(...spreads)).toBeGreaterThanOrEqual(0.999);
    expect(Math.max(...spreads)).toBeLessThanOrEqual(4.001);
    expect(spreads.reduce((a, b) => a + b, 0) / spreads.length).toBeLessThan(3);
    topBtc.sort((a, b) => a - b);
    const median = topBtc[topBtc.length >> 1]!;
    expect(median).toBeGreaterThan(0.5);
    expect(median).toBeLessThan(5);
  });

  it('prints trades at the touch whose volume is exactly the recorded volume of the bar', () => {
    // Blocks 1..600 cover bar HIST (2022-12-13 05:00) exactly: 683 contracts at 17167.3 = 3.97849 BTC.
    let lots = new Decimal(0);
    for (let n = 1; n <= 600; n++) {
      const b = blocks[n]![0]!;
      for (const t of b.trades) lots = lots.plus(t.sz);
    }
    let buysUp = 0, tradesUp = 0;
    for (let n = 1; n < blocks.length; n++) {
      for (const [ci, b] of blocks[n]!.entries()) {
        const prev = blocks[n - 1]![ci]!;
        for (const t of b.trades) {
          expect(t.px.eq(t.side === 'B' ? b.asks[0]!.px : b.bids[0]!.px)).toBe(true);
          expect(t.sz.gt(0) && isValidSize(t.sz, SERIES[ci]!.szDecimals)).toBe(true);
          if (b.mid.gt(prev.mid)) {
            tradesUp++;
            if (t.side === 'B') buysUp++;
          }
        }
      }
    }
    expect(lots.toFixed()).toBe('3.97849');
    expect(tradesUp).toBeGreaterThan(20);
    expect(buysUp / tradesUp).toBeGreaterThan(0.6);
  });

  it('predicts a bounded hourly funding rate', () => {
    for (const bl of blocks.filter((_, k) => k % 97 === 0)) {
      for (const b of bl) {
        expect(b.fundingRate.gte('-0.0003875') && b.fundingRate.lte('0.0004125')).toBe(true);
      }
    }
  });
});

describe('tick rules across a power of ten and for small prices', () => {
  it('keeps every level valid when the book straddles 10000 (BTC-like) and at sub-cent prices', () => {
    const straddle = series('XBT', 5, [['9995', '10006', '9994.5', '10004', '3'], ['10004', '10004', '9990', '9992.3', '2']]);
    const tiny = series('PEPE', 0, [['0.0012345', '0.0012399', '0.0012301', '0.0012388', '1000000']]);
    const r = new MarketReplay({ seed: 1, series: [straddle, tiny], startTime: Date.UTC(2025, 0, 1), historyBars: 1, speed: 20 });
    for (let n = 0; n < 120; n++) {
      for (const b of r.next()) {
        const sd = b.coin === 'XBT' ? 5 : 0;
        for (const l of [...b.bids, ...b.asks]) expect(isValidPrice(l.px, sd), `${b.coin} ${toWire(l.px)}`).toBe(true);
        expect(b.bids[0]!.px.lt(b.asks[0]!.px)).toBe(true);
        if (b.coin === 'PEPE') expect(b.asks[0]!.px.minus(b.bids[0]!.px).lte('0.000004')).toBe(true);
      }
    }
  });
});

describe('looping', () => {
  it('loops the recording with a multiplicative rescale so the price stays continuous', () => {
    // Three bars, rising 100 → 110 over the recording: each cycle is 1.1× the previous one.
    const s = series('TST', 2, [['100', '104', '99', '103', '5'], ['103', '108', '102', '107', '5'], ['107', '111', '106', '110', '5']]);
    const r = new MarketReplay({ seed: 9, series: [s], startTime: Date.UTC(2025, 0, 1), historyBars: 1, speed: 100 });
    let prev = r.next()[0]!;
    for (let n = 0; n < 120; n++) {
      const b = r.next()[0]!;
      // 10 s of market per block: never a jump bigger than one bar's range (× the growth).
      expect(Math.abs(b.mid.toNumber() - prev.mid.toNumber())).toBeLessThan(6 * 1.1 ** 5);
      prev = b;
    }
    const c = r.candleSnapshot('TST', '1m', 0);
    expect(c.length).toBeGreaterThan(12);
    for (let k = 1; k < c.length; k++) expect(Math.abs(Number(c[k]!.o) - Number(c[k - 1]!.c))).toBeLessThanOrEqual(0.011 * 1.1 ** 5);
    // Bar 3 = cycle 1 bar 0: 1.1 × (100, 104, 99, 103).
    expect([c[3]!.o, c[3]!.h, c[3]!.l, c[3]!.c]).toEqual(['110.0', '114.4', '108.9', '113.3']);
    expect(c[6]!.o).toBe('121.0');
  });
});
