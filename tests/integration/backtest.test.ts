/**
 * `keel backtest` end to end (real engine, real SQLite store in a temp dir, the live order manager):
 *  - a hand-computed case: a tiny synthetic candle file and a stub strategy registered through the
 *    StrategyRegistry that signals once at a known bar; every fill, fee, trade and equity point
 *    below is worked out by hand from the rules (risk sizing, the synthetic book, fees);
 *  - determinism: two runs on the bundled data give byte-identical JSON;
 *  - the lazy-block optimisation is invisible: installing every block gives the same report;
 *  - accounting identity: final − initial equity = Σ trades' net + funding + unrealized;
 *  - the command: exit codes, the JSON file, the printed speed line.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Decimal } from '../../src/domain/decimal.ts';
import type { Candle, Instrument, Signal } from '../../src/domain/types.ts';
import { BUILTIN_STRATEGIES, type Strategy, type StrategyFactory } from '../../src/strategy/index.ts';
import { loadBundledSeries, loadCandleSeries } from '../../src/sim/market/index.ts';
import { reportToJson, runBacktest, type BacktestOptions } from '../../src/backtest/index.ts';
import { backtestCommand } from '../../src/cli/backtest-command.ts';

const T0 = Date.UTC(2024, 0, 1); // 2024-01-01T00:00:00Z
const MIN = 60_000;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'keel-bt-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Bars 0–9 flat at 100, bar 10 runs 100 → 105 (low 100, high 105), bars 11–14 flat at 105. */
function writeTinyData(): string {
  const d = path.join(dir, 'tiny');
  const rows = ['time,open,high,low,close,volume'];
  for (let j = 0; j < 15; j++) {
    const [o, h, l, c] = j < 10 ? [100, 100, 100, 100] : j === 10 ? [100, 105, 100, 105] : [105, 105, 105, 105];
    rows.push(`${T0 + j * MIN},${o},${h},${l},${c},1000`);
  }
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  writeFileSync(path.join(d, 'TEST.csv'), `${rows.join('\n')}\n`);
  writeFileSync(path.join(d, 'markets.json'), JSON.stringify([{ coin: 'TEST', szDecimals: 2, maxLeverage: 10, files: ['TEST.csv'] }]));
  return d;
}

/** Signals one long (stop 98, target 104) when the bar opening at `at` closes. */
const oneShot: StrategyFactory<{ at: number }> = {
  name: 'one-shot',
  description: 'test stub: one long signal at a given bar',
  configSchema: z.strictObject({ at: z.number() }),
  create(config: { at: number }, inst: Instrument): Strategy {
    return {
      name: 'one-shot',
      intervals: ['1m'],
      warmupBars: 0,
      onCandle(c: Candle): Signal | undefined {
        if (c.t !== config.at) return undefined;
        return { coin: inst.coin, direction: 'long', refPx: new Decimal(c.c), stopPx: new Decimal(98), takeProfitPx: new Decimal(104), time: c.t, strategy: 'one-shot', reason: 'test' };
      },
    };
  },
};

describe('backtest: a hand-computed case', () => {
  it('fills, fees, trades, equity, drawdown and exposure are the ones worked out by hand', async () => {
    const data = writeTinyData();
    const { report, stats } = await runBacktest({
      series: loadCandleSeries(data),
      dataLabel: 'tiny',
      seed: 7,
      strategy: { name: 'one-shot', params: { at: T0 + 5 * MIN } },
      risk: { riskPct: 1, entrySlippagePct: 0.05 },
      usdc: 10_000,
      registry: BUILTIN_STRATEGIES.with(oneShot),
    });
    // Risk: mark 100.00 (bar 5's close); entry limit 100 × 1.0005 = 100.05; risk/unit 100.05 − 98 =
    // 2.05; budget 1 % × 10 000 = 100 → 100 / 2.05 = 48.78 (lot 0.01, rounded down); notional
    // 4 880.44 < the 10 000 cap (non-major, 100 % of equity).
    // Fill: the synthetic book around mid 100.00 asks 100.01 first (500 TEST there): 48.78 @ 100.01,
    // taker fee 48.78 × 100.01 × 0.00045 = 2.19531951 → 2.19532 (engine rounds fees to 6 dp).
    // Protection: SL 98, TP1 half (24.39) at 1R = 100.01 + 2.01 = 102.02, TP2 24.39 at 104.
    // Bar 10 reaches 105: both take-profits fire at mark 105 and sell into the bid 104.99.
    // Each exit: gross (104.99 − 100.01) × 24.39 = 121.4622; exit fee 24.39 × 104.99 × 0.00045 =
    // 1.152317745 → 1.152318; entry-fee share 2.19532 / 2 = 1.09766 → net 119.212222.
    expect(report.trades).toHaveLength(2);
    for (const t of report.trades) {
      expect(t).toMatchObject({ coin: 'TEST', direction: 'long', sz: '24.39', entryPx: '100.01', exitPx: '104.99', grossPnl: '121.4622', fees: '2.249978', netPnl: '119.212222' });
      expect(t.openedAt).toBe(new Date(T0 + 6 * MIN).toISOString());
      // Bar 10's high is one of its two middle path points (15 s or 30 s into the bar).
      expect([new Date(T0 + 10 * MIN + 15_000).toISOString(), new Date(T0 + 10 * MIN + 30_000).toISOString()]).toContain(t.closedAt);
    }
    const s = report.summary;
    expect(s).toMatchObject({
      initialEquity: '10000',
      finalEquity: '10238.424444',
      netPnl: '238.424444',
      realizedPnl: '238.424444',
      fees: '4.499956',
      funding: '0',
      unrealizedPnl: '0',
      trades: 2,
      wins: 2,
      losses: 0,
      winRatePct: 100,
      profitFactor: null,
      signals: 1,
      approved: 1,
      // While open (bars 5–9), equity = 10 000 − 2.19532 (fee) + 48.78 × (100.00 − 100.01) = 9 997.31688.
      maxDrawdownUsd: '2.68',
      exposurePct: 33.3333,
    });
    expect(s.maxDrawdownPct).toBeCloseTo((2.68312 / 10_000) * 100, 4);
    expect(report.openPositions).toEqual([]);
    const curve = Object.fromEntries(report.equityCurve);
    expect(curve[new Date(T0 + 5 * MIN).toISOString()]).toBe(10_000); // bar 4 closes flat
    expect(curve[new Date(T0 + 6 * MIN).toISOString()]).toBe(9997.32);
    expect(curve[new Date(T0 + 11 * MIN).toISOString()]).toBe(10238.42);
    expect(stats.candles).toBe(15);
    expect(stats.orders).toBe(1);
  });
});

