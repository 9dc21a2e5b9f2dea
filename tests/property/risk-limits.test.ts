/**
 * fast-check properties of pre-trade risk: over random accounts, configs and signals, an approved
 * order never breaks a configured limit (each recomputed here independently from the inputs), a
 * halted or reducing gate never approves, and account-level denials are justified by the inputs.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Decimal, isValidPrice, isValidSize, roundPrice } from '../../src/domain/decimal.ts';
import { RiskConfigSchema, evaluateSignal, type RiskConfig, type RiskContext } from '../../src/domain/risk.ts';
import type { Direction, Instrument, Signal, TradingGate } from '../../src/domain/types.ts';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);
const COINS = ['X', 'A', 'B', 'C', 'D'] as const;

/** A decimal from integer parts: mantissa × 10^exp, no float noise. */
const decimalArb = (minMantissa: number, maxMantissa: number, minExp: number, maxExp: number) =>
  fc.tuple(fc.integer({ min: minMantissa, max: maxMantissa }), fc.integer({ min: minExp, max: maxExp })).map(([m, e]) => new Decimal(m).times(new Decimal(10).pow(e)));

/** A fraction in basis points (1/10,000). */
const bps = (min: number, max: number) => fc.integer({ min, max }).map((n) => new Decimal(n).div(10_000));

const configArb: fc.Arbitrary<RiskConfig> = fc
  .record({
    riskPct: fc.integer({ min: 5, max: 300 }).map((n) => n / 100),
    minRewardRisk: fc.integer({ min: 0, max: 30 }).map((n) => n / 10),
    maxOpenPositions: fc.integer({ min: 1, max: 5 }),
    maxMarginUsage: fc.integer({ min: 5, max: 100 }).map((n) => n / 100),
    dailyLossLimitPct: fc.integer({ min: 1, max: 10 }),
    maxOrdersPerMinute: fc.integer({ min: 4, max: 30 }),
    protectiveOrderReserve: fc.integer({ min: 0, max: 3 }),
    maxPriceDeviationPct: fc.integer({ min: 5, max: 50 }).map((n) => n / 10),
    slippageShare: fc.integer({ min: 0, max: 30 }),
    maxLeverageMajor: fc.integer({ min: 1, max: 20 }),
    maxLeverageOther: fc.integer({ min: 1, max: 10 }),
    maxNotionalMajor: fc.integer({ min: 10, max: 2_000_000 }),
    maxNotionalOther: fc.integer({ min: 10, max: 500_000 }),
    maxNotionalPctOfEquityMajor: fc.integer({ min: 10, max: 1000 }),
    maxNotionalPctOfEquityOther: fc.integer({ min: 10, max: 500 }),
    capInsteadOfDeny: fc.boolean(),
    minNotionalUsd: fc.integer({ min: 0, max: 20 }),
  })
  .map(({ slippageShare, ...c }) =>
    RiskConfigSchema.parse({ ...c, entrySlippagePct: Math.floor(c.maxPriceDeviationPct * slippageShare * 10) / 1000 }),
  );

const instrumentArb: fc.Arbitrary<Instrument> = fc.record({
  coin: fc.constant('X'),
  assetId: fc.nat({ max: 200 }),
  szDecimals: fc.integer({ min: 0, max: 5 }),
  maxLeverage: fc.integer({ min: 1, max: 50 }),
  isMajor: fc.boolean(),
});

interface Case {
  cfg: RiskConfig;
  signal: Signal;
  ctx: RiskContext;
}

