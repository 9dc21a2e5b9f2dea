/**
 * `enhanced-macd`: keel's default strategy, one instance per market.
 *
 * Entry: a MACD(12,26,9) line/signal crossover on the base timeframe (default 1m), confirmed by
 * the sign of the MACD histogram on a higher timeframe (default 5m, aggregated here from the same
 * closed base bars), and only when every filter passes:
 *   - volume: bar volume ≥ volumeMult × SMA(volume, 20) of the PREVIOUS 20 bars (the bar itself
 *     is not in its own average, so a spike is measured against what came before);
 *   - volatility: ATR(14) / close within [minAtrPct, maxAtrPct], and Bollinger(20,2)
 *     (upper − lower) / middle ≥ minBbWidth (all three are fractions: 0.001 = 0.1 %);
 *   - regime: ADX(14) ≥ minAdx;
 *   - cooldown: no signal within `cooldownBars` base bars after the previous one.
 * Exits come from the signal: stop = close ∓ atrStopMult × ATR, take profit = close ± atrTpMult × ATR,
 * rounded to the instrument's price rules with the stop rounded AWAY from the entry and the take
 * profit TOWARD it, so rounding never improves reward:risk beyond atrTpMult / atrStopMult.
 *
 * Invariants: pure and deterministic (state depends only on the candles fed, in order); acts only
 * on closed base-interval candles of its coin with a strictly increasing open time; a signal's
 * stop is strictly on the losing side of refPx and its take profit strictly on the winning side.
 */
import { z } from 'zod';
import { Decimal, roundPrice } from '../domain/decimal.ts';
import type { Candle, Direction, Instrument, Signal } from '../domain/types.ts';
import { CandleAggregator, intervalMs } from './candle-aggregator.ts';
import { Adx } from './indicators/adx.ts';
import { Atr } from './indicators/atr.ts';
import { Bollinger } from './indicators/bollinger.ts';
import { Macd, type MacdValue } from './indicators/macd.ts';
import { Sma } from './indicators/sma.ts';
import type { Strategy, StrategyFactory } from './strategy.ts';

export const ENHANCED_MACD = 'enhanced-macd';

const interval = z.string().refine((s) => intervalMs(s) !== undefined, { message: 'an interval like 1m, 5m, 15m, 1h' });
const period = (d: number) => z.number().int().min(2).max(1000).default(d);
const ratio = (d: number) => z.number().finite().min(0).default(d);

export const EnhancedMacdConfigSchema = z
  .strictObject({
    baseInterval: interval.default('1m'),
    confirmInterval: interval.default('5m'),
    macdFast: period(12),
    macdSlow: period(26),
    macdSignal: period(9),
    volumePeriod: period(20),
    /**
     * Bar volume must be ≥ volumeMult × the average of the previous `volumePeriod` bars (0 disables).
     * 0.5, not 1.0: bar volume is right-skewed (its mean sits well above its median), so 1.0 passed
     * only ~40 % of bars and cut the default to ~0.3 signals an hour on the bundled data; 0.5 still
     * rejects the dead bars (zero-volume fills, sub-half-average lulls).
     */
    volumeMult: ratio(0.5),
    atrPeriod: period(14),
    /**
     * ATR / close lower bound, a fraction (0.0001 = 0.01 %): skip dead markets. For live trading
     * raise it so that atrStopMult × ATR clearly exceeds round-trip fees (≈ 0.0005 and up).
     */
    minAtrPct: ratio(0.0001),
    /** ATR / close upper bound, a fraction: skip markets too wild for the stop distance. */
    maxAtrPct: ratio(0.01),
    bbPeriod: period(20),
    bbStdDev: z.number().finite().positive().default(2),
    /** (upper − lower) / middle lower bound, a fraction. */
    minBbWidth: ratio(0.0005),
    adxPeriod: period(14),
    minAdx: z.number().finite().min(0).max(100).default(20),
    atrStopMult: z.number().finite().positive().default(1.5),
    /**
     * Floor of the stop distance as a fraction of price (0.0025 = 0.25 %). On calm 1m bars
     * 1.5 × ATR can be a few basis points: less than round-trip fees and the entry's own
     * slippage, a stop that only pays the venue. The take-profit keeps the atrTpMult / atrStopMult
     * ratio to the floored distance.
     */
    minStopPct: ratio(0.0025),
    atrTpMult: z.number().finite().positive().default(3.0),
    /** Base bars after a signal during which no new signal is emitted. */
    cooldownBars: z.number().int().min(0).default(5),
  })
  .superRefine((c, ctx) => {
    if (c.macdFast >= c.macdSlow) ctx.addIssue({ code: 'custom', path: ['macdFast'], message: `must be less than macdSlow (${c.macdSlow})` });
    if (c.minAtrPct > c.maxAtrPct) ctx.addIssue({ code: 'custom', path: ['minAtrPct'], message: `must not exceed maxAtrPct (${c.maxAtrPct})` });
    const base = intervalMs(c.baseInterval);
    const confirm = intervalMs(c.confirmInterval);
    if (base !== undefined && confirm !== undefined && (confirm <= base || confirm % base !== 0)) {
      ctx.addIssue({ code: 'custom', path: ['confirmInterval'], message: `must be a whole multiple (> 1) of baseInterval ${c.baseInterval}` });
    }
  });