describe('backtest: the bundled data', () => {
  const opts = (over: Partial<BacktestOptions> = {}): BacktestOptions => ({
    series: loadBundledSeries(),
    dataLabel: 'bundled',
    seed: 3,
    strategy: { name: 'enhanced-macd', params: {} },
    risk: { entrySlippagePct: 0.05, minRewardRisk: 1.2 },
    ...over,
  });

  it('is deterministic to the byte', async () => {
    const a = await runBacktest(opts());
    const b = await runBacktest(opts());
    expect(reportToJson(b.report)).toBe(reportToJson(a.report));
    expect(a.report.summary.trades).toBeGreaterThan(10);
  }, 60_000);

  it('installing every block gives the same report as installing only those that matter; another seed differs', async () => {
    // The first 12 hours (720 bars) of each market keep the exhaustive run short.
    const series = loadBundledSeries().map((s) => ({ ...s, bars: s.bars.slice(0, 720) }));
    const lazy = await runBacktest(opts({ series }));
    const full = await runBacktest(opts({ series, exhaustive: true }));
    expect(reportToJson(full.report)).toBe(reportToJson(lazy.report));
    expect(lazy.report.summary.trades).toBeGreaterThan(5);
    expect(full.stats.blocksSkipped).toBe(0);
    expect(lazy.stats.blocksSkipped).toBeGreaterThan(10 * lazy.stats.blocksApplied);
    // Another seed draws other intra-bar paths and funding: the run differs.
    const other = await runBacktest(opts({ series, seed: 4 }));
    expect(reportToJson(other.report)).not.toBe(reportToJson(lazy.report));
  }, 60_000);

  it('accounts for every dollar: net PnL = Σ trades + funding + unrealized', async () => {
    const { report } = await runBacktest(opts());
    const s = report.summary;
    // Every figure is rendered to 6 dp: sums of rendered figures may differ by 1e-6 per term.
    const close = (a: Decimal, b: Decimal.Value, terms: number) => expect(a.minus(b).abs().lte(new Decimal(terms).times('0.000001'))).toBe(true);
    const trades = report.trades.reduce((acc, t) => acc.plus(t.netPnl), new Decimal(0));
    close(trades, s.realizedPnl, report.trades.length);
    close(new Decimal(s.realizedPnl).plus(s.funding).plus(s.unrealizedPnl), s.netPnl, 4);
    expect(new Decimal(s.funding).isZero()).toBe(false);
    const byMarket = report.markets.reduce((acc, m) => acc.plus(m.netPnl), new Decimal(0));
    close(byMarket, new Decimal(s.realizedPnl).plus(s.funding), report.markets.length + 2);
    expect(s.sharpe).not.toBeNull();
    expect(s.exposurePct).toBeGreaterThan(0);
  }, 30_000);
});

describe('keel backtest (the command)', () => {
  const run = async (o: Parameters<typeof backtestCommand>[0]) => {
    let out = '';
    let err = '';
    const code = await backtestCommand(o, { out: (s) => (out += s), err: (s) => (err += s), env: {} });
    return { code, out, err };
  };

  it('prints the table and the speed, and writes the JSON report', async () => {
    const json = path.join(dir, 'r.json');
    const r = await run({ data: writeTinyData(), json, seed: 1, trades: 5 });
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/net PnL/);
    expect(r.out).toMatch(/^speed: \d+ candles\/s/m);
    const parsed = JSON.parse(readFileSync(json, 'utf8')) as { meta: { markets: string[]; candles: number } };
    expect(parsed.meta).toMatchObject({ markets: ['TEST'], candles: 15 });
  });

  it('refuses a market the data does not hold, and bad data, with one line and exit 2', async () => {
    const r = await run({ data: writeTinyData(), markets: 'BTC' });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/not in the data: BTC \(the data holds TEST\)/);
    const bad = path.join(dir, 'bad.csv');
    writeFileSync(bad, 'time,open,high,low,close,volume\n1704067200000,100,99,98,100,1\n');
    const r2 = await run({ data: bad });
    expect(r2.code).toBe(2);
    expect(r2.err).toMatch(/invalid candle data/);
  });
});
