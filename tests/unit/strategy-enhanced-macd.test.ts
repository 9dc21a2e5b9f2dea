/**
 * enhanced-macd on hand-built candle sequences: an accelerating trend with a 16-minute wave makes
 * the 1m MACD cross every 8 bars while the 5m histogram keeps the trend's sign, so crossovers with
 * the trend pass every filter and crossovers against it meet the higher-timeframe filter.
 */
import { describe, expect, it } from 'vitest';
import { Decimal, isValidPrice, toWire } from '../../src/domain/decimal.ts';
import type { Candle, Instrument, Signal } from '../../src/domain/types.ts';
import {
  BUILTIN_STRATEGIES,
  ENHANCED_MACD_DEFAULTS,
  EnhancedMacdConfigSchema,
  type EnhancedMacdStrategy,
  type FilterName,
  type Strategy,
  createStrategy,
} from '../../src/strategy/index.ts';

const T0 = Date.UTC(2024, 0, 1);
const ETH: Instrument = { coin: 'ETH', assetId: 1, szDecimals: 4, maxLeverage: 25, isMajor: true };
/** szDecimals 5 at ~17 000+: whole-dollar prices, so rounding is coarse and visible. */
const BTC: Instrument = { coin: 'BTC', assetId: 0, szDecimals: 5, maxLeverage: 40, isMajor: true };

function trend(dir: 'up' | 'down', opts: { n?: number; scale?: number; coin?: string; volumeAt?: Record<number, number> } = {}): Candle[] {
  const { n = 260, scale = 1, coin = 'ETH', volumeAt = {} } = opts;
  const out: Candle[] = [];
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const base = 100 * Math.exp(0.002 * i);
    const c = scale * (dir === 'up' ? base : 300 - base) * (1 + 0.01 * Math.sin((2 * Math.PI * i) / 16));
    const o = i === 0 ? c : prev;
    prev = c;
    const t = T0 + i * 60_000;
    out.push({ coin, interval: '1m', t, T: t + 59_999, o, h: Math.max(o, c) * 1.0005, l: Math.min(o, c) * 0.9995, c, v: volumeAt[i] ?? 100 + 20 * Math.cos(i), closed: true });
  }
  return out;
}

function make(config: unknown = {}, instrument: Instrument = ETH): EnhancedMacdStrategy {
  const r = createStrategy('enhanced-macd', config, instrument);
  if (!r.ok) throw new Error(r.error.message);
  return r.strategy as EnhancedMacdStrategy;
}

interface Step {
  readonly i: number;
  readonly candle: Candle;
  readonly signal: Signal | undefined;
  readonly cross: 'long' | 'short' | undefined;
  readonly blockedBy: readonly FilterName[];
  readonly atr: number | undefined;
  readonly adx: number | undefined;
  readonly bbWidth: number | undefined;
}

function run(s: EnhancedMacdStrategy, candles: readonly Candle[]): Step[] {
  return candles.map((candle, i) => {
    const signal = s.onCandle(candle);
    const snap = s.snapshot();
    const e = snap.lastEvaluation!;
    expect(e.t).toBe(candle.t);
    return { i, candle, signal, cross: e.cross, blockedBy: e.blockedBy, atr: snap.atr, adx: snap.adx, bbWidth: snap.bbWidth };
  });
}

const signals = (steps: readonly Step[]) => steps.filter((s) => s.signal !== undefined);
const wire = (s: Signal) => ({ ...s, refPx: toWire(s.refPx), stopPx: toWire(s.stopPx), takeProfitPx: toWire(s.takeProfitPx) });