export type EnhancedMacdConfig = z.infer<typeof EnhancedMacdConfigSchema>;

/** The defaults, frozen (what `npm start` trades). */
export const ENHANCED_MACD_DEFAULTS: EnhancedMacdConfig = Object.freeze(EnhancedMacdConfigSchema.parse({}));

export type FilterName = 'htf' | 'volume' | 'atr' | 'bb_width' | 'adx' | 'cooldown' | 'rounding';

/** What the strategy concluded on its latest base bar (for snapshots, logs and tests). */
export interface EnhancedMacdEvaluation {
  readonly t: number;
  readonly cross: Direction | undefined;
  /** Filters that failed on this bar (evaluated whether or not there was a cross). */
  readonly blockedBy: readonly FilterName[];
  readonly signalled: boolean;
}

export interface EnhancedMacdSnapshot {
  readonly coin: string;
  readonly bars: number;
  readonly lastT: number | undefined;
  readonly cooldownLeft: number;
  readonly macd: MacdValue | undefined;
  readonly htfMacd: MacdValue | undefined;
  readonly atr: number | undefined;
  readonly bbWidth: number | undefined;
  readonly adx: number | undefined;
  readonly volumeAvg: number | undefined;
  readonly lastEvaluation: EnhancedMacdEvaluation | undefined;
}

const fmt = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const pct = (x: number): string => `${(x * 100).toFixed(3)}%`;

export class EnhancedMacdStrategy implements Strategy {
  readonly name = ENHANCED_MACD;
  readonly intervals: readonly string[];
  readonly warmupBars: number;
  readonly config: EnhancedMacdConfig;
  readonly instrument: Instrument;
  readonly #aggregator: CandleAggregator;
  readonly #macd: Macd;
  readonly #htfMacd: Macd;
  readonly #atr: Atr;
  readonly #bb: Bollinger;
  readonly #adx: Adx;
  readonly #volume: Sma;
  #lastT: number | undefined;
  #bars = 0;
  #prevDiff: number | undefined;
  #cooldownLeft = 0;
  #evaluation: EnhancedMacdEvaluation | undefined;

