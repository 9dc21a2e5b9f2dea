/**
 * Exchange-side protection of a filled entry: the reduce-only stop-loss and the two-step take
 * profit, the break-even move after TP1, the trailing stop, and the "is this position protected"
 * invariant the chaos tests check.
 *
 * Invariants (property-tested):
 * - the stop is strictly on the losing side of the entry (below it for a long, above for a short)
 *   and covers the full position; the take-profit sizes sum to the position exactly;
 * - every price is a valid tick (src/domain/decimal.ts) and every size a valid lot;
 * - a stop is only ever moved in the favourable direction (break-even and trailing never loosen);
 * - protection never lapses: a replacement plan places the new stop BEFORE cancelling the old.
 *
 * Pure: no I/O, no clock (times come in as arguments); intents carry no cloid (the manager
 * allocates one and commits the intent before sending).
 */
import { Decimal, isValidPrice, maxDec, minDec, roundPrice, roundSize, ZERO } from './decimal.ts';
import { closingSide } from './types.ts';
import type { Cloid, Coin, Direction, Instrument, OrderIntent, OrderKind, Side } from './types.ts';

export interface ProtectionConfig {
  /** Worst price a triggered market order may take, as a fraction of the trigger (0.05 = 5 %). */
  readonly slippageFrac: Decimal;
  /** The venue's minimum order value (Hyperliquid: $10). */
  readonly minNotional: Decimal;
}

export const DEFAULT_PROTECTION_CONFIG: ProtectionConfig = Object.freeze({
  slippageFrac: new Decimal('0.05'),
  minNotional: new Decimal(10),
});

/** An order intent before the manager gives it a cloid. */
export type ProtectiveIntent = Omit<OrderIntent, 'cloid'>;

export interface FilledEntry {
  readonly instrument: Instrument;
  readonly direction: Direction;
  readonly filledSz: Decimal;
  readonly avgEntryPx: Decimal;
  /** The signal's stop and target. */
  readonly stopPx: Decimal;
  readonly takeProfitPx: Decimal;
  readonly entryCloid?: Cloid;
  /** Becomes the intents' `createdAt` (from the injected clock). */
  readonly time: number;
}

export interface ProtectionPlan {
  readonly stopLoss: ProtectiveIntent;
  /** `[tp1, tp2]` (half at 1R, the rest at the target) or `[tp]` for the whole size. */
  readonly takeProfits: readonly ProtectiveIntent[];
  /** 1R: |entry − stop trigger|. */
  readonly risk: Decimal;
}

export type ProtectionRefusal = 'stop_side' | 'take_profit_side' | 'size' | 'rounding';
export type ProtectionResult = { readonly ok: true; readonly plan: ProtectionPlan } | { readonly ok: false; readonly reason: ProtectionRefusal; readonly detail: string };

/** One step of a protection change; the steps are executed in order. */
export type ProtectionStep = { readonly kind: 'place'; readonly intent: ProtectiveIntent } | { readonly kind: 'cancel'; readonly cloid: Cloid };

export interface StopReplacement {
  readonly triggerPx: Decimal;
  /** Place the new stop, then cancel the old one: the position is never without a stop. */
  readonly steps: readonly ProtectionStep[];
}

const sign = (direction: Direction): 1 | -1 => (direction === 'long' ? 1 : -1);

/** True when `px` is on the losing side of `ref` for the direction (below for a long). */
function losingSide(direction: Direction, px: Decimal, ref: Decimal): boolean {
  return direction === 'long' ? px.lt(ref) : px.gt(ref);
}

/** The worst fill a triggered market order accepts: below the trigger for a sell, above for a buy. */
export function slippageLimit(side: Side, triggerPx: Decimal, instrument: Instrument, config: ProtectionConfig = DEFAULT_PROTECTION_CONFIG): Decimal {
  const raw = side === 'sell' ? triggerPx.times(Decimal.sub(1, config.slippageFrac)) : triggerPx.times(Decimal.add(1, config.slippageFrac));
  return roundPrice(raw, instrument.szDecimals, side === 'sell' ? 'down' : 'up');
}

