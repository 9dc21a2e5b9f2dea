/**
 * The venue port: everything keel asks of an exchange, in domain types. The Hyperliquid adapter
 * (hyperliquid-venue.ts) implements it with the SDK; SDK types never leave the adapter.
 *
 * Contract: methods that act (place, cancel) never throw for venue outcomes: a rejection is a
 * value, and a timeout / lost response / transport failure is `unknown` (the action may or may not
 * have happened). Queries throw `VenueError` when they cannot answer; callers retry or degrade.
 * Every input from the venue is parsed into domain types at this edge; garbage is a `VenueError`.
 */
import type { AccountState, Candle, CancelResult, Cloid, Coin, Fill, Instrument, OrderIntent, PlaceResult, VenueOrder, VenueOrderStatus } from '../domain/types.ts';
import type { Decimal } from '../domain/decimal.ts';

export class VenueError extends Error {
  readonly kind: 'transport' | 'rate_limited' | 'invalid_response' | 'rejected';
  readonly detail: unknown;
  constructor(kind: VenueError['kind'], message: string, detail?: unknown) {
    super(message);
    this.name = 'VenueError';
    this.kind = kind;
    this.detail = detail;
  }
}

export interface ActOptions {
  /** Absolute ms after which the venue must refuse the action (set on every action). */
  readonly expiresAfter: number;
  readonly signal?: AbortSignal;
}

export interface MarketHandlers {
  onMids?(mids: ReadonlyMap<Coin, Decimal>, receivedAt: number): void;
  onCandle?(candle: Candle, receivedAt: number): void;
  onTrades?(coin: Coin, trades: readonly { px: Decimal; sz: Decimal; side: 'buy' | 'sell'; time: number; tid: number }[], receivedAt: number): void;
  onBook?(coin: Coin, bestBid: Decimal | undefined, bestAsk: Decimal | undefined, time: number, receivedAt: number): void;
}

export interface UserHandlers {
  onFills?(fills: readonly Fill[], isSnapshot: boolean): void;
  onOrderUpdates?(updates: readonly { cloid?: Cloid; oid: number; coin: Coin; status: string; sz: Decimal; origSz: Decimal; time: number }[]): void;
}

export interface Subscription {
  unsubscribe(): Promise<void>;
}

export interface VenuePort {
  readonly network: 'paper' | 'testnet' | 'mainnet';
  readonly url: string;
  /** The master account the agent acts for (lowercase). */
  readonly account: string;

  instruments(): Promise<Instrument[]>;
  mids(): Promise<Map<Coin, Decimal>>;
  candles(coin: Coin, interval: string, startTime: number, endTime?: number): Promise<Candle[]>;
  accountState(): Promise<AccountState>;
  openOrders(): Promise<VenueOrder[]>;
  orderStatus(cloid: Cloid): Promise<VenueOrderStatus>;
  /** Fills since `startTime` (oldest first). */
  fills(startTime: number): Promise<Fill[]>;

  place(intent: OrderIntent, opts: ActOptions): Promise<PlaceResult>;
  cancel(coin: Coin, cloid: Cloid, opts: ActOptions): Promise<CancelResult>;
  /** Arms (time) or clears (undefined) the venue's dead-man switch. */
  scheduleCancel(time: number | undefined, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }>;
  updateLeverage(coin: Coin, leverage: number, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }>;

  subscribeMarket(coins: readonly Coin[], intervals: readonly string[], handlers: MarketHandlers): Promise<Subscription>;
  subscribeUser(handlers: UserHandlers): Promise<Subscription>;
  /** Resolves when the WebSocket is (re)connected; `onState` reports up / down transitions. */
  onConnectionState(listener: (state: 'up' | 'down') => void): () => void;
  close(): Promise<void>;
}
