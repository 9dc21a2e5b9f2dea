/**
 * `VenuePort` over the simulator's matching engine, in process: no HTTP, no signatures, no
 * WebSocket. The backtest's order manager talks to this exactly as the live one talks to
 * hyperliquid-venue.ts, and every answer goes through the SAME zod schemas and converters
 * (src/venue/hyperliquid-schemas.ts), so the domain values are the ones live trading sees.
 *
 * Invariants:
 *  - actions never throw for venue outcomes (port contract): a refusal is `rejected`; an action
 *    presented after its `expiresAfter` is refused as the venue refuses it ("Action already
 *    expired"); nothing here ever returns `unknown` (there is no transport to lose an answer);
 *  - user events (fills, order updates, funding) are queued as the engine emits them and handed
 *    to the subscribers only by `deliver()`, which the backtest calls between steps; so the order
 *    actors get their place result first and the fills after, as over a WebSocket, and the order
 *    of everything is a function of the inputs alone;
 *  - before any call that reads or moves the account, `sync` installs the current market block of
 *    the coins involved (the backtest applies blocks lazily, see backtester.ts): the engine never
 *    matches an order against a stale book.
 */
import { Decimal } from '../domain/decimal.ts';
import type { AccountState, Candle, CancelResult, Cloid, Coin, Fill, Instrument, OrderIntent, PlaceResult, VenueOrder, VenueOrderStatus } from '../domain/types.ts';
import type { ActOptions, MarketHandlers, Subscription, UserHandlers, VenuePort } from '../venue/port.ts';
import { VenueError } from '../venue/port.ts';
import {
  CancelResponseSchema,
  ClearinghouseStateSchema,
  FillWireSchema,
  FillsSchema,
  FrontendOpenOrdersSchema,
  MetaSchema,
  OrderResponseSchema,
  OrderStatusSchema,
  describeIssues,
  toAccountState,
  toFill,
  toInstruments,
  toVenueOrder,
  toVenueOrderStatus,
} from '../venue/hyperliquid-schemas.ts';
import type { Exchange } from '../sim/engine/index.ts';
import type { ExchangeEvent, OrderRequest, SimClock } from '../sim/types.ts';
import type { z } from 'zod';

export const EXPIRED_ERROR = 'Action already expired';

export interface FundingPayment {
  readonly time: number;
  readonly coin: Coin;
  /** Received (+) or paid (−) by the account, USD. */
  readonly usdc: Decimal;
  readonly rate: Decimal;
}

export interface OrderUpdate {
  readonly cloid?: Cloid;
  readonly oid: number;
  readonly coin: Coin;
  readonly status: string;
  readonly sz: Decimal;
  readonly origSz: Decimal;
  readonly time: number;
}

export interface EngineVenueOptions {
  readonly exchange: Exchange;
  readonly clock: SimClock;
  /** The master account (lowercase 0x address), already funded on the exchange. */
  readonly account: string;
  /** Installs the current market block of `coins` (all coins with exposure when undefined). */
  readonly sync: (coins?: readonly Coin[]) => void;
  /** Current mid of every coin that has one. */
  readonly mids: () => Map<Coin, Decimal>;
  /** Closed 1m candles of `coin` in [startTime, endTime] known at this time. */
  readonly candles?: (coin: Coin, startTime: number, endTime: number) => Candle[];
  /** Sees every user event of the account (fills, funding, liquidation), as the engine emits it. */
  readonly onUserEvent?: (e: ExchangeEvent) => void;
}

function parsed<S extends z.ZodType>(what: string, schema: S, raw: unknown): z.infer<S> {
  const r = schema.safeParse(raw);
  if (!r.success) throw new VenueError('invalid_response', `${what}: ${describeIssues(r.error)}`, raw);
  return r.data;
}

export class EngineVenue implements VenuePort {
  readonly network = 'paper' as const;
  readonly url = 'engine://backtest';
  readonly account: string;
  readonly #o: EngineVenueOptions;
  readonly #ex: Exchange;
  #fills: Fill[] = [];
  #updates: OrderUpdate[] = [];
  readonly #funding: FundingPayment[] = [];
  readonly #userHandlers = new Set<UserHandlers>();
  readonly #marketHandlers = new Set<{ coins: ReadonlySet<Coin>; intervals: ReadonlySet<string>; handlers: MarketHandlers }>();
  readonly #off: () => void;

