/** Pre-trade checks: one test per denial reason (exact enum), hand-computed sizing, rounding directions. */
import { describe, expect, it } from 'vitest';
import { dec, isValidPrice, isValidSize } from '../../src/domain/decimal.ts';
import type { Decimal } from '../../src/domain/decimal.ts';
import {
  DEFAULT_RISK_CONFIG,
  RiskConfigSchema,
  checkOrderRate,
  checkPriceDeviation,
  evaluateSignal,
  marketLimits,
  nextUtcMidnight,
  parseRiskConfig,
  sizeMultiplierFor,
  type ProposedOrder,
  type RiskConfig,
  type RiskConfigInput,
  type RiskContext,
  type RiskVerdict,
} from '../../src/domain/risk.ts';
import type { DenialReason, Instrument, Signal } from '../../src/domain/types.ts';

const NOW = Date.UTC(2024, 4, 1, 12, 0, 0);

const SOL: Instrument = { coin: 'SOL', assetId: 5, szDecimals: 2, maxLeverage: 10, isMajor: false };
const BTC: Instrument = { coin: 'BTC', assetId: 0, szDecimals: 5, maxLeverage: 40, isMajor: true };

function cfg(over: RiskConfigInput = {}): RiskConfig {
  return RiskConfigSchema.parse(over);
}

/** Long SOL: mark 99.9 → entry 99.9 × 1.001 = 99.9999 → tick up → 100; stop 98; target 104 (2R). */
function signal(over: Partial<Signal> = {}): Signal {
  return { coin: 'SOL', direction: 'long', refPx: dec(99.9), stopPx: dec(98), takeProfitPx: dec(104), time: NOW - 60_000, strategy: 'test', reason: 'unit', ...over };
}

function ctx(over: Partial<RiskContext> = {}): RiskContext {
  return {
    gate: 'active',
    instrument: SOL,
    markPx: dec(99.9),
    equity: dec(10_000),
    dayStartEquity: dec(10_000),
    marginUsed: dec(0),
    positions: [],
    workingEntries: [],
    pnlToday: dec(0),
    recentOrderTimes: [],
    now: NOW,
    sizeMultiplier: 1,
    ...over,
  };
}

function approved(v: RiskVerdict): ProposedOrder {
  if (!v.approved) throw new Error(`expected approval, got ${v.reason}: ${v.detail}`);
  return v.order;
}

function denied(v: RiskVerdict, reason: DenialReason): string {
  expect(v.approved ? 'approved' : v.reason).toBe(reason);
  return v.approved ? '' : v.detail;
}

const eq = (a: Decimal, b: Decimal.Value): void => {
  expect(a.toFixed()).toBe(dec(b).toFixed());
};

describe('evaluateSignal: approved', () => {
  it('sizes by fixed fractional risk: equity 10,000 × 0.5 % = 50 USD over a 2 USD stop = 25 units', () => {
    const v = evaluateSignal(signal(), ctx(), DEFAULT_RISK_CONFIG);
    const o = approved(v);
    eq(o.px, 100);
    eq(o.stopPx, 98);
    eq(o.takeProfitPx, 104);
    eq(o.sz, 25);
    eq(o.notional, 2500);
    eq(o.riskUsd, 50);
    expect(o.leverage).toBe(3);
    eq(o.margin, dec(2500).div(3));
    expect(o).toMatchObject({ coin: 'SOL', assetId: 5, side: 'buy', direction: 'long', capped: false });
    expect(v.approved && v.checks).toEqual(['gate', 'input', 'daily_loss', 'order_rate', 'stacking', 'max_positions', 'mark', 'fat_finger', 'stop_side', 'reward_risk', 'sizing', 'position_size', 'min_notional', 'leverage', 'margin_usage']);
  });

  it('halves the size in Degraded mode (sizeMultiplier 0.5)', () => {
    const o = approved(evaluateSignal(signal(), ctx({ sizeMultiplier: sizeMultiplierFor('Degraded') }), DEFAULT_RISK_CONFIG));
    eq(o.sz, 12.5);
    eq(o.riskUsd, 25);
  });

  it('sizes a short symmetrically (sell at mark, stop above)', () => {
    const c = cfg({ entrySlippagePct: 0 });
    const o = approved(evaluateSignal(signal({ direction: 'short', refPx: dec(100), stopPx: dec(102), takeProfitPx: dec(96) }), ctx({ markPx: dec(100) }), c));
    expect(o.side).toBe('sell');
    eq(o.px, 100);
    eq(o.sz, 25);
    eq(o.riskUsd, 50);
  });

  it('rounds the size DOWN to the lot', () => {
    // 50 / 3 = 16.666… → 16.66 at 2 decimals (nearest would be 16.67 and overshoot the budget).
    const o = approved(evaluateSignal(signal({ stopPx: dec(97), takeProfitPx: dec(106) }), ctx(), DEFAULT_RISK_CONFIG));
    eq(o.sz, '16.66');
    expect(o.riskUsd.lte(50)).toBe(true);
  });

  it('accepts reward:risk exactly at the minimum and the daily loss just above the limit', () => {
    approved(evaluateSignal(signal({ takeProfitPx: dec(103) }), ctx({ pnlToday: dec(-299.99) }), DEFAULT_RISK_CONFIG));
  });

  it('BTC as a major: 5× leverage class, venue cap not binding', () => {
    const c = cfg({ entrySlippagePct: 0 });
    const o = approved(evaluateSignal(signal({ coin: 'BTC', refPx: dec(60_000), stopPx: dec(59_000), takeProfitPx: dec(62_000) }), ctx({ instrument: BTC, markPx: dec(60_000) }), c));
    expect(o.leverage).toBe(5);
    eq(o.sz, '0.05');
    eq(o.notional, 3000);
  });
});

