/**
 * Shared contract between the simulator's parts:
 *
 *   market/   replays recorded candles into one deterministic `MarketBlock` per coin per block
 *   engine/   the exchange: accounts, order books, matching, margin, triggers, funding, liquidation
 *   auth/     signature recovery, agents, nonces, expiresAfter
 *   server/   HTTP /info, /exchange, /_sim/*, WebSocket /ws, rate limits, fault injection
 *
 * Invariants: every price and size inside the simulator is a `Decimal`; wire strings are produced
 * only when a response is built. Exchange time (`now`) comes from the injected `SimClock` and is
 * the time of orders, fills, nonces and expiresAfter; market time is the recorded data's time.
 */
import type { Decimal } from '../domain/decimal.ts';

/** Exchange time in ms since the epoch; wall clock by default, stepped in deterministic runs. */
export interface SimClock {
  now(): number;
}

export type Side = 'B' | 'A'; // B = bid / buy, A = ask / sell
export type Tif = 'Gtc' | 'Ioc' | 'Alo' | 'FrontendMarket';
export type Grouping = 'na' | 'normalTpsl' | 'positionTpsl';

/** One perpetual market as `meta` lists it. The asset id is its index in `universe`. */
export interface AssetSpec {
  readonly name: string;
  readonly szDecimals: number;
  readonly maxLeverage: number;
  /** Maintenance margin = 1 / (2 × maxLeverage) of notional, as on Hyperliquid. */
}

export interface BookLevel {
  readonly px: Decimal;
  readonly sz: Decimal;
  /** Number of orders at that level (synthetic liquidity counts as a few orders). */
  readonly n: number;
}

/** A trade printed by the synthetic market (not involving a user). */
export interface SynthTrade {
  readonly px: Decimal;
  readonly sz: Decimal;
  /** Aggressor side. */
  readonly side: Side;
}

/**
 * The market's state for one coin at one block: the synthetic market-maker liquidity that the
 * engine installs (replacing the previous block's), the trades it printed, and the reference prices.
 */
export interface MarketBlock {
  readonly coin: string;
  /** Block number, from 0, monotonically increasing; identical across runs with the same seed. */
  readonly block: number;
  /** Exchange time of this block. */
  readonly time: number;
  /** Recorded (market) time the block stands for. */
  readonly marketTime: number;
  readonly mid: Decimal;
  /** Oracle price: the recorded price path without the synthetic noise. */
  readonly oraclePx: Decimal;
  /** Synthetic liquidity, best first, at most 20 levels a side, never crossed. */
  readonly bids: readonly BookLevel[];
  readonly asks: readonly BookLevel[];
  readonly trades: readonly SynthTrade[];
  /** Hourly funding rate currently predicted for this coin (e.g. "0.0000125"). */
  readonly fundingRate: Decimal;
}

/** A parsed, validated order as it arrives in an `order` / `modify` action. */
export interface OrderRequest {
  readonly asset: number;
  readonly isBuy: boolean;
  readonly px: Decimal;
  readonly sz: Decimal;
  readonly reduceOnly: boolean;
  readonly type:
    | { readonly kind: 'limit'; readonly tif: Tif }
    | { readonly kind: 'trigger'; readonly isMarket: boolean; readonly triggerPx: Decimal; readonly tpsl: 'tp' | 'sl' };
  /** `0x` + 32 lowercase hex, or undefined. */
  readonly cloid?: string;
}

/** The exact per-order status objects of the wire protocol. */
export type OrderStatusWire =
  | { resting: { oid: number; cloid?: string } }
  | { filled: { totalSz: string; avgPx: string; oid: number; cloid?: string } }
  | { error: string }
  | 'waitingForFill'
  | 'waitingForTrigger';

export type CancelStatusWire = 'success' | { error: string };

/** Order statuses as `orderStatus` reports them. */
export type OrderState =
  | 'open'
  | 'filled'
  | 'canceled'
  | 'triggered'
  | 'rejected'
  | 'marginCanceled'
  | 'reduceOnlyCanceled'
  | 'scheduledCancel'
  | 'liquidatedCanceled'
  | 'siblingFilledCanceled';

/** A user fill, as WsFill / userFills report it (strings are wire decimals). */
export interface FillWire {
  coin: string;
  px: string;
  sz: string;
  side: Side;
  time: number;
  startPosition: string;
  dir: string;
  closedPnl: string;
  hash: string;
  oid: number;
  crossed: boolean;
  fee: string;
  feeToken: 'USDC';
  tid: number;
  cloid?: string;
  liquidation?: { liquidatedUser?: string; markPx: string; method: 'market' | 'backstop' };
}

/** What the exchange pushes to WebSocket subscribers; the server maps these onto channels. */
export type ExchangeEvent =
  | { kind: 'orderUpdate'; user: string; update: { order: { coin: string; side: Side; limitPx: string; sz: string; oid: number; timestamp: number; origSz: string; cloid?: string }; status: OrderState; statusTimestamp: number } }
  | { kind: 'fill'; user: string; fill: FillWire }
  | { kind: 'funding'; user: string; funding: { time: number; coin: string; usdc: string; szi: string; fundingRate: string } }
  | { kind: 'liquidation'; user: string; liquidation: { lid: number; liquidator: string; liquidated_user: string; liquidated_ntl_pos: string; liquidated_account_value: string } }
  | { kind: 'nonUserCancel'; user: string; cancels: { coin: string; oid: number }[] }
  | { kind: 'trades'; coin: string; trades: { coin: string; side: Side; px: string; sz: string; hash: string; time: number; tid: number; users: [string, string] }[] }
  | { kind: 'book'; coin: string; time: number }
  | { kind: 'mids'; mids: Record<string, string> };