function triggerIntent(
  instrument: Instrument,
  direction: Direction,
  sz: Decimal,
  triggerPx: Decimal,
  tpsl: 'tp' | 'sl',
  kind: OrderKind,
  time: number,
  parentCloid: Cloid | undefined,
  config: ProtectionConfig,
): ProtectiveIntent {
  const side = closingSide(direction);
  return {
    coin: instrument.coin,
    assetId: instrument.assetId,
    side,
    sz,
    px: slippageLimit(side, triggerPx, instrument, config),
    reduceOnly: true,
    tif: 'Gtc',
    trigger: { triggerPx, tpsl, isMarket: true },
    kind,
    ...(parentCloid !== undefined ? { parentCloid } : {}),
    createdAt: time,
  };
}

/** A reduce-only stop-market for `sz` at `triggerPx` (already a valid tick). */
export function stopIntent(instrument: Instrument, direction: Direction, sz: Decimal, triggerPx: Decimal, time: number, parentCloid?: Cloid, config: ProtectionConfig = DEFAULT_PROTECTION_CONFIG): ProtectiveIntent {
  return triggerIntent(instrument, direction, sz, triggerPx, 'sl', 'stop_loss', time, parentCloid, config);
}

/**
 * The protective orders for a filled entry.
 *
 * @example
 * planProtection({ instrument: BTC, direction: 'long', filledSz: dec('0.1'), avgEntryPx: dec('65000'),
 *   stopPx: dec('64000'), takeProfitPx: dec('67000'), time }) // SL 0.1 @64000, TP1 0.05 @66000, TP2 0.05 @67000
 */
export function planProtection(entry: FilledEntry, config: ProtectionConfig = DEFAULT_PROTECTION_CONFIG): ProtectionResult {
  const { instrument, direction, filledSz: sz, avgEntryPx: px } = entry;
  const szd = instrument.szDecimals;
  if (sz.lte(0) || roundSize(sz, szd).lt(sz)) return { ok: false, reason: 'size', detail: `filled size ${sz.toFixed()} is not a positive lot` };
  if (!losingSide(direction, entry.stopPx, px)) return { ok: false, reason: 'stop_side', detail: `stop ${entry.stopPx.toFixed()} is not on the losing side of ${px.toFixed()}` };
  if (losingSide(direction, entry.takeProfitPx, px) || entry.takeProfitPx.eq(px)) {
    return { ok: false, reason: 'take_profit_side', detail: `target ${entry.takeProfitPx.toFixed()} is not on the winning side of ${px.toFixed()}` };
  }
  // Round toward the entry: a stop a tick tighter and a target a tick nearer, never the other way.
  const stopTrigger = roundPrice(entry.stopPx, szd, direction === 'long' ? 'up' : 'down');
  const target = roundPrice(entry.takeProfitPx, szd, direction === 'long' ? 'down' : 'up');
  if (!losingSide(direction, stopTrigger, px)) return { ok: false, reason: 'rounding', detail: `stop ${entry.stopPx.toFixed()} rounds onto the entry` };
  if (!losingSide(direction, px, target)) return { ok: false, reason: 'rounding', detail: `target ${entry.takeProfitPx.toFixed()} rounds onto the entry` };

  const risk = px.minus(stopTrigger).abs();
  const stopLoss = stopIntent(instrument, direction, sz, stopTrigger, entry.time, entry.entryCloid, config);
  const single = [triggerIntent(instrument, direction, sz, target, 'tp', 'take_profit', entry.time, entry.entryCloid, config)];

  const tp1Px = roundPrice(px.plus(risk.times(sign(direction))), szd, direction === 'long' ? 'down' : 'up');
  const half = roundSize(sz.div(2), szd, 'down');
  const rest = sz.minus(half);
  const twoSteps =
    half.gt(0) &&
    losingSide(direction, px, tp1Px) && // TP1 strictly beyond the entry …
    losingSide(direction, tp1Px, target) && // … and strictly before the target
    half.times(tp1Px).gte(config.minNotional) &&
    rest.times(target).gte(config.minNotional);
  const takeProfits = twoSteps
    ? [
        triggerIntent(instrument, direction, half, tp1Px, 'tp', 'take_profit_1', entry.time, entry.entryCloid, config),
        triggerIntent(instrument, direction, rest, target, 'tp', 'take_profit', entry.time, entry.entryCloid, config),
      ]
    : single;
  return { ok: true, plan: { stopLoss, takeProfits, risk } };
}

export interface ProtectedPosition {
  readonly instrument: Instrument;
  readonly direction: Direction;
  /** The size still open (positive). */
  readonly sz: Decimal;
  readonly entryPx: Decimal;
  readonly entryCloid?: Cloid;
}

export interface CurrentStop {
  readonly cloid: Cloid;
  readonly triggerPx: Decimal;
}

