import { describe, expect, it } from 'vitest';
import { Decimal } from '../../src/domain/decimal.ts';
import { CANDLE_INTERVALS, MarketReplay, bucketEnd, bucketStart, loadBundledSeries } from '../../src/sim/market/index.ts';

const SERIES = loadBundledSeries();
const START = Date.UTC(2025, 0, 1);
const HIST = 300;
const BASE = START - HIST * 60_000; // market time of the first recorded bar (2022-12-13 00:00)

function replay(extra: Partial<ConstructorParameters<typeof MarketReplay>[0]> = {}): MarketReplay {
  return new MarketReplay({ seed: 5, series: SERIES, startTime: START, historyBars: HIST, ...extra });
}

describe('candleSnapshot aggregates the recorded bars', () => {
  const r = replay();
  r.next();

  // Expected values computed by hand from data/candles/20221213_btcusd_minute_trade_perp.csv:
  // o of the first row, max high, min low, close of the last row, Σ round5(contracts × 100 / close).
  it('1m → 5m', () => {
    const [c] = r.candleSnapshot('BTC', '5m', BASE, BASE + 1);
    expect(c).toEqual({ t: BASE, T: BASE + 299_999, s: 'BTC', i: '5m', o: '17204.0', c: '17207.5', h: '17232.7', l: '17203.9', v: '380.71842', n: expect.any(Number) });
    const second = r.candleSnapshot('BTC', '5m', BASE + 300_000, BASE + 300_000)[0]!;
    expect([second.o, second.h, second.l, second.c, second.v]).toEqual(['17207.5', '17207.5', '17179.6', '17179.6', '188.816']);
  });

  it('1m → 1h', () => {
    const [c] = r.candleSnapshot('BTC', '1h', BASE, BASE + 3_599_999);
    expect(c).toMatchObject({ t: BASE, T: BASE + 3_599_999, o: '17204.0', h: '17232.7', l: '17140.0', c: '17152.3', v: '2193.78803' });
  });

  it('a bucket holding an absent minute counts it flat at the previous close', () => {
    // 04:25–04:29: the 04:29 minute is absent from the recording.
    const [c] = r.candleSnapshot('BTC', '5m', BASE + 265 * 60_000, BASE + 265 * 60_000);
    expect(c).toMatchObject({ t: BASE + 265 * 60_000, o: '17161.2', h: '17167.1', l: '17161.2', c: '17167.0', v: '62.80042' });
  });

  it('has the exact wire shape', () => {
    const [c] = r.candleSnapshot('ETH', '15m', BASE, BASE);
    expect(Object.keys(c!).sort()).toEqual(['T', 'c', 'h', 'i', 'l', 'n', 'o', 's', 't', 'v']);
    for (const k of ['o', 'c', 'h', 'l', 'v'] as const) expect(typeof c![k]).toBe('string');
    expect(Number.isInteger(c!.n)).toBe(true);
    expect(c!.o).toBe('416.29');
  });
});