describe('evaluateSignal: rounding directions (unfavourable for us)', () => {
  const c = DEFAULT_RISK_CONFIG;
  const mark = dec('123.456789');
  it('long: entry rounds up, stop down (away), target down (toward the entry)', () => {
    const o = approved(evaluateSignal(signal({ refPx: mark, stopPx: dec('120.123'), takeProfitPx: dec('130.456') }), ctx({ markPx: mark }), c));
    eq(o.px, '123.59'); // 123.580246… up to 5 significant figures
    eq(o.stopPx, '120.12');
    eq(o.takeProfitPx, '130.45');
    expect(isValidPrice(o.px, SOL.szDecimals) && isValidSize(o.sz, SOL.szDecimals)).toBe(true);
  });
  it('short: entry rounds down, stop up (away), target up (toward the entry)', () => {
    const o = approved(evaluateSignal(signal({ direction: 'short', refPx: mark, stopPx: dec('126.781'), takeProfitPx: dec('115.678') }), ctx({ markPx: mark }), c));
    eq(o.px, '123.33'); // 123.333332… down
    eq(o.stopPx, '126.79');
    eq(o.takeProfitPx, '115.68');
  });
  it('large prices round to integers (5 significant figures)', () => {
    const m = dec('64321.7');
    const o = approved(evaluateSignal(signal({ coin: 'BTC', refPx: m, stopPx: dec('63500.5'), takeProfitPx: dec('66000.5') }), ctx({ instrument: BTC, markPx: m }), c));
    eq(o.px, 64387); // 64386.0217 up to an integer
    eq(o.stopPx, 63500);
    eq(o.takeProfitPx, 66000);
  });
});