  /** `config` must come from `EnhancedMacdConfigSchema` (createStrategy parses it). */
  constructor(config: EnhancedMacdConfig, instrument: Instrument) {
    this.config = config;
    this.instrument = instrument;
    this.intervals = Object.freeze([config.baseInterval]);
    const agg = CandleAggregator.create({ from: config.baseInterval, to: config.confirmInterval, coin: instrument.coin });
    if (!agg.ok) throw new Error(`enhanced-macd: invalid intervals (${agg.issue.kind}); parse the config with EnhancedMacdConfigSchema`);
    this.#aggregator = agg.aggregator;
    this.#macd = new Macd(config.macdFast, config.macdSlow, config.macdSignal);
    this.#htfMacd = new Macd(config.macdFast, config.macdSlow, config.macdSignal);
    this.#atr = new Atr(config.atrPeriod);
    this.#bb = new Bollinger(config.bbPeriod, config.bbStdDev);
    this.#adx = new Adx(config.adxPeriod);
    this.#volume = new Sma(config.volumePeriod);
    // A crossover needs two MACD outputs; the higher timeframe needs its first histogram, built
    // from whole buckets, and the first base bar may sit anywhere inside its bucket.
    const r = this.#aggregator.ratio;
    const macdBars = this.#macd.lookback + 2;
    this.warmupBars = Math.max(macdBars, 2 * config.adxPeriod, config.atrPeriod + 1, config.bbPeriod, config.volumePeriod + 1, (this.#htfMacd.lookback + 1) * r + r - 1);
  }

  onCandle(candle: Candle): Signal | undefined {
    if (!candle.closed || candle.coin !== this.instrument.coin || candle.interval !== this.config.baseInterval) return undefined;
    if (this.#lastT !== undefined && candle.t <= this.#lastT) return undefined;
    this.#lastT = candle.t;
    this.#bars++;

    for (const htf of this.#aggregator.update(candle)) this.#htfMacd.update(htf.c);
    const volumeAvg = this.#volume.value; // average of the previous bars, read before this one joins
    this.#volume.update(candle.v);
    const macd = this.#macd.update(candle.c);
    const atr = this.#atr.update(candle);
    const bb = this.#bb.update(candle.c);
    const adx = this.#adx.update(candle);

    const diff = macd === undefined ? undefined : macd.macd - macd.signal;
    const prev = this.#prevDiff;
    this.#prevDiff = diff;
    let cross: Direction | undefined;
    if (diff !== undefined && prev !== undefined) {
      if (prev <= 0 && diff > 0) cross = 'long';
      else if (prev >= 0 && diff < 0) cross = 'short';
    }

    const c = this.config;
    const blocked: FilterName[] = [];
    const hist = this.#htfMacd.value?.histogram;
    if (hist === undefined || (cross !== undefined && !(cross === 'long' ? hist > 0 : hist < 0))) blocked.push('htf');
    if (volumeAvg === undefined || !(candle.v >= c.volumeMult * volumeAvg)) blocked.push('volume');
    const atrPct = atr === undefined ? undefined : atr / candle.c;
    if (atrPct === undefined || !(atrPct >= c.minAtrPct && atrPct <= c.maxAtrPct)) blocked.push('atr');
    if (bb === undefined || !(bb.width >= c.minBbWidth)) blocked.push('bb_width');
    if (adx === undefined || !(adx >= c.minAdx)) blocked.push('adx');
    if (this.#cooldownLeft > 0) {
      blocked.push('cooldown');
      this.#cooldownLeft--;
    }

    let signal: Signal | undefined;
    if (cross !== undefined && blocked.length === 0) {
      const reason = `MACD ${c.baseInterval} ${cross === 'long' ? 'bullish' : 'bearish'} cross (${fmt(macd!.macd, 4)} vs signal ${fmt(macd!.signal, 4)}); ` +
        `${c.confirmInterval} histogram ${fmt(hist!, 4)}; volume ${fmt(candle.v / volumeAvg!)}× avg ≥ ${c.volumeMult}; ` +
        `ATR ${pct(atrPct!)} in [${pct(c.minAtrPct)}, ${pct(c.maxAtrPct)}]; BB width ${pct(bb!.width)} ≥ ${pct(c.minBbWidth)}; ADX ${fmt(adx!, 1)} ≥ ${c.minAdx}`;
      signal = this.#buildSignal(cross, candle, atr!, reason);
      if (signal === undefined) blocked.push('rounding');
      else this.#cooldownLeft = c.cooldownBars;
    }
    this.#evaluation = Object.freeze({ t: candle.t, cross, blockedBy: Object.freeze(blocked), signalled: signal !== undefined });
    return signal;
  }

  #buildSignal(direction: Direction, candle: Candle, atr: number, reason: string): Signal | undefined {
    const sz = this.instrument.szDecimals;
    const refPx = roundPrice(new Decimal(candle.c), sz, 'nearest');
    const atrStop = new Decimal(atr).times(this.config.atrStopMult);
    const floor = refPx.times(this.config.minStopPct);
    const stopDist = atrStop.gte(floor) ? atrStop : floor;
    const tpDist = stopDist.times(this.config.atrTpMult).div(this.config.atrStopMult);
    // Long: stop below rounds down (away), TP above rounds down (toward); short mirrors with 'up'.
    const mode = direction === 'long' ? 'down' : 'up';
    const stopPx = roundPrice(direction === 'long' ? refPx.minus(stopDist) : refPx.plus(stopDist), sz, mode);
    const takeProfitPx = roundPrice(direction === 'long' ? refPx.plus(tpDist) : refPx.minus(tpDist), sz, mode);
    const ok = direction === 'long' ? stopPx.gt(0) && stopPx.lt(refPx) && takeProfitPx.gt(refPx) : stopPx.gt(refPx) && takeProfitPx.lt(refPx) && takeProfitPx.gt(0);
    if (!ok) return undefined;
    return Object.freeze({ coin: this.instrument.coin, direction, refPx, stopPx, takeProfitPx, time: candle.T, strategy: this.name, reason });
  }

  snapshot(): EnhancedMacdSnapshot {
    return {
      coin: this.instrument.coin,
      bars: this.#bars,
      lastT: this.#lastT,
      cooldownLeft: this.#cooldownLeft,
      macd: this.#macd.value,
      htfMacd: this.#htfMacd.value,
      atr: this.#atr.value,
      bbWidth: this.#bb.value?.width,
      adx: this.#adx.value,
      volumeAvg: this.#volume.value,
      lastEvaluation: this.#evaluation,
    };
  }
}

export const enhancedMacdFactory: StrategyFactory<EnhancedMacdConfig> = {
  name: ENHANCED_MACD,
  description: 'MACD crossover confirmed on a higher timeframe, with volume, ATR, Bollinger-width and ADX filters; ATR-based stop and take profit',
  configSchema: EnhancedMacdConfigSchema,
  create: (config, instrument) => new EnhancedMacdStrategy(config, instrument),
};