describe('snapshot boundaries', () => {
  it('returns the buckets overlapping [startTime, endTime], never beyond the current market time', () => {
    const r = replay();
    for (let n = 0; n < 1000; n++) r.next(); // 100 s of market time
    const now = r.marketTime(r.head);
    expect(now).toBe(START + 99_900);
    // Mid-bucket start and end include both buckets (as Hyperliquid does).
    const c = r.candleSnapshot('BTC', '1m', START - 90_000, START - 30_000);
    expect(c.map((x) => x.t)).toEqual([START - 120_000, START - 60_000]);
    // An end in the future stops at the bucket in progress.
    const all = r.candleSnapshot('BTC', '1m', START - 60_000, START + 10 * 3_600_000);
    expect(all.map((x) => x.t)).toEqual([START - 60_000, START, START + 60_000]);
    expect(all[2]!.T).toBe(START + 119_999);
    // Before the recording starts there is nothing; after now neither.
    expect(r.candleSnapshot('BTC', '1m', 0, BASE - 1)).toEqual([]);
    expect(r.candleSnapshot('BTC', '1m', now + 60_000)).toEqual([]);
    expect(r.candleSnapshot('BTC', '1m', 0)[0]!.t).toBe(BASE);
    expect(r.candleSnapshot('BTC', '1m', 0).length).toBe(HIST + 2);
    expect(r.candleSnapshot('DOGE', '1m', 0)).toEqual([]);
  });

  it('serves at most the 5000 most recent candles', () => {
    const r = replay({ historyBars: 6000 });
    r.next();
    const c = r.candleSnapshot('ETH', '1m', 0);
    expect(c.length).toBe(5000);
    expect(c[4999]!.t).toBe(START);
    expect(c[0]!.t).toBe(START - 4999 * 60_000);
  });

  it('aligns buckets like the exchange: weeks on Thursday (epoch-aligned, as Hyperliquid serves them), months on the 1st, T = next start − 1', () => {
    const t = Date.UTC(2024, 1, 14, 13, 7); // Wednesday 2024-02-14
    expect(bucketStart(t, '1w')).toBe(Date.UTC(2024, 1, 8));
    expect(new Date(bucketStart(t, '1w')).getUTCDay()).toBe(4);
    expect(bucketStart(t, '1M')).toBe(Date.UTC(2024, 1, 1));
    expect(bucketEnd(Date.UTC(2024, 1, 1), '1M')).toBe(Date.UTC(2024, 2, 1));
    expect(bucketStart(t, '4h')).toBe(Date.UTC(2024, 1, 14, 12));
    expect(bucketStart(t, '3d') % (3 * 86_400_000)).toBe(0);
    expect(CANDLE_INTERVALS).toHaveLength(14);
  });
});

describe('the candle in progress', () => {
  it('opens at the bar open, closes at the current mid, holds every mid seen and the volume traded', () => {
    const r = replay();
    let lots = new Decimal(0);
    let hi = -Infinity, lo = Infinity;
    for (let n = 0; n <= 450; n++) {
      const [btc] = r.next();
      if (n > 0) for (const t of btc!.trades) lots = lots.plus(t.sz);
      hi = Math.max(hi, btc!.mid.toNumber());
      lo = Math.min(lo, btc!.mid.toNumber());
      const c = r.currentCandle('BTC', '1m')!;
      expect(c.t).toBe(START);
      expect(c.o).toBe('17167.4'); // the recorded open of 05:00
      expect(new Decimal(c.c).eq(btc!.mid)).toBe(true);
      expect(Number(c.h)).toBeGreaterThanOrEqual(hi);
      expect(Number(c.l)).toBeLessThanOrEqual(lo);
      expect(new Decimal(c.v).eq(lots)).toBe(true);
    }
  });

  it('agrees with candleSnapshot for every interval, and a finished bar shows the recording', () => {
    const r = replay({ speed: 50 });
    for (let n = 0; n < 3000; n++) r.next(); // 4 h 10 min of market time
    for (const i of CANDLE_INTERVALS) {
      const snap = r.candleSnapshot('ETH', i, 0);
      expect(r.currentCandle('ETH', i)).toEqual(snap[snap.length - 1]);
    }
    expect(r.currentCandles([{ coin: 'BTC', interval: '1h' }, { coin: 'NOPE', interval: '1h' }])).toHaveLength(1);
    // 05:00 is finished: its 1m candle is the recorded bar (17167.4 / 17167.4 / 17167.3 / 17167.3, 683 contracts).
    const [c] = r.candleSnapshot('BTC', '1m', START, START);
    expect(c).toMatchObject({ o: '17167.4', h: '17167.4', l: '17167.3', c: '17167.3', v: '3.97849' });
  });
});

describe('time base', () => {
  it('keeps market time == exchange time at block 0 and candles minute-aligned for any start time', () => {
    const start = Date.UTC(2025, 0, 1, 12, 0, 17, 345);
    const r = new MarketReplay({ seed: 1, series: SERIES, startTime: start, historyBars: 10, blockMs: 250, speed: 4 });
    const [b0] = r.next();
    expect(b0!.marketTime).toBe(start);
    expect(b0!.time).toBe(start);
    expect(r.marketTime(3)).toBe(start + 3000);
    expect(r.exchangeTime(3)).toBe(start + 750);
    const c = r.candleSnapshot('BTC', '1m', 0);
    expect(c.map((x) => x.t % 60_000)).toEqual(new Array(11).fill(0));
    expect(c[10]!.t).toBe(Date.UTC(2025, 0, 1, 12, 0));
  });

});