  constructor(opts: EngineVenueOptions) {
    this.#o = opts;
    this.#ex = opts.exchange;
    this.account = opts.account;
    this.#off = this.#ex.onEvent((e) => this.#onEvent(e));
  }

  /** Funding paid or received so far, oldest first. */
  get funding(): readonly FundingPayment[] {
    return this.#funding;
  }

  /** True while fills or order updates wait for `deliver()`. */
  get pending(): boolean {
    return this.#fills.length > 0 || this.#updates.length > 0;
  }

  #onEvent(e: ExchangeEvent): void {
    if (!('user' in e) || e.user !== this.account) return;
    this.#o.onUserEvent?.(e);
    switch (e.kind) {
      case 'fill':
        this.#fills.push(toFill(parsed('userFills', FillWireSchema, e.fill)));
        break;
      case 'orderUpdate': {
        const o = e.update.order;
        this.#updates.push({ ...(o.cloid ? { cloid: o.cloid } : {}), oid: o.oid, coin: o.coin, status: e.update.status, sz: new Decimal(o.sz), origSz: new Decimal(o.origSz), time: e.update.statusTimestamp });
        break;
      }
      case 'funding':
        this.#funding.push({ time: e.funding.time, coin: e.funding.coin, usdc: new Decimal(e.funding.usdc), rate: new Decimal(e.funding.fundingRate) });
        break;
      default:
        break;
    }
  }

  /**
   * Hands queued fills, then queued order updates, to the user subscribers (as the userFills and
   * orderUpdates channels would). Returns whether anything was delivered.
   */
  deliver(): boolean {
    if (!this.pending) return false;
    const fills = this.#fills;
    const updates = this.#updates;
    this.#fills = [];
    this.#updates = [];
    for (const h of this.#userHandlers) {
      if (fills.length > 0) h.onFills?.(fills, false);
      if (updates.length > 0) h.onOrderUpdates?.(updates);
    }
    return true;
  }

  /** Pushes a closed candle to the market subscribers of its coin and interval (the feed's candle channel). */
  publishCandle(candle: Candle): void {
    const now = this.#o.clock.now();
    for (const s of this.#marketHandlers) if (s.coins.has(candle.coin) && s.intervals.has(candle.interval)) s.handlers.onCandle?.(candle, now);
  }

  // ── queries ──────────────────────────────────────────────────────────────────────────────

  async instruments(): Promise<Instrument[]> {
    return toInstruments(parsed('meta', MetaSchema, this.#ex.meta()));
  }

  async mids(): Promise<Map<Coin, Decimal>> {
    return this.#o.mids();
  }

  async candles(coin: Coin, interval: string, startTime: number, endTime?: number): Promise<Candle[]> {
    if (interval !== '1m' || !this.#o.candles) return [];
    return this.#o.candles(coin, startTime, Math.min(endTime ?? Infinity, this.#o.clock.now()));
  }

  async accountState(): Promise<AccountState> {
    this.#o.sync();
    return toAccountState(parsed('clearinghouseState', ClearinghouseStateSchema, this.#ex.clearinghouseState(this.account)));
  }

  async openOrders(): Promise<VenueOrder[]> {
    return parsed('frontendOpenOrders', FrontendOpenOrdersSchema, this.#ex.frontendOpenOrders(this.account)).map(toVenueOrder);
  }

  async orderStatus(cloid: Cloid): Promise<VenueOrderStatus> {
    return toVenueOrderStatus(parsed('orderStatus', OrderStatusSchema, this.#ex.orderStatus(this.account, cloid)));
  }

  async fills(startTime: number): Promise<Fill[]> {
    return parsed('userFillsByTime', FillsSchema, this.#ex.userFillsByTime(this.account, startTime)).map(toFill);
  }

  // ── actions ──────────────────────────────────────────────────────────────────────────────

  async place(intent: OrderIntent, opts: ActOptions): Promise<PlaceResult> {
    if (this.#o.clock.now() > opts.expiresAfter) return { kind: 'rejected', error: EXPIRED_ERROR };
    this.#o.sync([intent.coin]);
    const req: OrderRequest = {
      asset: intent.assetId,
      isBuy: intent.side === 'buy',
      px: intent.px,
      sz: intent.sz,
      reduceOnly: intent.reduceOnly,
      type: intent.trigger ? { kind: 'trigger', isMarket: intent.trigger.isMarket, triggerPx: intent.trigger.triggerPx, tpsl: intent.trigger.tpsl } : { kind: 'limit', tif: intent.tif },
      cloid: intent.cloid,
    };
    const statuses = this.#ex.placeOrders(this.account, [req], 'na');
    // The wire answer, read by the adapter's own schema: the same edge as live.
    const p = OrderResponseSchema.safeParse({ status: 'ok', response: { type: 'order', data: { statuses } } });
    if (!p.success) return { kind: 'rejected', error: `unreadable engine answer: ${describeIssues(p.error)}` };
    const st = p.data.response.data.statuses[0]!;
    if (st.kind === 'resting') return { kind: 'resting', oid: st.oid };
    if (st.kind === 'filled') return { kind: 'filled', oid: st.oid, totalSz: st.totalSz, avgPx: st.avgPx };
    if (st.kind === 'waiting') return { kind: 'waiting' };
    return { kind: 'rejected', error: st.error };
  }

  async cancel(coin: Coin, cloid: Cloid, opts: ActOptions): Promise<CancelResult> {
    if (this.#o.clock.now() > opts.expiresAfter) return { kind: 'unknown', cause: EXPIRED_ERROR };
    const asset = this.#ex.assetId(coin);
    if (asset === undefined) return { kind: 'not_found', error: `unknown coin ${coin}` };
    this.#o.sync([coin]);
    const statuses = this.#ex.cancelByCloid(this.account, [{ asset, cloid }]);
    const p = CancelResponseSchema.safeParse({ status: 'ok', response: { type: 'cancel', data: { statuses } } });
    if (!p.success) return { kind: 'unknown', cause: `invalid_response: ${describeIssues(p.error)}` };
    const st = p.data.response.data.statuses[0]!;
    return st === 'success' ? { kind: 'cancelled' } : { kind: 'not_found', error: st.error };
  }

  async scheduleCancel(time: number | undefined, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }> {
    if (this.#o.clock.now() > opts.expiresAfter) return { ok: false, error: EXPIRED_ERROR };
    const r = this.#ex.scheduleCancel(this.account, time);
    return 'error' in r ? { ok: false, error: r.error } : { ok: true };
  }

  async updateLeverage(coin: Coin, leverage: number, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }> {
    if (this.#o.clock.now() > opts.expiresAfter) return { ok: false, error: EXPIRED_ERROR };
    const asset = this.#ex.assetId(coin);
    if (asset === undefined) return { ok: false, error: `unknown coin ${coin}` };
    const r = this.#ex.updateLeverage(this.account, asset, true, leverage);
    return 'error' in r ? { ok: false, error: r.error } : { ok: true };
  }

  // ── streams ──────────────────────────────────────────────────────────────────────────────

  async subscribeMarket(coins: readonly Coin[], intervals: readonly string[], handlers: MarketHandlers): Promise<Subscription> {
    const entry = { coins: new Set(coins), intervals: new Set(intervals), handlers };
    this.#marketHandlers.add(entry);
    return { unsubscribe: async () => void this.#marketHandlers.delete(entry) };
  }

  async subscribeUser(handlers: UserHandlers): Promise<Subscription> {
    this.#userHandlers.add(handlers);
    return { unsubscribe: async () => void this.#userHandlers.delete(handlers) };
  }

  onConnectionState(listener: (state: 'up' | 'down') => void): () => void {
    // In process there is no connection to lose: it is up from the start and stays up.
    listener('up');
    return () => {};
  }

  async close(): Promise<void> {
    this.#off();
    this.#userHandlers.clear();
    this.#marketHandlers.clear();
  }
}