/** The tighter of two stops for the direction (higher for a long, lower for a short). */
export function tighterStop(direction: Direction, a: Decimal, b: Decimal): Decimal {
  return direction === 'long' ? maxDec(a, b) : minDec(a, b);
}

function replacement(position: ProtectedPosition, current: CurrentStop, triggerPx: Decimal, time: number, config: ProtectionConfig): StopReplacement {
  const steps: ProtectionStep[] = [];
  if (position.sz.gt(0)) steps.push({ kind: 'place', intent: stopIntent(position.instrument, position.direction, position.sz, triggerPx, time, position.entryCloid, config) });
  steps.push({ kind: 'cancel', cloid: current.cloid });
  return { triggerPx, steps };
}

/**
 * After TP1 filled: the stop moves to break-even (the entry, rounded to a tick on the profitable
 * side) for the remaining size, unless the current stop is already tighter. `position.sz` is the
 * remaining size; when it is zero the plan only cancels the old stop.
 */
export function onTp1Filled(position: ProtectedPosition, current: CurrentStop, time: number, config: ProtectionConfig = DEFAULT_PROTECTION_CONFIG): StopReplacement {
  const breakEven = roundPrice(position.entryPx, position.instrument.szDecimals, position.direction === 'long' ? 'up' : 'down');
  return replacement(position, current, tighterStop(position.direction, current.triggerPx, breakEven), time, config);
}

export type TrailRule = { readonly kind: 'pct'; readonly pct: Decimal } | { readonly kind: 'atr'; readonly atr: Decimal; readonly multiple: Decimal };

/**
 * The trailing stop: `markPx` minus (long) / plus (short) the trail distance, rounded away from
 * the mark. Returns a replacement only when it is strictly tighter than the current stop.
 */
export function trailStop(position: ProtectedPosition, current: CurrentStop, markPx: Decimal, rule: TrailRule, time: number, config: ProtectionConfig = DEFAULT_PROTECTION_CONFIG): StopReplacement | undefined {
  const distance = rule.kind === 'pct' ? markPx.times(rule.pct) : rule.atr.times(rule.multiple);
  if (distance.lte(0) || position.sz.lte(0)) return undefined;
  const raw = position.direction === 'long' ? markPx.minus(distance) : markPx.plus(distance);
  if (raw.lte(0)) return undefined;
  const candidate = roundPrice(raw, position.instrument.szDecimals, position.direction === 'long' ? 'down' : 'up');
  if (!isValidPrice(candidate, position.instrument.szDecimals) || !losingSide(position.direction, candidate, markPx)) return undefined;
  if (!losingSide(position.direction, current.triggerPx, candidate)) return undefined;
  return replacement(position, current, candidate, time, config);
}

/** What `isProtected` needs of an open order; `VenueOrder` and `OrderIntent` both fit. */
export interface ProtectiveOrderView {
  readonly coin: Coin;
  readonly side: Side;
  readonly sz: Decimal;
  readonly reduceOnly: boolean;
  readonly isTrigger?: boolean;
  readonly triggerPx?: Decimal;
  readonly tpsl?: 'tp' | 'sl';
  readonly trigger?: { readonly triggerPx: Decimal; readonly tpsl: 'tp' | 'sl' };
}

/**
 * True when a flat position, or when reduce-only stops on the closing side cover the full size.
 * An order that does not say whether it is a stop (venue open orders do not) counts as one when
 * its trigger is on the losing side of `markPx` (or at it); without `markPx` it does not count.
 */
export function isProtected(position: { readonly coin: Coin; readonly szi: Decimal }, openOrders: readonly ProtectiveOrderView[], markPx?: Decimal): boolean {
  if (position.szi.isZero()) return true;
  const direction: Direction = position.szi.gt(0) ? 'long' : 'short';
  const side = closingSide(direction);
  let covered = ZERO;
  for (const o of openOrders) {
    if (o.coin !== position.coin || o.side !== side || !o.reduceOnly) continue;
    const triggerPx = o.trigger?.triggerPx ?? o.triggerPx;
    const tpsl = o.trigger?.tpsl ?? o.tpsl;
    if (triggerPx === undefined || (o.trigger === undefined && o.isTrigger === false)) continue;
    const isStop = tpsl !== undefined ? tpsl === 'sl' : markPx !== undefined && !losingSide(direction, markPx, triggerPx);
    if (isStop) covered = covered.plus(o.sz);
  }
  return covered.gte(position.szi.abs());
}