/** Side of market, instrument price rules, rounding direction and reward:risk of one signal. */
function expectWellFormed(step: Step, instrument: Instrument, cfg = ENHANCED_MACD_DEFAULTS): void {
  const s = step.signal!;
  const { refPx, stopPx, takeProfitPx } = s;
  for (const px of [refPx, stopPx, takeProfitPx]) expect(isValidPrice(px, instrument.szDecimals), toWire(px)).toBe(true);
  expect(refPx.minus(step.candle.c).abs().toNumber()).toBeLessThanOrEqual(step.candle.c * 1e-4); // nearest valid price
  const stopDist = new Decimal(step.atr!).times(cfg.atrStopMult);
  const tpDist = new Decimal(step.atr!).times(cfg.atrTpMult);
  let risk: Decimal;
  let reward: Decimal;
  if (s.direction === 'long') {
    expect(stopPx.lt(refPx) && refPx.lt(takeProfitPx)).toBe(true);
    expect(stopPx.lte(refPx.minus(stopDist))).toBe(true); // stop rounded away from the entry
    expect(takeProfitPx.lte(refPx.plus(tpDist))).toBe(true); // take profit rounded toward it
    risk = refPx.minus(stopPx);
    reward = takeProfitPx.minus(refPx);
  } else {
    expect(takeProfitPx.lt(refPx) && refPx.lt(stopPx)).toBe(true);
    expect(stopPx.gte(refPx.plus(stopDist))).toBe(true);
    expect(takeProfitPx.gte(refPx.minus(tpDist))).toBe(true);
    risk = stopPx.minus(refPx);
    reward = refPx.minus(takeProfitPx);
  }
  const nominal = cfg.atrTpMult / cfg.atrStopMult;
  const rr = reward.div(risk).toNumber();
  expect(rr).toBeLessThanOrEqual(nominal + 1e-12);
  // Within rounding: at most one price step lost on each side (the step at this price level).
  const step1 = Math.max(10 ** -(6 - instrument.szDecimals), 10 ** (Math.floor(Math.log10(refPx.toNumber())) - 4));
  expect(rr).toBeGreaterThanOrEqual((tpDist.toNumber() - step1) / (stopDist.toNumber() + step1) - 1e-12);
  expect(s.time).toBe(step.candle.T);
  expect(s.coin).toBe(instrument.coin);
  expect(s.strategy).toBe('enhanced-macd');
}

describe('enhanced-macd signals', () => {
  it('a bullish crossover in an uptrend with every filter passing gives a long with stop below and TP above', () => {
    const steps = run(make(), trend('up'));
    const sig = signals(steps);
    expect(sig.length).toBeGreaterThanOrEqual(4);
    for (const s of sig) {
      expect(s.signal!.direction).toBe('long');
      expect(s.cross).toBe('long');
      expectWellFormed(s, ETH);
    }
    const reason = sig[0]!.signal!.reason;
    for (const part of ['MACD 1m bullish cross', '5m histogram', 'volume', 'ATR', 'BB width', 'ADX']) expect(reason).toContain(part);
    // Crossovers against the trend meet the higher-timeframe filter.
    const shorts = steps.filter((s) => s.cross === 'short');
    expect(shorts.length).toBeGreaterThan(4);
    for (const s of shorts) expect(s.blockedBy).toContain('htf');
  });

  it('a bearish crossover in a downtrend gives a short with stop above and TP below', () => {
    const steps = run(make(), trend('down'));
    const sig = signals(steps);
    expect(sig.length).toBeGreaterThanOrEqual(4);
    for (const s of sig) {
      expect(s.signal!.direction).toBe('short');
      expectWellFormed(s, ETH);
    }
    expect(sig[0]!.signal!.reason).toContain('bearish');
  });

  it('rounds coarse (whole-dollar) prices the safe way, so reward:risk never exceeds atrTpMult / atrStopMult', () => {
    for (const dir of ['up', 'down'] as const) {
      for (const cfg of [{}, { atrStopMult: 1, atrTpMult: 1.7 }, { atrStopMult: 2.2, atrTpMult: 2.5 }]) {
        const parsed = EnhancedMacdConfigSchema.parse(cfg);
        const sig = signals(run(make(cfg, BTC), trend(dir, { scale: 170, coin: 'BTC' })));
        expect(sig.length).toBeGreaterThan(0);
        for (const s of sig) {
          expect(s.signal!.stopPx.isInteger()).toBe(true);
          expectWellFormed(s, BTC, parsed);
        }
      }
    }
  });
});