describe('evaluateSignal: each check denies with its own reason', () => {
  const c = DEFAULT_RISK_CONFIG;
  it('gate_halted', () => denied(evaluateSignal(signal(), ctx({ gate: 'halted' }), c), 'gate_halted'));
  it('gate_reducing', () => denied(evaluateSignal(signal(), ctx({ gate: 'reducing' }), c), 'gate_reducing'));
  it('invalid: signal for another coin, non-positive equity, bad multiplier', () => {
    denied(evaluateSignal(signal({ coin: 'ETH' }), ctx(), c), 'invalid');
    denied(evaluateSignal(signal(), ctx({ equity: dec(0) }), c), 'invalid');
    denied(evaluateSignal(signal(), ctx({ sizeMultiplier: 1.5 }), c), 'invalid');
    denied(evaluateSignal(signal({ stopPx: dec(Number.NaN) }), ctx(), c), 'invalid');
  });
  it('daily_loss: today’s PnL at −3 % of start-of-day equity', () => {
    const d = denied(evaluateSignal(signal(), ctx({ pnlToday: dec(-300) }), c), 'daily_loss');
    expect(d).toContain('-300');
  });
  it('order_rate: entries keep room for their protective orders (20 − 3 = 17)', () => {
    const times = Array.from({ length: 17 }, (_, i) => NOW - 59_000 + i);
    denied(evaluateSignal(signal(), ctx({ recentOrderTimes: times }), c), 'order_rate');
    // Sixteen recent plus old ones outside the window pass.
    approved(evaluateSignal(signal(), ctx({ recentOrderTimes: [...times.slice(1), NOW - 60_000, NOW - 120_000] }), c));
  });
  it('stacking: same-side position, opposite position, working entry', () => {
    const pos = (szi: number) => [{ coin: 'SOL', szi: dec(szi), entryPx: dec(95), notional: dec(Math.abs(szi) * 95) }];
    denied(evaluateSignal(signal(), ctx({ positions: pos(3) }), c), 'stacking');
    expect(denied(evaluateSignal(signal(), ctx({ positions: pos(-3) }), c), 'stacking')).toContain('opposite');
    denied(evaluateSignal(signal(), ctx({ workingEntries: [{ coin: 'SOL', side: 'buy', count: 1, notional: dec(500) }] }), c), 'stacking');
  });
  it('max_positions: three markets in use (positions and working entries)', () => {
    const positions = ['AVAX', 'DOGE'].map((coin) => ({ coin, szi: dec(1), entryPx: dec(10), notional: dec(10) }));
    denied(evaluateSignal(signal(), ctx({ positions, workingEntries: [{ coin: 'ARB', side: 'sell', count: 1, notional: dec(50) }] }), c), 'max_positions');
    approved(evaluateSignal(signal(), ctx({ positions }), c));
  });
  it('no_mark: missing or non-positive mark', () => {
    denied(evaluateSignal(signal(), ctx({ markPx: undefined }), c), 'no_mark');
    denied(evaluateSignal(signal(), ctx({ markPx: dec(0) }), c), 'no_mark');
  });
  it('fat_finger: reference price 2.2 % from the mark (limit 2 %)', () => {
    denied(evaluateSignal(signal({ refPx: dec(102.1) }), ctx(), c), 'fat_finger');
    approved(evaluateSignal(signal({ refPx: dec(101.8) }), ctx(), c));
  });
  it('stop_side: long stop above the entry, or between the mark and the entry', () => {
    denied(evaluateSignal(signal({ stopPx: dec(100.5), takeProfitPx: dec(110) }), ctx(), c), 'stop_side');
    denied(evaluateSignal(signal({ stopPx: dec(99.95) }), ctx(), c), 'stop_side'); // below entry 100, above mark 99.9
    denied(evaluateSignal(signal({ direction: 'short', stopPx: dec(98), takeProfitPx: dec(90) }), ctx(), c), 'stop_side');
  });
  it('reward_risk: 2.9 / 2 = 1.45 < 1.5; target on the wrong side', () => {
    denied(evaluateSignal(signal({ takeProfitPx: dec(102.9) }), ctx(), c), 'reward_risk');
    denied(evaluateSignal(signal({ takeProfitPx: dec(95) }), ctx(), c), 'reward_risk');
  });
  it('rounding: the risk budget buys less than one lot', () => {
    const whole: Instrument = { ...SOL, szDecimals: 0 };
    // 200 × 0.5 % = 1 USD over a 2 USD stop = 0.5 unit → 0 whole units.
    denied(evaluateSignal(signal(), ctx({ instrument: whole, equity: dec(200), dayStartEquity: dec(200) }), c), 'rounding');
    denied(evaluateSignal(signal(), ctx({ sizeMultiplier: 0 }), c), 'rounding');
  });
  it('min_notional: 500 × 0.5 % = 2.5 USD over a 50 USD stop = 0.05 unit = 5 USD < 10', () => {
    denied(evaluateSignal(signal({ stopPx: dec(50), takeProfitPx: dec(180) }), ctx({ equity: dec(500), dayStartEquity: dec(500) }), c), 'min_notional');
  });
  it('position_size: 50 / 0.4 = 125 units = 12,500 USD above the 10,000 cap (100 % of equity) when denying', () => {
    const deny = cfg({ capInsteadOfDeny: false });
    denied(evaluateSignal(signal({ stopPx: dec(99.6) }), ctx(), deny), 'position_size');
  });
  it('position_size cap mode shrinks to the cap and risks less than the budget', () => {
    const v = evaluateSignal(signal({ stopPx: dec(99.6) }), ctx(), DEFAULT_RISK_CONFIG);
    const o = approved(v);
    eq(o.sz, 100);
    eq(o.notional, 10_000);
    eq(o.riskUsd, 40);
    expect(o.capped).toBe(true);
    expect(v.approved && v.checks).toContain('position_size:capped');
  });
  it('leverage: 28,000 open + 2,500 = 3.05× equity above 3× for a non-major', () => {
    const positions = [{ coin: 'AVAX', szi: dec(-1000), entryPx: dec(28), notional: dec(28_000) }];
    denied(evaluateSignal(signal(), ctx({ positions }), c), 'leverage');
  });
  it('leverage: the instrument’s own max leverage binds below the class limit', () => {
    const positions = [{ coin: 'AVAX', szi: dec(10), entryPx: dec(1), notional: dec(18_000) }];
    denied(evaluateSignal(signal(), ctx({ instrument: { ...SOL, maxLeverage: 2 }, positions }), c), 'leverage');
    approved(evaluateSignal(signal(), ctx({ positions }), c));
  });
  it('margin_usage: 4,500 used + 2,500 / 3 = 53 % above 50 %', () => {
    denied(evaluateSignal(signal(), ctx({ marginUsed: dec(4_500) }), c), 'margin_usage');
    approved(evaluateSignal(signal(), ctx({ marginUsed: dec(4_100) }), c));
  });
});