const caseArb = (gates: fc.Arbitrary<TradingGate>): fc.Arbitrary<Case> =>
  fc
    .record({
      cfg: configArb,
      instrument: instrumentArb,
      gate: gates,
      direction: fc.constantFrom<Direction>('long', 'short'),
      rawMark: decimalArb(1, 99_999, -4, 2),
      refDev: bps(-200, 200),
      stopDist: bps(-50, 1500),
      rewardMultiple: fc.integer({ min: -5, max: 60 }).map((n) => n / 10),
      equity: decimalArb(10, 1_000_000, 0, 1),
      dayStartShare: bps(8_000, 12_000),
      pnlShare: bps(-1_000, 500),
      marginShare: bps(0, 8_000),
      sizeMultiplier: fc.oneof(fc.constantFrom(1, 0.5, 0), fc.integer({ min: 0, max: 100 }).map((n) => n / 100)),
      positions: fc.array(
        fc.record({ coin: fc.constantFrom(...COINS), long: fc.boolean(), notionalShare: bps(0, 30_000) }),
        { maxLength: 4 },
      ),
      working: fc.array(fc.record({ coin: fc.constantFrom(...COINS), side: fc.constantFrom('buy' as const, 'sell' as const), count: fc.integer({ min: 0, max: 2 }), notionalShare: bps(0, 5_000) }), { maxLength: 2 }),
      orderAges: fc.array(fc.integer({ min: -1_000, max: 120_000 }), { maxLength: 30 }),
    })
    .map((g) => {
      const mark = roundPrice(g.rawMark, g.instrument.szDecimals);
      const m = mark.isZero() ? new Decimal(1) : mark;
      const long = g.direction === 'long';
      const sign = long ? -1 : 1;
      const stopPx = m.times(g.stopDist.times(sign).plus(1)).toDecimalPlaces(10);
      const dist = m.minus(stopPx).abs();
      const takeProfitPx = (long ? m.plus(dist.times(g.rewardMultiple)) : m.minus(dist.times(g.rewardMultiple))).toDecimalPlaces(10);
      const signal: Signal = {
        coin: 'X',
        direction: g.direction,
        refPx: m.times(g.refDev.plus(1)).toDecimalPlaces(10),
        stopPx: stopPx.gt(0) ? stopPx : m.div(1000),
        takeProfitPx: takeProfitPx.gt(0) ? takeProfitPx : m.div(1000),
        time: NOW - 60_000,
        strategy: 'prop',
        reason: 'random',
      };
      const dayStartEquity = g.equity.times(g.dayStartShare);
      const ctx: RiskContext = {
        gate: g.gate,
        instrument: g.instrument,
        markPx: m,
        equity: g.equity,
        dayStartEquity,
        marginUsed: g.equity.times(g.marginShare),
        positions: g.positions.map((p) => {
          const notional = g.equity.times(p.notionalShare);
          return { coin: p.coin, szi: p.long ? new Decimal(1) : new Decimal(-1), entryPx: notional.gt(0) ? notional : new Decimal(1), notional };
        }),
        workingEntries: g.working.map((w) => ({ coin: w.coin, side: w.side, count: w.count, notional: g.equity.times(w.notionalShare).times(w.count > 0 ? 1 : 0) })),
        pnlToday: dayStartEquity.times(g.pnlShare),
        recentOrderTimes: g.orderAges.map((a) => NOW - a),
        now: NOW,
        sizeMultiplier: g.sizeMultiplier,
      };
      return { cfg: g.cfg, signal, ctx };
    });

/** Biased toward approvals: two cases in three have at most one other position, no recent orders, no loss today. */
const mostlyClean = (c: Case, keep: number): Case =>
  keep % 3 === 0 ? c : { ...c, ctx: { ...c.ctx, positions: c.ctx.positions.filter((p) => p.coin !== 'X').slice(0, keep % 2), workingEntries: [], recentOrderTimes: [], marginUsed: new Decimal(0), pnlToday: new Decimal(0) } };

const pct = (p: number) => new Decimal(p).div(100);