describe('each filter alone blocks a signal', () => {
  // The first long the defaults emit in the uptrend; every variation below changes only what one
  // filter sees at that bar, and the bar must then report exactly that filter.
  const base = run(make(), trend('up'));
  const first = signals(base)[0]!;
  const at = (steps: Step[]) => steps[first.i]!;

  it('the reference bar signals with nothing blocked', () => {
    expect(first.i).toBeGreaterThan(150);
    expect(first.blockedBy).toEqual([]);
  });

  it('higher timeframe: no confirmation before the 5m MACD has a histogram', () => {
    const early = base.filter((s) => s.cross === 'long' && s.i < 169);
    expect(early.length).toBeGreaterThan(3);
    for (const s of early) expect(s.blockedBy).toContain('htf');
    expect(signals(base).every((s) => s.i >= 169)).toBe(true);
  });

  it('higher timeframe: a crossover against the 5m histogram sign (and only that)', () => {
    const against = base.filter((s) => s.cross === 'short' && s.i > first.i);
    expect(against.some((s) => s.blockedBy.length === 1 && s.blockedBy[0] === 'htf')).toBe(true);
  });

  it('volume: the crossover bar trades less than volumeMult × the average', () => {
    const steps = run(make(), trend('up', { volumeAt: { [first.i]: 100 * ENHANCED_MACD_DEFAULTS.volumeMult * 0.9 } }));
    expect(at(steps).cross).toBe('long');
    expect(at(steps).blockedBy).toEqual(['volume']);
    expect(at(steps).signal).toBeUndefined();
  });

  it('volume: a higher multiplier; the bar is measured against the PREVIOUS volumePeriod bars', () => {
    expect(at(run(make({ volumeMult: 3 }), trend('up'))).blockedBy).toEqual(['volume']);
    const candles = trend('up');
    const prev = candles.slice(first.i - 20, first.i).reduce((a, c) => a + c.v, 0) / 20;
    const ratio = candles[first.i]!.v / prev;
    expect(at(run(make({ volumeMult: ratio * (1 - 1e-9) }), candles)).blockedBy).toEqual([]);
    expect(at(run(make({ volumeMult: ratio * (1 + 1e-9) }), candles)).blockedBy).toEqual(['volume']);
  });

  it('ATR: below minAtrPct, and above maxAtrPct', () => {
    const atrPct = first.atr! / first.candle.c;
    expect(at(run(make({ minAtrPct: atrPct * 1.0001, maxAtrPct: 1 }), trend('up'))).blockedBy).toEqual(['atr']);
    expect(at(run(make({ minAtrPct: 0, maxAtrPct: atrPct * 0.9999 }), trend('up'))).blockedBy).toEqual(['atr']);
  });

  it('Bollinger width below minBbWidth', () => {
    expect(at(run(make({ minBbWidth: first.bbWidth! * 1.0001 }), trend('up'))).blockedBy).toEqual(['bb_width']);
  });

  it('ADX below minAdx', () => {
    const steps = run(make({ minAdx: first.adx! + 0.01 }), trend('up'));
    expect(at(steps).blockedBy).toEqual(['adx']);
    expect(signals(steps).filter((s) => s.i <= first.i)).toEqual([]);
  });

  it('cooldown: the next crossover inside cooldownBars, then the one after it passes', () => {
    const longs = base.filter((s) => s.cross === 'long' && s.i > first.i);
    const gap = longs[0]!.i - first.i; // one wave: 16 bars
    const steps = run(make({ cooldownBars: gap + 1 }), trend('up'));
    expect(steps[first.i]!.signal).toBeDefined();
    expect(steps[longs[0]!.i]!.blockedBy).toEqual(['cooldown']);
    expect(steps[longs[1]!.i]!.signal).toBeDefined();
    // The default cooldown is shorter than a wave, so both signal there.
    expect(base[longs[0]!.i]!.signal).toBeDefined();
  });
});

