/**
 * Report math on series whose answers are known by hand, the renderings, and the candle market's
 * invariants (book never crossed, valid ticks and lots, the path inside each bar's range).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Decimal, isValidPrice, isValidSize } from '../../src/domain/decimal.ts';
import {
  CandleMarket,
  buildReport,
  downsample,
  drawdownSeries,
  maxDrawdown,
  periodReturns,
  profitFactor,
  reportToHtml,
  reportToJson,
  reportToTable,
  sharpeRatio,
  sortinoRatio,
  type ReportInput,
} from '../../src/backtest/index.ts';
import { loadBundledSeries } from '../../src/sim/market/index.ts';

const d = (x: Decimal.Value) => new Decimal(x);

describe('report math', () => {
  it('max drawdown: absolute and % maxima, from a running peak', () => {
    // Peak 120 → trough 90: 30 (25 %); later peak 200 → 170: 30 too but 15 %; the first wins both.
    const r = maxDrawdown([100, 120, 90, 110, 200, 170, 180]);
    expect(r.abs).toBe(30);
    expect(r.pct).toBeCloseTo(25, 12);
    expect([r.peakIndex, r.troughIndex]).toEqual([1, 2]);
    // The % maximum can come from a smaller fall at a lower peak.
    const s = maxDrawdown([10, 5, 100, 60]);
    expect(s.abs).toBe(40);
    expect(s.pct).toBeCloseTo(50, 12);
    expect(maxDrawdown([1, 2, 3]).abs).toBe(0);
    expect(drawdownSeries([100, 80, 120, 90])).toEqual([0, -20, 0, -25]);
  });

  it('Sharpe: mean / sample sd × √periods; Sortino: mean / downside deviation × √periods', () => {
    const r = [0.01, -0.02, 0.03, 0.0];
    // mean 0.005; sample variance ((.005)²+(.025)²+(.025)²+(.005)²)/3 = 0.0013/3; sd = 0.0208167
    expect(sharpeRatio(r, 1)!).toBeCloseTo(0.005 / Math.sqrt(0.0013 / 3), 12);
    expect(sharpeRatio(r, 8760)!).toBeCloseTo((0.005 / Math.sqrt(0.0013 / 3)) * Math.sqrt(8760), 9);
    // downside deviation √((0.02²)/4) = 0.01
    expect(sortinoRatio(r, 1)!).toBeCloseTo(0.5, 12);
    expect(sharpeRatio([0.01], 1)).toBeNull();
    expect(sharpeRatio([0.01, 0.01, 0.01], 1)).toBeNull();
    expect(sortinoRatio([0.01, 0.02], 1)).toBeNull();
  });

  it('profit factor: Σ wins / |Σ losses|, null without a loss', () => {
    expect(profitFactor([d(30), d(-10), d(20), d(-15), d(0)])).toBeCloseTo(2, 12);
    expect(profitFactor([d(5)])).toBeNull();
    expect(profitFactor([d(-5)])).toBe(0);
  });

  it('period returns: equity held at each boundary, gaps carry the last value', () => {
    const H = 3_600_000;
    // samples at 00:30 (100), 01:30 (110), 03:10 (99): boundaries 01:00 → 100, 02:00 → 110, 03:00 → 110, end → 99
    const r = periodReturns([0.5 * H, 1.5 * H, 3.17 * H], [100, 110, 99], H);
    expect(r.map((x) => Number(x.toFixed(12)))).toEqual([0, 0.1, 0, -0.1]);
    expect(periodReturns([], [], H)).toEqual([]);
  });

  it('downsample keeps the extremes and at most the asked number of points', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 3000 }), (vs) => {
        const ts = vs.map((_, i) => i * 1000);
        const out = downsample(ts, vs, 100);
        expect(out.t.length).toBeLessThanOrEqual(Math.max(100, vs.length <= 100 ? vs.length : 100));
        expect(Math.min(...out.v)).toBe(Math.min(...vs));
        expect(Math.max(...out.v)).toBe(Math.max(...vs));
        for (let i = 1; i < out.t.length; i++) expect(out.t[i]!).toBeGreaterThan(out.t[i - 1]!);
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

function input(): ReportInput {
  const H = 3_600_000;
  const times = [H, 2 * H, 3 * H, 4 * H];
  return {
    meta: { data: 'x', markets: ['AAA', 'BBB'], seed: 1, strategy: 's', strategyParams: {}, risk: {}, pointsPerBar: 4, bookLevels: 8, depthUsd: 50_000, makerFee: '0.00015', takerFee: '0.00045' },
    initialEquity: d(1000),
    finalEquity: d(1015),
    candles: 8,
    start: 0,
    end: 4 * H,
    trades: [
      { coin: 'AAA', direction: 'long', sz: d(1), entryPx: d(10), exitPx: d(40), grossPnl: d(30), fees: d(1), netPnl: d(29), openedAt: 0, closedAt: H },
      { coin: 'BBB', direction: 'short', sz: d(1), entryPx: d(10), exitPx: d(20), grossPnl: d(-10), fees: d(2), netPnl: d(-12), openedAt: H, closedAt: 2 * H },
    ],
    funding: [{ coin: 'AAA', usdc: d(-2) }],
    signals: { total: 3, approved: 2, denied: { stacking: 1 } },
    equity: { times, values: [1029, 1017, 1010, 1015] },
    exposure: { bars: 4, inPosition: 2, perCoin: new Map([['AAA', { bars: 4, inPosition: 1 }], ['BBB', { bars: 4, inPosition: 1 }]]) },
    openPositions: [],
  };
}

describe('buildReport and its renderings', () => {
  it('summarises trades, markets, drawdown and exposure', () => {
    const r = buildReport(input());
    expect(r.summary).toMatchObject({ netPnl: '15', returnPct: 1.5, realizedPnl: '17', fees: '3', funding: '-2', trades: 2, wins: 1, losses: 1, winRatePct: 50, maxDrawdownUsd: '19.00', exposurePct: 50 });
    expect(r.summary.profitFactor).toBeCloseTo(29 / 12, 4);
    expect(r.summary.maxDrawdownPct).toBeCloseTo((19 / 1029) * 100, 3);
    expect(r.markets).toEqual([
      expect.objectContaining({ coin: 'AAA', trades: 1, netPnl: '27', funding: '-2', exposurePct: 25, profitFactor: null }),
      expect.objectContaining({ coin: 'BBB', trades: 1, netPnl: '-12', winRatePct: 0, profitFactor: 0 }),
    ]);
    expect(reportToJson(r)).toBe(reportToJson(buildReport(input())));
    expect(reportToTable(r)).toMatch(/win rate\s+50\.00 %/);
  });

  it('HTML: self-contained, with an equity path and a drawdown area', () => {
    const html = reportToHtml(buildReport(input()));
    expect(html).toMatch(/<svg id="equity-chart"[^]*<path class="series" d="M[\d.,L]+"/);
    expect(html).toMatch(/<svg id="drawdown-chart"[^]*<path class="series" d="M[\d.,L]+Z"/);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });
});

describe('candle market', () => {
  const series = loadBundledSeries();
  const m = new CandleMarket({ series, seed: 5 });

  it('walks each bar open → extremes → close, never outside [low, high]', () => {
    for (const coin of m.coins) {
      for (let j = 0; j < m.barsOf(coin); j += 37) {
        const c = m.candle(coin, j)!;
        const path = m.pathPrices(coin, j).map((p) => p.toNumber());
        expect(path).toHaveLength(4);
        expect(path[0]).toBeCloseTo(c.o, 9);
        expect(path[3]).toBeCloseTo(c.c, 9);
        expect([Math.min(path[1]!, path[2]!), Math.max(path[1]!, path[2]!)]).toEqual([expect.closeTo(c.l, 9), expect.closeTo(c.h, 9)]);
      }
    }
  });

  it('books are never crossed and carry valid prices and whole lots', () => {
    for (const [k, coin] of m.coins.entries()) {
      const szd = series[k]!.szDecimals;
      for (let j = 0; j < m.barsOf(coin); j += 53) {
        for (const i of [0, 1, 2, 3, -1]) {
          const b = m.block(coin, j, i, m.barTime(j));
          expect(b.bids[0]!.px.lt(b.mid)).toBe(true);
          expect(b.asks[0]!.px.gt(b.mid)).toBe(true);
          for (const l of [...b.bids, ...b.asks]) {
            expect(isValidPrice(l.px, szd)).toBe(true);
            expect(isValidSize(l.sz, szd) && l.sz.gt(0)).toBe(true);
          }
          for (let n = 1; n < b.bids.length; n++) expect(b.bids[n]!.px.lt(b.bids[n - 1]!.px)).toBe(true);
          for (let n = 1; n < b.asks.length; n++) expect(b.asks[n]!.px.gt(b.asks[n - 1]!.px)).toBe(true);
          expect(b.fundingRate.abs().lte('0.0005')).toBe(true);
        }
      }
    }
  });

  it('is a function of the seed', () => {
    const again = new CandleMarket({ series, seed: 5 });
    const other = new CandleMarket({ series, seed: 6 });
    const paths = (x: CandleMarket) => Array.from({ length: 300 }, (_, j) => x.pathPrices('BTC', j).map(String).join()).join(';');
    expect(paths(again)).toBe(paths(m));
    expect(paths(other)).not.toBe(paths(m));
  });
});