describe('risk properties', () => {
  it('an approved order never breaks a configured limit', () => {
    let approvals = 0;
    let capped = 0;
    const denials = new Map<string, number>();
    fc.assert(
      fc.property(caseArb(fc.constant('active')), fc.nat(), (raw, keep) => {
        const { cfg, signal, ctx } = mostlyClean(raw, keep);
        const v = evaluateSignal(signal, ctx, cfg);
        if (!v.approved) {
          denials.set(v.reason, (denials.get(v.reason) ?? 0) + 1);
          return;
        }
        approvals++;
        const o = v.order;
        if (o.capped) capped++;
        const long = signal.direction === 'long';
        const mark = ctx.markPx as Decimal;
        const szDec = ctx.instrument.szDecimals;
        // Tick and lot.
        expect(isValidSize(o.sz, szDec)).toBe(true);
        for (const px of [o.px, o.stopPx, o.takeProfitPx]) expect(isValidPrice(px, szDec)).toBe(true);
        expect(o.side).toBe(long ? 'buy' : 'sell');
        // Rounding directions: entry against us, stop never tighter and target never further than asked.
        const slipped = mark.times(pct(cfg.entrySlippagePct).times(long ? 1 : -1).plus(1));
        expect(long ? o.px.gte(slipped) : o.px.lte(slipped)).toBe(true);
        expect(long ? o.stopPx.lte(signal.stopPx) : o.stopPx.gte(signal.stopPx)).toBe(true);
        expect(long ? o.takeProfitPx.lte(signal.takeProfitPx) : o.takeProfitPx.gte(signal.takeProfitPx)).toBe(true);
        // Price sanity: the signal and the order's own price.
        expect(signal.refPx.minus(mark).abs().div(mark).lte(pct(cfg.maxPriceDeviationPct))).toBe(true);
        expect(o.px.minus(mark).abs().div(mark).lte(pct(cfg.maxPriceDeviationPct))).toBe(true);
        // Stop side, reward:risk.
        if (long) expect(o.stopPx.lt(o.px) && o.stopPx.lt(mark) && o.takeProfitPx.gt(o.px)).toBe(true);
        else expect(o.stopPx.gt(o.px) && o.stopPx.gt(mark) && o.takeProfitPx.lt(o.px)).toBe(true);
        const risk = o.px.minus(o.stopPx).abs();
        const reward = o.takeProfitPx.minus(o.px).abs();
        expect(reward.div(risk).gte(cfg.minRewardRisk)).toBe(true);
        // Risk budget, no tolerance.
        expect(o.riskUsd.eq(risk.times(o.sz))).toBe(true);
        expect(o.riskUsd.lte(ctx.equity.times(pct(cfg.riskPct)).times(ctx.sizeMultiplier))).toBe(true);
        // Notional: minimum and per-market cap.
        expect(o.notional.eq(o.sz.times(o.px))).toBe(true);
        expect(o.notional.gte(cfg.minNotionalUsd)).toBe(true);
        const major = ctx.instrument.isMajor;
        const capUsd = new Decimal(major ? cfg.maxNotionalMajor : cfg.maxNotionalOther);
        const capEq = ctx.equity.times(pct(major ? cfg.maxNotionalPctOfEquityMajor : cfg.maxNotionalPctOfEquityOther));
        expect(o.notional.lte(capUsd) && o.notional.lte(capEq)).toBe(true);
        // Leverage: class limit and the venue's.
        const maxLev = Math.min(major ? cfg.maxLeverageMajor : cfg.maxLeverageOther, ctx.instrument.maxLeverage);
        expect(o.leverage).toBeLessThanOrEqual(maxLev);
        expect(Number.isInteger(o.leverage) && o.leverage >= 1).toBe(true);
        const exposure = [...ctx.positions.map((p) => p.notional), ...ctx.workingEntries.map((w) => w.notional)].reduce((a, b) => a.plus(b), o.notional);
        expect(exposure.div(ctx.equity).lte(maxLev)).toBe(true);
        // Margin usage.
        expect(ctx.marginUsed.plus(o.notional.div(o.leverage)).div(ctx.equity).lte(cfg.maxMarginUsage)).toBe(true);
        // Positions: room left, nothing on this coin.
        const inUse = new Set([...ctx.positions.filter((p) => !p.szi.isZero()).map((p) => p.coin), ...ctx.workingEntries.filter((w) => w.count > 0).map((w) => w.coin)]);
        expect(inUse.size).toBeLessThan(cfg.maxOpenPositions);
        expect(inUse.has(signal.coin)).toBe(false);
        // Daily loss and order rate.
        expect(ctx.pnlToday.gt(ctx.dayStartEquity.times(pct(cfg.dailyLossLimitPct)).neg())).toBe(true);
        const recent = ctx.recentOrderTimes.filter((t) => t > NOW - 60_000).length;
        expect(recent).toBeLessThan(cfg.maxOrdersPerMinute - cfg.protectiveOrderReserve);
      }),
      { seed: 20240501, numRuns: 2000 },
    );
    // Not vacuous: a real share of cases is approved, and the limits are actually exercised.
    expect(approvals).toBeGreaterThan(100);
    expect(capped).toBeGreaterThan(0);
    for (const r of ['stop_side', 'reward_risk', 'fat_finger', 'margin_usage', 'leverage', 'max_positions', 'daily_loss', 'order_rate', 'stacking', 'position_size', 'min_notional', 'rounding']) {
      expect(denials.get(r) ?? 0, `denials for ${r}`).toBeGreaterThan(0);
    }
  });

  it('a halted or reducing gate never approves, and says which', () => {
    fc.assert(
      fc.property(caseArb(fc.constantFrom<TradingGate>('halted', 'reducing')), ({ cfg, signal, ctx }) => {
        const v = evaluateSignal(signal, ctx, cfg);
        expect(v.approved).toBe(false);
        expect(v.approved ? undefined : v.reason).toBe(ctx.gate === 'halted' ? 'gate_halted' : 'gate_reducing');
      }),
      { seed: 7, numRuns: 500 },
    );
  });

  it('account-level denials are justified by the inputs', () => {
    fc.assert(
      fc.property(caseArb(fc.constant('active')), ({ cfg, signal, ctx }) => {
        const v = evaluateSignal(signal, ctx, cfg);
        if (v.approved) return;
        switch (v.reason) {
          case 'daily_loss':
            expect(ctx.pnlToday.lte(ctx.dayStartEquity.times(pct(cfg.dailyLossLimitPct)).neg())).toBe(true);
            break;
          case 'order_rate':
            expect(ctx.recentOrderTimes.filter((t) => t > NOW - 60_000).length).toBeGreaterThanOrEqual(cfg.maxOrdersPerMinute - cfg.protectiveOrderReserve);
            break;
          case 'stacking':
            expect(ctx.positions.some((p) => p.coin === signal.coin && !p.szi.isZero()) || ctx.workingEntries.some((w) => w.coin === signal.coin && w.count > 0)).toBe(true);
            break;
          case 'max_positions':
            expect(new Set([...ctx.positions.map((p) => p.coin), ...ctx.workingEntries.filter((w) => w.count > 0).map((w) => w.coin)]).size).toBeGreaterThanOrEqual(cfg.maxOpenPositions);
            break;
          case 'gate_halted':
          case 'gate_reducing':
          case 'invalid':
          case 'no_mark':
            throw new Error(`unexpected ${v.reason} for an active gate and valid input: ${v.detail}`);
          default:
            break;
        }
      }),
      { seed: 99, numRuns: 1000 },
    );
  });

  it('sizing is monotone in the size multiplier (a smaller multiplier never buys more)', () => {
    fc.assert(
      fc.property(caseArb(fc.constant('active')), fc.integer({ min: 0, max: 100 }), (c, m) => {
        const full = evaluateSignal(c.signal, { ...c.ctx, sizeMultiplier: 1 }, c.cfg);
        const part = evaluateSignal(c.signal, { ...c.ctx, sizeMultiplier: m / 100 }, c.cfg);
        if (full.approved && part.approved) expect(part.order.sz.lte(full.order.sz)).toBe(true);
      }),
      { seed: 3, numRuns: 500 },
    );
  });
});
