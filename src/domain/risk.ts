/**
 * Pre-trade risk: turns a strategy `Signal` plus a plain snapshot of the account into either a
 * sized, tick/lot-rounded `ProposedOrder` or a denial carrying one `DenialReason`. Pure: no I/O,
 * no clock (time comes in `ctx.now`), same inputs → same verdict.
 *
 * Invariants of an approved order (property-tested in tests/property/risk-limits.test.ts):
 * - `sz` is a positive multiple of the lot, rounded DOWN; `px`, `stopPx`, `takeProfitPx` are valid
 *   venue prices, each rounded in the direction that is unfavourable for us (entry: buy up / sell
 *   down; stop: away from the entry; take profit: toward the entry), and every limit below is
 *   checked on those rounded values, so rounding can only make the order safer than its checks.
 * - risk: |px − stopPx| × sz ≤ equity × riskPct × sizeMultiplier (no tolerance);
 * - the stop is strictly beyond both the mark and the entry on the losing side; the signal's
 *   reference price and the entry price are both within maxPriceDeviationPct of the mark;
 * - reward:risk ≥ minRewardRisk; notional ≥ minNotionalUsd and ≤ the per-market cap;
 * - (open exposure + working entries + this) ÷ equity ≤ max leverage for the market class and the
 *   instrument; (margin used + notional ÷ leverage) ÷ equity ≤ maxMarginUsage;
 * - fewer than maxOpenPositions markets are in use before this one; no second order or position
 *   on the same coin; never approved while the gate is `halted` or `reducing`.
 *
 * Units: every `*Pct` config field is a percentage (0.5 = 0.5 %); `maxMarginUsage` is a fraction.
 * Check order is fixed (it decides which reason a multiply-bad signal reports): gate → input →
 * daily loss → order rate → stacking → max positions → mark → fat finger → stop side →
 * reward:risk → sizing / rounding → position size → min notional → leverage → margin usage.
 */
import { z } from 'zod';
import { Decimal, isValidPrice, minDec, roundPrice, roundSize } from './decimal.ts';
import type { Coin, DenialReason, Direction, Instrument, Mode, Side, Signal, TradingGate } from './types.ts';
import { sideOf } from './types.ts';

/** Orders counted by the runaway guard are those sent in the last minute. */
export const ORDER_RATE_WINDOW_MS = 60_000;
const DAY_MS = 86_400_000;

const pct = (max: number, dflt: number) => z.number().positive().max(max).default(dflt);

/**
 * Risk limits. A strict object: an unknown key is an error (a typo must not silently fall back to a
 * default). Parse with `parseRiskConfig` for a value-style result naming the bad key.
 */
export const RiskConfigSchema = z
  .strictObject({
    /** Equity risked per trade, in % (fixed fractional sizing). */
    riskPct: pct(5, 0.5),
    minRewardRisk: z.number().nonnegative().max(20).default(1.5),
    maxOpenPositions: z.number().int().positive().max(100).default(3),
    /** Fraction of equity that may be tied up as margin, this order included. */
    maxMarginUsage: z.number().positive().max(1).default(0.5),
    /** Today's PnL (realized + unrealized) at or below −this % of start-of-day equity stops entries. */
    dailyLossLimitPct: pct(100, 3),
    /** Orders of any kind sent in the last 60 s; entries must also leave `protectiveOrderReserve` room. */
    maxOrdersPerMinute: z.number().int().positive().max(1000).default(20),
    /** Room an entry keeps for the protective orders that follow its fill (stop, two take profits). */
    protectiveOrderReserve: z.number().int().nonnegative().max(100).default(3),
    /** Signal reference price vs mark, in %: beyond this the signal is stale or the price is wrong. */
    maxPriceDeviationPct: pct(50, 2),
    /** Entry limit = mark ± this %, so a marketable limit fills without chasing the book. */
    entrySlippagePct: z.number().nonnegative().max(10).default(0.1),
    maxLeverageMajor: z.number().int().positive().max(100).default(5),
    maxLeverageOther: z.number().int().positive().max(100).default(3),
    /** Per-market notional cap, USD; the effective cap is the lower of this and the % of equity. */
    maxNotionalMajor: z.number().positive().default(100_000),
    maxNotionalOther: z.number().positive().default(25_000),
    maxNotionalPctOfEquityMajor: z.number().positive().max(10_000).default(200),
    maxNotionalPctOfEquityOther: z.number().positive().max(10_000).default(100),
    /**
     * Over the notional cap: shrink the size to the cap (true) or deny with `position_size` (false).
     * Default true: stops from short-timeframe ATR are tight, so fixed-fractional sizing often
     * exceeds the cap; the capped order risks strictly less than the budget, which is always safe.
     */
    capInsteadOfDeny: z.boolean().default(true),
    /** Hyperliquid refuses orders under $10 notional. */
    minNotionalUsd: z.number().nonnegative().default(10),
    /** Size multiplier in Degraded mode (architecture.md: sizes halved). */
    degradedSizeMultiplier: z.number().min(0).max(1).default(0.5),
  })
  .refine((c) => c.entrySlippagePct < c.maxPriceDeviationPct, {
    message: 'entrySlippagePct must be below maxPriceDeviationPct',
    path: ['entrySlippagePct'],
  });

