/**
 * keel's domain vocabulary: the validated values that flow between the venue adapter, the
 * strategy, risk, the order manager and the store. Nothing here knows the SDK or the wire.
 *
 * Invariants: prices and sizes are `Decimal` already rounded to the instrument's tick / lot;
 * sizes are positive (direction is in `side`); times are ms since the epoch from the injected
 * clock; a `Cloid` is `0x` + 32 lowercase hex and is never reused.
 */
import type { Decimal } from './decimal.ts';

export type Coin = string;
/** `0x` + 32 lowercase hex. */
export type Cloid = string;
export type Side = 'buy' | 'sell';
export type Direction = 'long' | 'short';

export function sideOf(direction: Direction): Side {
  return direction === 'long' ? 'buy' : 'sell';
}
export function closingSide(direction: Direction): Side {
  return direction === 'long' ? 'sell' : 'buy';
}

/** A perpetual market as keel trades it. */
export interface Instrument {
  readonly coin: Coin;
  /** Venue asset id (index in the perp universe). */
  readonly assetId: number;
  readonly szDecimals: number;
  readonly maxLeverage: number;
  /** Majors (BTC, ETH) get their own size / leverage limits in risk. */
  readonly isMajor: boolean;
}

/** A closed or in-progress OHLCV bar. Indicator math runs on doubles, as TA-Lib does. */
export interface Candle {
  readonly coin: Coin;
  readonly interval: string;
  /** Open time (ms). */
  readonly t: number;
  /** Close time (ms, inclusive). */
  readonly T: number;
  readonly o: number;
  readonly h: number;
  readonly l: number;
  readonly c: number;
  readonly v: number;
  readonly closed: boolean;
}

/** A strategy's proposal to open a position; risk turns it into an order or a denial. */
export interface Signal {
  readonly coin: Coin;
  readonly direction: Direction;
  /** The reference price the signal was computed at (last close). */
  readonly refPx: Decimal;
  readonly stopPx: Decimal;
  readonly takeProfitPx: Decimal;
  /** Time of the bar that produced it. */
  readonly time: number;
  /** Strategy name and a short human-readable why (logged, recorded). */
  readonly strategy: string;
  readonly reason: string;
}

/** Why risk denied a signal or an order: a closed set, counted in metrics and logged. */
export const DENIAL_REASONS = [
  'gate_halted',
  'gate_reducing',
  'position_size',
  'leverage',
  'max_positions',
  'margin_usage',
  'stacking',
  'stop_side',
  'reward_risk',
  'fat_finger',
  'min_notional',
  'rounding',
  'daily_loss',
  'order_rate',
  'no_mark',
  'invalid',
] as const;
export type DenialReason = (typeof DENIAL_REASONS)[number];

export type OrderKind = 'entry' | 'stop_loss' | 'take_profit' | 'take_profit_1' | 'exit' | 'flatten';

/** What the order manager commits to the database before signing: the exactly-once unit. */
export interface OrderIntent {
  readonly cloid: Cloid;
  readonly coin: Coin;
  readonly assetId: number;
  readonly side: Side;
  readonly sz: Decimal;
  /** Limit price (for trigger orders: the limit after triggering; market triggers carry a slippage cap). */
  readonly px: Decimal;
  readonly reduceOnly: boolean;
  readonly tif: 'Gtc' | 'Ioc' | 'Alo';
  readonly trigger?: { readonly triggerPx: Decimal; readonly tpsl: 'tp' | 'sl'; readonly isMarket: boolean };
  readonly kind: OrderKind;
  /** For protective orders: the entry they protect. */
  readonly parentCloid?: Cloid;
  readonly createdAt: number;
}

/** Lifecycle states of one order (one cloid). */
export const ORDER_STATES = ['intent', 'submitting', 'resting', 'partially_filled', 'filled', 'cancelling', 'cancelled', 'rejected', 'unknown'] as const;
export type OrderState = (typeof ORDER_STATES)[number];
export const TERMINAL_ORDER_STATES: ReadonlySet<OrderState> = new Set(['filled', 'cancelled', 'rejected']);

/** A fill as keel records it; `tid` is the venue's trade id, the dedup key. */
export interface Fill {
  readonly tid: number;
  readonly oid: number;
  readonly cloid?: Cloid;
  readonly coin: Coin;
  readonly side: Side;
  readonly px: Decimal;
  readonly sz: Decimal;
  readonly fee: Decimal;
  readonly closedPnl: Decimal;
  readonly time: number;
  readonly crossed: boolean;
}

/** A position as the venue reports it (signed size: + long, − short). */
export interface Position {
  readonly coin: Coin;
  readonly szi: Decimal;
  readonly entryPx: Decimal;
  readonly unrealizedPnl: Decimal;
  readonly leverage: number;
  readonly liquidationPx?: Decimal;
  readonly marginUsed: Decimal;
}

export interface AccountState {
  readonly accountValue: Decimal;
  readonly totalMarginUsed: Decimal;
  readonly totalNtlPos: Decimal;
  readonly withdrawable: Decimal;
  readonly positions: readonly Position[];
  readonly time: number;
}

/** An order the venue holds (ours or someone else's), as open orders report it. */
export interface VenueOrder {
  readonly oid: number;
  readonly cloid?: Cloid;
  readonly coin: Coin;
  readonly side: Side;
  readonly px: Decimal;
  readonly sz: Decimal;
  readonly origSz: Decimal;
  readonly reduceOnly: boolean;
  readonly isTrigger: boolean;
  readonly triggerPx?: Decimal;
  readonly timestamp: number;
}

/** The venue's answer to `orderStatus` by cloid. */
export type VenueOrderStatus =
  | { readonly found: false }
  | { readonly found: true; readonly oid: number; readonly status: 'open' | 'filled' | 'canceled' | 'triggered' | 'rejected' | 'other'; readonly rawStatus: string; readonly sz: Decimal; readonly origSz: Decimal; readonly statusTimestamp: number };

/** Result of placing one order. `unknown` is a timeout or lost answer: never "failed". */
export type PlaceResult =
  | { readonly kind: 'resting'; readonly oid: number }
  | { readonly kind: 'filled'; readonly oid: number; readonly totalSz: Decimal; readonly avgPx: Decimal }
  | { readonly kind: 'waiting'; readonly oid?: number }
  | { readonly kind: 'rejected'; readonly error: string }
  | { readonly kind: 'unknown'; readonly cause: string };

export type CancelResult = { readonly kind: 'cancelled' } | { readonly kind: 'not_found'; readonly error: string } | { readonly kind: 'unknown'; readonly cause: string };

/** The operating modes of architecture.md. */
export const MODES = ['Normal', 'Degraded', 'Critical', 'Emergency'] as const;
export type Mode = (typeof MODES)[number];

/** The risk engine's trading gate. */
export type TradingGate = 'active' | 'reducing' | 'halted';