describe('helpers', () => {
  it('checkOrderRate counts the last 60 s only, with an optional reserve', () => {
    const c = { maxOrdersPerMinute: 5 };
    const times = [NOW - 61_000, NOW - 60_000, NOW - 59_999, NOW - 1000, NOW - 10, NOW];
    expect(checkOrderRate(times, NOW, c)).toEqual({ ok: true, count: 4 });
    expect(checkOrderRate(times, NOW, c, 2).ok).toBe(false);
    const r = checkOrderRate([...times, NOW, NOW], NOW, c);
    expect(r).toMatchObject({ ok: false, reason: 'order_rate', count: 6 });
  });
  it('checkPriceDeviation for exits: no mark, too far, fine', () => {
    expect(checkPriceDeviation(dec(100), undefined, 2)).toMatchObject({ ok: false, reason: 'no_mark' });
    expect(checkPriceDeviation(dec(103), dec(100), 2)).toMatchObject({ ok: false, reason: 'fat_finger' });
    expect(checkPriceDeviation(dec(102), dec(100), 2)).toEqual({ ok: true });
  });
  it('sizeMultiplierFor modes', () => {
    expect(['Normal', 'Degraded', 'Critical', 'Emergency'].map((m) => sizeMultiplierFor(m as 'Normal'))).toEqual([1, 0.5, 0, 0]);
  });
  it('nextUtcMidnight is strictly after t', () => {
    expect(nextUtcMidnight(NOW)).toBe(Date.UTC(2024, 4, 2));
    expect(nextUtcMidnight(Date.UTC(2024, 4, 2))).toBe(Date.UTC(2024, 4, 3));
  });
  it('marketLimits: the lower of the USD cap and the % of equity', () => {
    expect(marketLimits(BTC, dec(10_000), DEFAULT_RISK_CONFIG).notionalCap.toNumber()).toBe(20_000);
    expect(marketLimits(BTC, dec(1_000_000), DEFAULT_RISK_CONFIG).notionalCap.toNumber()).toBe(100_000);
  });
});

describe('RiskConfigSchema', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_RISK_CONFIG).toMatchObject({ riskPct: 0.5, minRewardRisk: 1.5, maxOpenPositions: 3, maxMarginUsage: 0.5, dailyLossLimitPct: 3, maxOrdersPerMinute: 20, maxPriceDeviationPct: 2, entrySlippagePct: 0.1, maxLeverageMajor: 5, maxLeverageOther: 3 });
  });
  it('names the bad key: unknown keys, out-of-range values, contradictions', () => {
    const unknown = parseRiskConfig({ riskPcnt: 1 });
    expect(unknown.ok === false && unknown.error).toMatch(/riskPcnt/);
    const range = parseRiskConfig({ riskPct: 50 });
    expect(range.ok === false && range.error).toMatch(/risk\.riskPct/);
    const contra = parseRiskConfig({ entrySlippagePct: 3, maxPriceDeviationPct: 2 });
    expect(contra.ok === false && contra.error).toMatch(/entrySlippagePct/);
    expect(parseRiskConfig(undefined)).toEqual({ ok: true, config: DEFAULT_RISK_CONFIG });
  });
});