describe('enhanced-macd input discipline and determinism', () => {
  it('replaying the same candles gives identical signals and state', () => {
    const candles = [...trend('up'), ...trend('down', { n: 200 }).map((c, i) => ({ ...c, t: c.t + 260 * 60_000, T: c.T + 260 * 60_000 }))];
    const a = make();
    const b = make();
    const sa = candles.map((c) => a.onCandle(c)).filter((s) => s !== undefined).map(wire);
    const sb = candles.map((c) => b.onCandle(c)).filter((s) => s !== undefined).map(wire);
    expect(sa.length).toBeGreaterThan(4);
    expect(sb).toEqual(sa);
    expect(JSON.stringify(b.snapshot())).toBe(JSON.stringify(a.snapshot()));
  });

  it('ignores unclosed, duplicate, out-of-order, other-coin and other-interval candles', () => {
    const candles = trend('up');
    const reference = make();
    const expected = candles.map((c) => reference.onCandle(c)).filter((s) => s !== undefined).map(wire);
    const noisy = make();
    const got: Signal[] = [];
    candles.forEach((c, i) => {
      const junk = { ...c, o: c.o * 3, h: c.h * 3, l: c.l / 3, c: c.c * 2, v: 1e9 };
      const feed = [
        { ...junk, closed: false },
        { ...junk, coin: 'BTC' },
        { ...junk, interval: '5m' },
        c,
        junk, // duplicate t with different values
        ...(i > 0 ? [{ ...junk, t: candles[i - 1]!.t, T: candles[i - 1]!.T }] : []), // older t
      ];
      for (const x of feed) {
        const s = noisy.onCandle(x);
        if (s) got.push(s);
      }
    });
    expect(got.map(wire)).toEqual(expected);
    expect(noisy.snapshot().bars).toBe(candles.length);
  });
});

describe('strategy registry and config', () => {
  it('defaults, warm-up and intervals', () => {
    const s = make();
    expect(s.name).toBe('enhanced-macd');
    expect(s.intervals).toEqual(['1m']);
    // 34 five-minute bars for the first 5m histogram, plus up to 4 bars before the first bucket starts.
    expect(s.warmupBars).toBe(174);
    expect(ENHANCED_MACD_DEFAULTS).toMatchObject({ baseInterval: '1m', confirmInterval: '5m', macdFast: 12, macdSlow: 26, macdSignal: 9, volumePeriod: 20, atrPeriod: 14, bbPeriod: 20, bbStdDev: 2, adxPeriod: 14, minAdx: 20, atrStopMult: 1.5, atrTpMult: 3 });
    expect(make({ confirmInterval: '15m' }).warmupBars).toBe(35 * 15 - 1);
  });

  it('bad configs and unknown names come back as values naming the problem', () => {
    const bad = (cfg: unknown) => {
      const r = createStrategy('enhanced-macd', cfg, ETH);
      expect(r.ok).toBe(false);
      return r.ok ? '' : r.error.kind === 'invalid_config' ? r.error.issues.join('; ') : r.error.message;
    };
    expect(bad({ minAdx: 'high' })).toMatch(/minAdx/);
    expect(bad({ macdFast: 30 })).toMatch(/macdFast/);
    expect(bad({ confirmInterval: '7m', baseInterval: '5m' })).toMatch(/confirmInterval/);
    expect(bad({ confirmInterval: '1m' })).toMatch(/confirmInterval/);
    expect(bad({ minAtrPct: 0.5, maxAtrPct: 0.1 })).toMatch(/minAtrPct/);
    expect(bad({ volumeMul: 2 })).toMatch(/volumeMul/); // a typo is not silently ignored
    expect(bad({ cooldownBars: -1 })).toMatch(/cooldownBars/);
    const unknown = createStrategy('nope', {}, ETH);
    expect(unknown.ok === false && unknown.error.kind).toBe('unknown_strategy');
    expect(createStrategy('enhanced-macd', undefined, ETH).ok).toBe(true);
  });

  it('another strategy plugs in through the registry without touching the built-ins', () => {
    const always: Strategy = { name: 'always-long', intervals: ['1m'], warmupBars: 0, onCandle: () => undefined };
    const registry = BUILTIN_STRATEGIES.with({ name: 'always-long', description: 'test', configSchema: EnhancedMacdConfigSchema, create: () => always });
    expect(registry.names()).toEqual(['always-long', 'enhanced-macd']);
    const r = createStrategy('always-long', {}, ETH, registry);
    expect(r.ok && r.strategy).toBe(always);
    expect(BUILTIN_STRATEGIES.names()).toEqual(['enhanced-macd']);
  });
});
