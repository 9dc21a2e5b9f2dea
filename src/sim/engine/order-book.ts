/**
 * One coin's limit order book: two sides of price levels, each a FIFO queue of resting orders
 * (user orders and the synthetic market maker's alike).
 *
 * Invariants: levels are sorted best first (bids descending, asks ascending), no level is empty,
 * every order in a level has a positive remaining size and `resting === true`, and an order sits
 * in exactly one level. Price-time priority = level order, then queue order. Lookups are binary
 * searches, so adding and removing cost O(log L + Q) for L levels and Q orders in a level.
 */
import type { Decimal } from '../../domain/decimal.ts';
import type { Grouping, OrderState, Side, Tif } from '../types.ts';

export interface TriggerSpec {
  readonly isMarket: boolean;
  readonly triggerPx: Decimal;
  readonly tpsl: 'tp' | 'sl';
}

/** The engine's record of one order; mutable fields change as it fills or is cancelled. */
export interface EngineOrder {
  readonly oid: number;
  readonly cloid: string | undefined;
  readonly user: string;
  readonly coin: string;
  readonly asset: number;
  readonly side: Side;
  /** Limit price as placed (for a triggered market order the execution limit is computed apart). */
  readonly px: Decimal;
  /** Remaining (unfilled, uncancelled) size. filled + cancelled + sz === origSz always. */
  sz: Decimal;
  readonly origSz: Decimal;
  filled: Decimal;
  cancelled: Decimal;
  /** Σ px × size over this order's fills, for avgPx. */
  filledNtl: Decimal;
  readonly reduceOnly: boolean;
  /** Time in force; undefined for a trigger order (it has none on the wire). */
  readonly tif: Tif | undefined;
  readonly trigger: TriggerSpec | undefined;
  status: OrderState;
  statusTimestamp: number;
  readonly timestamp: number;
  readonly grouping: Grouping;
  readonly isPositionTpsl: boolean;
  /** normalTpsl: the parent's oid for a child, the children's oids for a parent. */
  readonly parentOid: number | undefined;
  readonly childOids: number[];
  /** TP/SL orders placed together: when one triggers the others are cancelled. */
  siblingOids: readonly number[];
  /** A normalTpsl child whose parent has not filled yet. */
  waitingForFill: boolean;
  /** A trigger order that has triggered and now behaves as a limit order. */
  triggered: boolean;
  /** In the book right now. */
  resting: boolean;
  readonly isMM: boolean;
  /** Orders this entry stands for in l2Book's `n` (synthetic levels count as several). */
  readonly n: number;
}

export interface Level {
  readonly px: Decimal;
  readonly orders: EngineOrder[];
}

export class BookSide {
  readonly #isBid: boolean;
  /** Best first. */
  readonly levels: Level[] = [];

  constructor(isBid: boolean) {
    this.#isBid = isBid;
  }

  get isBid(): boolean {
    return this.#isBid;
  }

  best(): Level | undefined {
    return this.levels[0];
  }

  bestPx(): Decimal | undefined {
    return this.levels[0]?.px;
  }

  /** True when a taker of the opposite side with limit `limit` may trade at `px` (no limit = market). */
  crosses(px: Decimal, limit: Decimal | undefined): boolean {
    if (limit === undefined) return true;
    return this.#isBid ? px.gte(limit) : px.lte(limit);
  }

  /** Index of the level at `px`, or the insertion point as `-(index + 1)`. */
  #search(px: Decimal): number {
    let lo = 0;
    let hi = this.levels.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = (this.levels[mid] as Level).px.cmp(px);
      if (c === 0) return mid;
      // bids: higher is better (earlier); asks: lower is better.
      const levelIsBetter = this.#isBid ? c > 0 : c < 0;
      if (levelIsBetter) lo = mid + 1;
      else hi = mid - 1;
    }
    return -(lo + 1);
  }

  add(order: EngineOrder): void {
    const i = this.#search(order.px);
    if (i >= 0) (this.levels[i] as Level).orders.push(order);
    else this.levels.splice(-i - 1, 0, { px: order.px, orders: [order] });
    order.resting = true;
  }

  /** Removes `order` from its level; returns false when it is not in this side. */
  remove(order: EngineOrder): boolean {
    const i = this.#search(order.px);
    if (i < 0) return false;
    const level = this.levels[i] as Level;
    const j = level.orders.indexOf(order);
    if (j < 0) return false;
    level.orders.splice(j, 1);
    if (level.orders.length === 0) this.levels.splice(i, 1);
    order.resting = false;
    return true;
  }
}

export class OrderBook {
  readonly coin: string;
  readonly bids = new BookSide(true);
  readonly asks = new BookSide(false);

  constructor(coin: string) {
    this.coin = coin;
  }

  side(side: Side): BookSide {
    return side === 'B' ? this.bids : this.asks;
  }

  /** The side a taker of `side` trades against. */
  opposite(side: Side): BookSide {
    return side === 'B' ? this.asks : this.bids;
  }

  add(order: EngineOrder): void {
    this.side(order.side).add(order);
  }

  remove(order: EngineOrder): boolean {
    return this.side(order.side).remove(order);
  }
}