export type RiskConfig = z.infer<typeof RiskConfigSchema>;
export type RiskConfigInput = z.input<typeof RiskConfigSchema>;

export const DEFAULT_RISK_CONFIG: RiskConfig = Object.freeze(RiskConfigSchema.parse({}));

export function parseRiskConfig(input: unknown): { ok: true; config: RiskConfig } | { ok: false; error: string } {
  const r = RiskConfigSchema.safeParse(input ?? {});
  if (r.success) return { ok: true, config: r.data };
  const error = r.error.issues.map((i) => `risk.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  return { ok: false, error };
}

/** An open position as risk sees it: signed size (+ long, − short), entry, absolute notional (USD). */
export interface RiskPosition {
  readonly coin: Coin;
  readonly szi: Decimal;
  readonly entryPx: Decimal;
  readonly notional: Decimal;
}

/** Working (unfilled) entry orders of one coin and side, with their total notional (USD). */
export interface WorkingEntries {
  readonly coin: Coin;
  readonly side: Side;
  readonly count: number;
  readonly notional: Decimal;
}

/** A plain snapshot of everything a pre-trade decision needs; the caller assembles it. */
export interface RiskContext {
  readonly gate: TradingGate;
  readonly instrument: Instrument;
  readonly markPx: Decimal | undefined;
  readonly equity: Decimal;
  /** Equity at the start of the UTC day: the base of the daily loss limit. */
  readonly dayStartEquity: Decimal;
  readonly marginUsed: Decimal;
  readonly positions: readonly RiskPosition[];
  readonly workingEntries: readonly WorkingEntries[];
  /** Realized + unrealized PnL since the start of the UTC day (fees included). */
  readonly pnlToday: Decimal;
  /** Send times (ms) of recent orders of any kind; older than the window are ignored. */
  readonly recentOrderTimes: readonly number[];
  readonly now: number;
  /** 1 in Normal, `degradedSizeMultiplier` in Degraded (see `sizeMultiplierFor`). */
  readonly sizeMultiplier: number;
}

export interface ProposedOrder {
  readonly coin: Coin;
  readonly assetId: number;
  readonly direction: Direction;
  readonly side: Side;
  /** Lot-rounded down. */
  readonly sz: Decimal;
  /** Entry limit price: mark ± entrySlippage, tick-rounded against us (buy up, sell down). */
  readonly px: Decimal;
  /** Tick-rounded away from the entry. */
  readonly stopPx: Decimal;
  /** Tick-rounded toward the entry. */
  readonly takeProfitPx: Decimal;
  /** Leverage to set on the venue for this coin (integer). */
  readonly leverage: number;
  /** sz × px, USD. */
  readonly notional: Decimal;
  /** notional ÷ leverage, USD. */
  readonly margin: Decimal;
  /** |px − stopPx| × sz, USD: what the stop loses (before fees and slippage past the trigger). */
  readonly riskUsd: Decimal;
  /** True when the size was shrunk to the notional cap. */
  readonly capped: boolean;
}

export type RiskVerdict =
  | { readonly approved: true; readonly order: ProposedOrder; readonly checks: readonly string[] }
  | { readonly approved: false; readonly reason: DenialReason; readonly detail: string };

export type RateCheck =
  | { readonly ok: true; readonly count: number }
  | { readonly ok: false; readonly reason: 'order_rate'; readonly count: number; readonly detail: string };

export type PriceCheck = { readonly ok: true } | { readonly ok: false; readonly reason: 'fat_finger' | 'no_mark'; readonly detail: string };

function deny(reason: DenialReason, detail: string): RiskVerdict {
  return { approved: false, reason, detail };
}

const HUNDRED = new Decimal(100);
const fromPct = (p: number): Decimal => new Decimal(p).div(HUNDRED);
const fmt = (d: Decimal, dp = 6): string => d.toDecimalPlaces(dp).toFixed();

/** Orders sent within the last `ORDER_RATE_WINDOW_MS` (future-dated ones count: clock skew must not open the guard). */
export function ordersInWindow(times: readonly number[], now: number): number {
  const from = now - ORDER_RATE_WINDOW_MS;
  let n = 0;
  for (const t of times) if (t > from) n++;
  return n;
}

/**
 * The runaway guard for any order. Protective and exit orders call it with `reserve` 0; entries
 * go through `evaluateSignal`, which keeps `protectiveOrderReserve` free for their protection.
 */
export function checkOrderRate(times: readonly number[], now: number, cfg: Pick<RiskConfig, 'maxOrdersPerMinute'>, reserve = 0): RateCheck {
  const count = ordersInWindow(times, now);
  const allowed = cfg.maxOrdersPerMinute - reserve;
  if (count >= allowed) {
    return { ok: false, reason: 'order_rate', count, detail: `${count} orders in the last 60 s; limit ${cfg.maxOrdersPerMinute}${reserve > 0 ? ` with ${reserve} kept for protection` : ''}` };
  }
  return { ok: true, count };
}

/** Price sanity for any order: |px − mark| ÷ mark ≤ maxPct %. Exits use it too. */
export function checkPriceDeviation(px: Decimal, mark: Decimal | undefined, maxPct: number): PriceCheck {
  if (mark === undefined || !mark.isFinite() || mark.lte(0)) return { ok: false, reason: 'no_mark', detail: 'no valid mark price' };
  const dev = px.minus(mark).abs().div(mark);
  if (!px.isFinite() || px.lte(0) || dev.gt(fromPct(maxPct))) {
    return { ok: false, reason: 'fat_finger', detail: `price ${fmt(px)} is ${fmt(dev.times(HUNDRED), 3)} % from mark ${fmt(mark)}; limit ${maxPct} %` };
  }
  return { ok: true };
}

/** Size multiplier per operating mode: full, reduced in Degraded, none where entries stop. */
export function sizeMultiplierFor(mode: Mode, cfg: Pick<RiskConfig, 'degradedSizeMultiplier'> = DEFAULT_RISK_CONFIG): number {
  switch (mode) {
    case 'Normal':
      return 1;
    case 'Degraded':
      return cfg.degradedSizeMultiplier;
    case 'Critical':
    case 'Emergency':
      return 0;
  }
}

/** The next UTC midnight strictly after `t` (ms): when the daily loss limit resets. */
export function nextUtcMidnight(t: number): number {
  return (Math.floor(t / DAY_MS) + 1) * DAY_MS;
}

export function utcDayStart(t: number): number {
  return Math.floor(t / DAY_MS) * DAY_MS;
}

/** Per-market limits for the instrument's class, the venue's own max leverage included. */
export function marketLimits(instrument: Instrument, equity: Decimal, cfg: RiskConfig): { maxLeverage: number; notionalCap: Decimal } {
  const major = instrument.isMajor;
  const maxLeverage = Math.max(1, Math.floor(Math.min(major ? cfg.maxLeverageMajor : cfg.maxLeverageOther, instrument.maxLeverage)));
  const usdCap = new Decimal(major ? cfg.maxNotionalMajor : cfg.maxNotionalOther);
  const equityCap = equity.times(fromPct(major ? cfg.maxNotionalPctOfEquityMajor : cfg.maxNotionalPctOfEquityOther));
  return { maxLeverage, notionalCap: minDec(usdCap, equityCap) };
}

const finitePos = (d: Decimal): boolean => d.isFinite() && d.gt(0);

function invalidInput(signal: Signal, ctx: RiskContext): string | undefined {
  const inst = ctx.instrument;
  if (signal.coin !== inst.coin) return `signal for ${signal.coin} evaluated against instrument ${inst.coin}`;
  if (!Number.isInteger(inst.szDecimals) || inst.szDecimals < 0 || inst.szDecimals > 6) return `bad szDecimals ${inst.szDecimals}`;
  if (!(inst.maxLeverage >= 1)) return `bad instrument maxLeverage ${inst.maxLeverage}`;
  if (!finitePos(signal.refPx) || !finitePos(signal.stopPx) || !finitePos(signal.takeProfitPx)) return 'signal prices must be positive and finite';
  if (!finitePos(ctx.equity)) return `equity ${ctx.equity.toString()} is not positive`;
  if (!finitePos(ctx.dayStartEquity)) return `start-of-day equity ${ctx.dayStartEquity.toString()} is not positive`;
  if (!ctx.marginUsed.isFinite() || ctx.marginUsed.lt(0)) return 'margin used must be finite and non-negative';
  if (!ctx.pnlToday.isFinite()) return 'daily PnL must be finite';
  if (!Number.isFinite(ctx.sizeMultiplier) || ctx.sizeMultiplier < 0 || ctx.sizeMultiplier > 1) return `size multiplier ${ctx.sizeMultiplier} outside [0, 1]`;
  for (const p of ctx.positions) if (!p.szi.isFinite() || !p.notional.isFinite() || p.notional.lt(0)) return `bad position for ${p.coin}`;
  for (const w of ctx.workingEntries) if (!Number.isInteger(w.count) || w.count < 0 || !w.notional.isFinite() || w.notional.lt(0)) return `bad working entries for ${w.coin}`;
  return undefined;
}

/** Coins holding exposure or a claim on it: open positions plus coins with working entries. */
function marketsInUse(ctx: RiskContext): Set<Coin> {
  const s = new Set<Coin>();
  for (const p of ctx.positions) if (!p.szi.isZero()) s.add(p.coin);
  for (const w of ctx.workingEntries) if (w.count > 0) s.add(w.coin);
  return s;
}

/**
 * Evaluates one entry signal. Never throws for bad data: malformed input is denied as `invalid`.
 *
 * @example
 * const v = evaluateSignal(signal, ctx, DEFAULT_RISK_CONFIG);
 * if (v.approved) orderManager.submitEntry(v.order); else log.info({ reason: v.reason }, v.detail);
 */
export function evaluateSignal(signal: Signal, ctx: RiskContext, cfg: RiskConfig): RiskVerdict {
  const checks: string[] = [];
  const coin = signal.coin;
  const long = signal.direction === 'long';
  const side = sideOf(signal.direction);

  if (ctx.gate === 'halted') return deny('gate_halted', 'trading gate is halted');
  if (ctx.gate === 'reducing') return deny('gate_reducing', 'trading gate is reducing: exits only, no new entries');
  checks.push('gate');

  const bad = invalidInput(signal, ctx);
  if (bad !== undefined) return deny('invalid', bad);
  checks.push('input');

  const lossLimit = ctx.dayStartEquity.times(fromPct(cfg.dailyLossLimitPct));
  if (ctx.pnlToday.lte(lossLimit.neg())) {
    return deny('daily_loss', `today's PnL ${fmt(ctx.pnlToday, 2)} reached the daily loss limit −${fmt(lossLimit, 2)} (${cfg.dailyLossLimitPct} % of ${fmt(ctx.dayStartEquity, 2)})`);
  }
  checks.push('daily_loss');

  const rate = checkOrderRate(ctx.recentOrderTimes, ctx.now, cfg, cfg.protectiveOrderReserve);
  if (!rate.ok) return deny('order_rate', rate.detail);
  checks.push('order_rate');

  // One position per coin: a same-side entry would stack, an opposite one would net against the
  // open position and leave its protective orders wrong. Reversals are the order manager's job.
  const pos = ctx.positions.find((p) => p.coin === coin && !p.szi.isZero());
  if (pos !== undefined) {
    const same = pos.szi.gt(0) === long;
    return deny('stacking', same ? `a ${signal.direction} position on ${coin} is already open` : `an opposite position on ${coin} is open; close it before entering`);
  }
  const working = ctx.workingEntries.find((w) => w.coin === coin && w.count > 0);
  if (working !== undefined) return deny('stacking', `${working.count} working ${working.side} entry order(s) on ${coin}`);
  checks.push('stacking');

  const inUse = marketsInUse(ctx);
  if (inUse.size >= cfg.maxOpenPositions) return deny('max_positions', `${inUse.size} markets in use (positions and working entries); limit ${cfg.maxOpenPositions}`);
  checks.push('max_positions');

  const mark = ctx.markPx;
  if (mark === undefined || !finitePos(mark)) return deny('no_mark', `no valid mark price for ${coin}`);
  checks.push('mark');

  const sanity = checkPriceDeviation(signal.refPx, mark, cfg.maxPriceDeviationPct);
  if (!sanity.ok) return deny(sanity.reason, `signal ${sanity.detail}`);

  const szDec = ctx.instrument.szDecimals;
  const slip = fromPct(cfg.entrySlippagePct);
  const px = long ? roundPrice(mark.times(slip.plus(1)), szDec, 'up') : roundPrice(mark.times(new Decimal(1).minus(slip)), szDec, 'down');
  const stopPx = roundPrice(signal.stopPx, szDec, long ? 'down' : 'up');
  const takeProfitPx = roundPrice(signal.takeProfitPx, szDec, long ? 'down' : 'up');
  if (px.lte(0) || stopPx.lte(0) || takeProfitPx.lte(0)) return deny('rounding', `a price rounds to zero at ${szDec} size decimals`);
  // The order's own price must pass the same sanity bound as the signal's, rounding included.
  const entrySanity = checkPriceDeviation(px, mark, cfg.maxPriceDeviationPct);
  if (!entrySanity.ok) return deny(entrySanity.reason, `entry ${entrySanity.detail}`);
  checks.push('fat_finger');

  const stopOk = long ? stopPx.lt(px) && stopPx.lt(mark) : stopPx.gt(px) && stopPx.gt(mark);
  if (!stopOk) return deny('stop_side', `${signal.direction} stop ${fmt(stopPx)} must be ${long ? 'below' : 'above'} entry ${fmt(px)} and mark ${fmt(mark)}`);
  checks.push('stop_side');

  const riskPerUnit = px.minus(stopPx).abs();
  const rewardPerUnit = long ? takeProfitPx.minus(px) : px.minus(takeProfitPx);
  const rr = rewardPerUnit.div(riskPerUnit);
  if (rr.lt(cfg.minRewardRisk)) return deny('reward_risk', `reward:risk ${fmt(rr, 3)} below ${cfg.minRewardRisk} (entry ${fmt(px)}, stop ${fmt(stopPx)}, target ${fmt(takeProfitPx)})`);
  checks.push('reward_risk');

  const budget = ctx.equity.times(fromPct(cfg.riskPct)).times(ctx.sizeMultiplier);
  let sz = roundSize(budget.div(riskPerUnit), szDec, 'down');
  if (sz.lte(0)) return deny('rounding', `risk budget ${fmt(budget, 2)} USD over stop distance ${fmt(riskPerUnit)} is below one lot (${szDec} decimals)`);
  checks.push('sizing');

  const { maxLeverage, notionalCap } = marketLimits(ctx.instrument, ctx.equity, cfg);
  let capped = false;
  if (sz.times(px).gt(notionalCap)) {
    if (!cfg.capInsteadOfDeny) return deny('position_size', `notional ${fmt(sz.times(px), 2)} above the ${coin} cap ${fmt(notionalCap, 2)}`);
    sz = roundSize(notionalCap.div(px), szDec, 'down');
    capped = true;
    if (sz.lte(0)) return deny('rounding', `the ${coin} cap ${fmt(notionalCap, 2)} is below one lot at ${fmt(px)}`);
  }
  checks.push(capped ? 'position_size:capped' : 'position_size');

  const notional = sz.times(px);
  if (notional.lt(cfg.minNotionalUsd)) return deny('min_notional', `notional ${fmt(notional, 2)} below the venue minimum ${cfg.minNotionalUsd}`);
  checks.push('min_notional');

  let exposure = notional;
  for (const p of ctx.positions) exposure = exposure.plus(p.notional);
  for (const w of ctx.workingEntries) exposure = exposure.plus(w.notional);
  const impliedLeverage = exposure.div(ctx.equity);
  if (impliedLeverage.gt(maxLeverage)) return deny('leverage', `total exposure ${fmt(exposure, 2)} is ${fmt(impliedLeverage, 2)}× equity; limit ${maxLeverage}×`);
  checks.push('leverage');

  const margin = notional.div(maxLeverage);
  const usage = ctx.marginUsed.plus(margin).div(ctx.equity);
  if (usage.gt(cfg.maxMarginUsage)) return deny('margin_usage', `margin usage would be ${fmt(usage.times(HUNDRED), 2)} %; limit ${fmt(new Decimal(cfg.maxMarginUsage).times(HUNDRED), 2)} %`);
  checks.push('margin_usage');

  const order: ProposedOrder = {
    coin,
    assetId: ctx.instrument.assetId,
    direction: signal.direction,
    side,
    sz,
    px,
    stopPx,
    takeProfitPx,
    leverage: maxLeverage,
    notional,
    margin,
    riskUsd: riskPerUnit.times(sz),
    capped,
  };
  return { approved: true, order, checks };
}

/** True when `px` is a valid venue price for the instrument (re-exported for callers' assertions). */
export function isOnTick(px: Decimal, instrument: Instrument): boolean {
  return isValidPrice(px, instrument.szDecimals);
}
