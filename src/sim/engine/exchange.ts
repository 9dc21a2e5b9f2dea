/**
 * The simulated Hyperliquid exchange: accounts, one order book per perp, matching, margin,
 * TP/SL triggers, funding, liquidation and the dead-man's switch. Pure and synchronous: no I/O,
 * no timers, time only from the injected `SimClock`; the same calls give the same results.
 *
 * Invariants (checked by tests/property/sim-engine*.test.ts):
 * - Price-time priority; a fill's price is the resting (maker) order's price; a taker never
 *   trades beyond its limit.
 * - Size is conserved: per coin, Σ szi over every account INCLUDING the internal market maker is 0;
 *   per order, filled + cancelled + remaining = origSz.
 * - Value is conserved: Σ (balance + unrealized PnL) over every account incl. the market maker
 *   + fees collected = Σ funded. (Balances alone are NOT conserved: realized PnL of one side is
 *   unrealized PnL of the other.) Funding is zero-sum because Σ szi = 0 and payments are exact.
 * - A reduce-only order never increases |position|: its fills are clamped to the position and it
 *   is cancelled (reduceOnlyCanceled) once it can no longer reduce.
 *
 * Choices where Hyperliquid's exact behavior is unknown or out of scope are marked "Choice:".
 */
import { Decimal, ONE, ZERO, isValidPrice, isValidSize, roundPrice, roundSize, toWire } from '../../domain/decimal.ts';
import type {
  AssetSpec,
  CancelStatusWire,
  ExchangeEvent,
  FillWire,
  Grouping,
  MarketBlock,
  OrderRequest,
  OrderState,
  OrderStatusWire,
  Side,
  SimClock,
  Tif,
} from '../types.ts';
import { applyFill, entryPx, newAccount, unrealizedPnl } from './ledger.ts';
import type { Account, Position } from './ledger.ts';
import { OrderBook } from './order-book.ts';
import type { EngineOrder, TriggerSpec } from './order-book.ts';
import { tradeHash } from './wire.ts';
import type {
  ActionResult,
  AssetCtxWire,
  AssetPositionWire,
  ClearinghouseStateWire,
  FrontendOpenOrderWire,
  L2BookWire,
  L2LevelWire,
  MetaWire,
  OpenOrderWire,
  OrderStatusInfoWire,
  TradeWire,
  UserFeesWire,
} from './wire.ts';

/** The internal market maker's address: appears only in trade `users` and liquidation events. */
export const MM_ADDRESS = '0x000000000000000000000000000000000000dead';

export const DEFAULT_MAKER_FEE = new Decimal('0.00015');
export const DEFAULT_TAKER_FEE = new Decimal('0.00045');
export const FIRST_OID = 1_000_000;

export const ERR = {
  invalidAsset: 'Order has invalid asset.',
  zeroSize: 'Order has zero size.',
  invalidSize: 'Order has invalid size.',
  tick: 'Price must be divisible by tick size.',
  minValue: 'Order must have minimum value of $10.',
  margin: 'Insufficient margin to place order.',
  reduceOnly: 'Reduce only order would increase position.',
  iocNoMatch: 'Order could not immediately match against any resting orders.',
  noLiquidity: 'No liquidity available for market order.',
  priceBand: 'Order price cannot be more than 80% away from the reference price',
  tpsl: 'Invalid TP/SL price.',
  cloid: 'Cloid already used.',
  parentFailed: 'Parent order failed.',
  cancel: 'Order was never placed, already canceled, or filled.',
  modify: 'Cannot modify canceled or filled order',
  leverage: 'Invalid leverage value',
  scheduleTooEarly: 'Scheduled cancel time too early, must be at least 5 seconds from now.',
  scheduleTooMany: 'Too many scheduled cancels today.',
} as const;

const HOUR = 3_600_000;
const DAY = 86_400_000;
const MONEY_DP = 6;
const MAX_FILLS = 2000;
const RECENT_TRADES = 100;
const SLIPPAGE = new Decimal('0.1');
const PRICE_BAND = new Decimal('0.8');
const MIN_NOTIONAL = new Decimal(10);

export interface ExchangeOptions {
  readonly assets: readonly AssetSpec[];
  readonly clock: SimClock;
  readonly makerFee?: Decimal;
  readonly takerFee?: Decimal;
}

export interface FaultHooks {
  /** Returns an error string to reject the order with, or undefined. Called once per order. */
  reject?: () => string | undefined;
  /** Returns f in (0, 1) to let a user's taker order fill at most f of its size, or undefined. */
  partialFill?: () => number | undefined;
}

export type ExchangeListener = (event: ExchangeEvent) => void;

interface Market {
  mark: Decimal | undefined;
  oracle: Decimal | undefined;
  mid: Decimal | undefined;
  funding: Decimal;
  lastFundingHour: number | undefined;
  mmOrders: EngineOrder[];
  readonly triggers: Set<EngineOrder>;
  readonly holders: Set<Account>;
  readonly recentTrades: TradeWire[];
  /** Rolling 24 h volume: entries oldest first, `volHead` is the first live entry. */
  readonly volume: { time: number; ntl: Decimal; base: Decimal }[];
  volHead: number;
  dayNtl: Decimal;
  dayBase: Decimal;
  /** Mid at the first block of each hour, for prevDayPx. */
  readonly hourlyMid: Map<number, Decimal>;
}

interface LiquidationTag {
  readonly liquidatedUser: string;
  readonly markPx: string;
  readonly method: 'market' | 'backstop';
}

interface PlaceContext {
  readonly grouping: Grouping;
  readonly parent?: EngineOrder;
  readonly positionTpsl?: boolean;
  /** modify: the order being replaced, whose cloid may be reused. */
  readonly replacing?: EngineOrder;
}

/** GET /_sim/state: plain JSON (decimals as wire strings). */
export interface GroundTruth {
  time: number;
  accounts: {
    address: string;
    balance: string;
    accountValue: string;
    positions: { coin: string; szi: string; entryPx: string; cost: string; markPx: string; unrealizedPnl: string; leverage: number; cumFunding: { allTime: string; sinceOpen: string; sinceChange: string } }[];
    scheduledCancel: number | null;
  }[];
  openOrders: GroundTruthOrder[];
  orders: GroundTruthOrder[];
  fills: (FillWire & { user: string })[];
  feesCollected: string;
  totalFunded: string;
}

export interface GroundTruthOrder {
  oid: number;
  cloid: string | null;
  user: string;
  coin: string;
  side: Side;
  px: string;
  sz: string;
  origSz: string;
  filledSz: string;
  reduceOnly: boolean;
  isTrigger: boolean;
  triggerPx?: string;
  tpsl?: 'tp' | 'sl';
  isMarket?: boolean;
  tif: Tif | null;
  status: OrderState;
  statusTimestamp: number;
  timestamp: number;
  grouping: Grouping;
}

export interface InternalTotals {
  readonly funded: Decimal;
  readonly feesCollected: Decimal;
  readonly mmBalance: Decimal;
  /** Σ (balance + unrealized PnL) over users AND the market maker, at current marks. */
  readonly totalValue: Decimal;
  /** Per coin, Σ szi over users and the market maker. */
  readonly netSize: Record<string, Decimal>;
  readonly positions: { user: string; coin: string; szi: Decimal }[];
}

const money = (d: Decimal): string => toWire(d.toDecimalPlaces(MONEY_DP));

export class Exchange {
  readonly #assets: readonly AssetSpec[];
  readonly #assetByCoin = new Map<string, number>();
  readonly #clock: SimClock;
  readonly #makerFee: Decimal;
  readonly #takerFee: Decimal;
  readonly #books: OrderBook[];
  readonly #markets: Market[];
  readonly #accounts = new Map<string, Account>();
  readonly #fundedUsers = new Set<string>();
  readonly #mm = newAccount(MM_ADDRESS, true);
  /** Every user order ever accepted, in oid order. */
  readonly #orders = new Map<number, EngineOrder>();
  readonly #fillLog: { user: string; fill: FillWire }[] = [];
  readonly #scheduled = new Set<Account>();
  readonly #listeners: ExchangeListener[] = [];
  readonly #pendingTrades: TradeWire[] = [];
  #faults: FaultHooks = {};
  #nextOid = FIRST_OID;
  #nextMmOid = -1;
  #tid = 0;
  #lid = 0;
  #funded = ZERO;
  #fees = ZERO;

  constructor(opts: ExchangeOptions) {
    this.#assets = opts.assets;
    this.#clock = opts.clock;
    this.#makerFee = opts.makerFee ?? DEFAULT_MAKER_FEE;
    this.#takerFee = opts.takerFee ?? DEFAULT_TAKER_FEE;
    this.#books = opts.assets.map((a) => new OrderBook(a.name));
    this.#markets = opts.assets.map(() => ({
      mark: undefined,
      oracle: undefined,
      mid: undefined,
      funding: ZERO,
      lastFundingHour: undefined,
      mmOrders: [],
      triggers: new Set(),
      holders: new Set(),
      recentTrades: [],
      volume: [],
      volHead: 0,
      dayNtl: ZERO,
      dayBase: ZERO,
      hourlyMid: new Map(),
    }));
    opts.assets.forEach((a, i) => this.#assetByCoin.set(a.name, i));
  }

  // ───────────────────────────── events, hooks, accounts ─────────────────────────────

  /** Subscribes to exchange events, delivered synchronously in order. Returns the unsubscriber. */
  onEvent(listener: ExchangeListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  setFaultHooks(hooks: FaultHooks): void {
    this.#faults = hooks;
  }

  /** Credits `usdc` of collateral to `user` (lowercase address), creating the account. */
  fund(user: string, usdc: Decimal): void {
    this.#fundedUsers.add(user);
    const acct = this.#account(user);
    acct.balance = acct.balance.plus(usdc);
    this.#funded = this.#funded.plus(usdc);
  }

  /** True once `user` has been funded (an action by an unfunded address must not create one). */
  hasAccount(user: string): boolean {
    return this.#fundedUsers.has(user);
  }

  assetId(coin: string): number | undefined {
    return this.#assetByCoin.get(coin);
  }

  /** Mark price of `coin`, undefined before its first block. */
  markPx(coin: string): Decimal | undefined {
    const a = this.#assetByCoin.get(coin);
    return a === undefined ? undefined : this.#markets[a]?.mark;
  }

  // ───────────────────────────── market data ─────────────────────────────

  /**
   * Installs one block of market data for a coin: replaces the market maker's liquidity (crossing
   * resting user orders trade, the user as maker), prints the synthetic trades, fires triggers,
   * liquidates, pays funding on an hour boundary, runs due scheduled cancels, emits book and mids.
   */
  applyBlock(block: MarketBlock): void {
    const asset = this.#assetByCoin.get(block.coin);
    if (asset === undefined) throw new Error(`applyBlock: unknown coin ${block.coin}`);
    this.#runScheduledCancels();
    const now = this.#clock.now();
    const mk = this.#market(asset);
    const book = this.#book(asset);
    for (const o of mk.mmOrders) if (o.resting) book.remove(o);
    mk.mmOrders = [];
    mk.mark = block.mid;
    mk.mid = block.mid;
    mk.oracle = block.oraclePx;
    mk.funding = block.fundingRate;
    const hour = Math.floor(now / HOUR);
    if (!mk.hourlyMid.has(hour)) {
      mk.hourlyMid.set(hour, block.mid);
      for (const h of mk.hourlyMid.keys()) if (h < hour - 25) mk.hourlyMid.delete(h);
    }

    for (const [side, levels] of [['B', block.bids], ['A', block.asks]] as const) {
      for (const level of levels) {
        if (level.sz.lte(0)) continue;
        const o = this.#mmOrder(asset, side, level.px, level.sz, level.n);
        this.#match(o, o.px, o.sz, undefined);
        if (o.sz.gt(0)) {
          book.add(o);
          mk.mmOrders.push(o);
        }
      }
    }
    this.#flushTrades(asset);

    if (block.trades.length > 0) {
      const trades: TradeWire[] = [];
      for (const t of block.trades) {
        const tid = ++this.#tid;
        const tw: TradeWire = { coin: block.coin, side: t.side, px: toWire(t.px), sz: toWire(t.sz), hash: tradeHash(tid), time: now, tid, users: [MM_ADDRESS, MM_ADDRESS] };
        trades.push(tw);
        this.#recordVolume(asset, now, t.px.times(t.sz), t.sz);
      }
      this.#pushRecent(asset, trades);
      this.#emit({ kind: 'trades', coin: block.coin, trades });
    }

    this.#checkTriggers(asset);
    this.#checkLiquidations(asset);
    this.#applyFunding(asset, block);
    this.#runScheduledCancels();
    this.#emit({ kind: 'book', coin: block.coin, time: now });
    this.#emit({ kind: 'mids', mids: this.allMids() });
  }

  /** Runs scheduled cancels that are due. The server may call it on a timer; blocks call it too. */
  tick(): void {
    this.#runScheduledCancels();
  }

  // ───────────────────────────── actions ─────────────────────────────

  /** The `order` action: one status per order, in order. */
  placeOrders(user: string, orders: readonly OrderRequest[], grouping: Grouping = 'na'): OrderStatusWire[] {
    this.#runScheduledCancels();
    const acct = this.#account(user);
    const out: OrderStatusWire[] = [];
    if (grouping === 'normalTpsl' && orders.length > 0) {
      const [first, ...rest] = orders as [OrderRequest, ...OrderRequest[]];
      const parent = this.#placeOne(acct, first, { grouping });
      out.push(parent.status);
      const children: EngineOrder[] = [];
      const parentOk = parent.order !== undefined && !(typeof parent.status === 'object' && 'error' in parent.status);
      for (const req of rest) {
        if (!parentOk || parent.order === undefined) {
          out.push({ error: ERR.parentFailed });
          continue;
        }
        const r = req.type.kind === 'trigger' ? this.#placeOne(acct, req, { grouping, parent: parent.order }) : this.#placeOne(acct, req, { grouping: 'na' });
        out.push(r.status);
        if (r.order?.trigger !== undefined) children.push(r.order);
      }
      this.#linkSiblings(children);
      return out;
    }
    const tpsl: EngineOrder[] = [];
    for (const req of orders) {
      const positionTpsl = grouping === 'positionTpsl' && req.type.kind === 'trigger';
      const r = this.#placeOne(acct, req, { grouping: positionTpsl ? 'positionTpsl' : 'na', positionTpsl });
      out.push(r.status);
      if (positionTpsl && r.order !== undefined) tpsl.push(r.order);
    }
    this.#linkSiblings(tpsl);
    return out;
  }

  cancel(user: string, cancels: readonly { asset: number; oid: number }[]): CancelStatusWire[] {
    this.#runScheduledCancels();
    const acct = this.#accounts.get(user);
    return cancels.map(({ asset, oid }) => {
      const o = acct?.openOrders.get(oid);
      if (o === undefined || o.asset !== asset) return { error: ERR.cancel };
      this.#cancelOrder(o, 'canceled');
      return 'success';
    });
  }

  cancelByCloid(user: string, cancels: readonly { asset: number; cloid: string }[]): CancelStatusWire[] {
    this.#runScheduledCancels();
    const acct = this.#accounts.get(user);
    return cancels.map(({ asset, cloid }) => {
      const oid = acct?.cloids.get(cloid.toLowerCase());
      const o = oid === undefined ? undefined : acct?.openOrders.get(oid);
      if (o === undefined || o.asset !== asset) return { error: ERR.cancel };
      this.#cancelOrder(o, 'canceled');
      return 'success';
    });
  }

  /**
   * The `modify` action: cancels the open order `oidOrCloid` and places `order` in its place under
   * a NEW oid (as Hyperliquid does); the cloid of the replaced order may be reused.
   * Choice: the old order stays cancelled when the new one is rejected.
   */
  modify(user: string, oidOrCloid: number | string, order: OrderRequest): ActionResult {
    const r = this.#modifyOne(user, oidOrCloid, order);
    return typeof r === 'object' && 'error' in r ? { error: r.error } : { ok: true };
  }

  batchModify(user: string, modifies: readonly { oid: number | string; order: OrderRequest }[]): OrderStatusWire[] {
    return modifies.map((m) => this.#modifyOne(user, m.oid, m.order));
  }

  /**
   * Sets the leverage used for `asset`'s margin. Choice: isolated margin is accepted and recorded
   * but margined as cross.
   */
  updateLeverage(user: string, asset: number, isCross: boolean, leverage: number): ActionResult {
    const spec = this.#assets[asset];
    if (spec === undefined) return { error: ERR.invalidAsset };
    if (!Number.isInteger(leverage) || leverage < 1 || leverage > spec.maxLeverage) return { error: ERR.leverage };
    this.#account(user).leverage.set(asset, { value: leverage, isCross });
    return { ok: true };
  }

  /**
   * The dead-man's switch: at `time` every open order of the user is cancelled (scheduledCancel).
   * `time` must be ≥ now + 5 s; undefined clears it; at most 10 triggers per UTC day.
   * Choice: the "enough volume traded" precondition of the live exchange is not modelled.
   */
  scheduleCancel(user: string, time: number | undefined): ActionResult {
    this.#runScheduledCancels();
    const acct = this.#account(user);
    if (time === undefined) {
      acct.scheduledCancel = undefined;
      this.#scheduled.delete(acct);
      return { ok: true };
    }
    const now = this.#clock.now();
    if (time < now + 5000) return { error: ERR.scheduleTooEarly };
    if (acct.scheduledCancelDay === Math.floor(now / DAY) && acct.scheduledCancelCount >= 10) return { error: ERR.scheduleTooMany };
    acct.scheduledCancel = time;
    this.#scheduled.add(acct);
    return { ok: true };
  }

  // ───────────────────────────── info queries ─────────────────────────────

  meta(): MetaWire {
    const tables = [...new Set(this.#assets.map((a) => a.maxLeverage))].sort((a, b) => a - b);
    return {
      universe: this.#assets.map((a) => ({ name: a.name, szDecimals: a.szDecimals, maxLeverage: a.maxLeverage, marginTableId: a.maxLeverage })),
      marginTables: tables.map((l) => [l, { description: '', marginTiers: [{ lowerBound: '0.0', maxLeverage: l }] }]),
      collateralToken: 0,
    };
  }

  metaAndAssetCtxs(): [MetaWire, AssetCtxWire[]] {
    const now = this.#clock.now();
    const ctxs = this.#assets.map((_, asset): AssetCtxWire => {
      const mk = this.#market(asset);
      this.#pruneVolume(mk, now);
      const book = this.#book(asset);
      const bb = book.bids.bestPx();
      const ba = book.asks.bestPx();
      const mid = this.#midOf(asset);
      let oi = ZERO;
      for (const h of mk.holders) {
        const p = h.positions.get(asset);
        if (p !== undefined && p.szi.gt(0)) oi = oi.plus(p.szi);
      }
      const hour = Math.floor(now / HOUR);
      let prevDay = mk.hourlyMid.get(hour - 24);
      if (prevDay === undefined) for (const v of mk.hourlyMid.values()) { prevDay = v; break; }
      return {
        dayNtlVlm: money(mk.dayNtl),
        funding: toWire(mk.funding),
        impactPxs: bb !== undefined && ba !== undefined ? [toWire(bb), toWire(ba)] : null,
        markPx: mk.mark === undefined ? '0' : toWire(mk.mark),
        midPx: mid === undefined ? null : toWire(mid),
        openInterest: toWire(oi),
        oraclePx: mk.oracle === undefined ? '0' : toWire(mk.oracle),
        premium: mid !== undefined && mk.oracle !== undefined && !mk.oracle.isZero() ? toWire(mid.minus(mk.oracle).div(mk.oracle).toDecimalPlaces(8)) : null,
        prevDayPx: prevDay === undefined ? '0' : toWire(prevDay),
        dayBaseVlm: toWire(mk.dayBase),
      };
    });
    return [this.meta(), ctxs];
  }

  /** Mid per coin that has one: the book's mid when both sides exist, else the last block's mid. */
  allMids(): Record<string, string> {
    const out: Record<string, string> = {};
    this.#assets.forEach((a, asset) => {
      const mid = this.#midOf(asset);
      if (mid !== undefined) out[a.name] = toWire(mid);
    });
    return out;
  }

  clearinghouseState(user: string): ClearinghouseStateWire {
    const acct = this.#accounts.get(user);
    const time = this.#clock.now();
    const assetPositions: AssetPositionWire[] = [];
    let ntl = ZERO;
    let signedNtl = ZERO;
    let marginUsed = ZERO;
    let maint = ZERO;
    let upnlSum = ZERO;
    const positions = acct === undefined ? [] : [...acct.positions.values()].sort((a, b) => a.asset - b.asset);
    for (const p of positions) {
      const spec = this.#assets[p.asset] as AssetSpec;
      const mark = this.#markOf(p);
      const lev = this.#leverage(acct as Account, p.asset);
      const value = p.szi.abs().times(mark);
      const upnl = unrealizedPnl(p, mark);
      const used = value.div(lev);
      ntl = ntl.plus(value);
      signedNtl = signedNtl.plus(p.szi.times(mark));
      marginUsed = marginUsed.plus(used);
      maint = maint.plus(value.div(2 * spec.maxLeverage));
      upnlSum = upnlSum.plus(upnl);
      const initial = p.cost.abs().div(lev);
      assetPositions.push({
        type: 'oneWay',
        position: {
          coin: spec.name,
          szi: toWire(p.szi),
          leverage: { type: 'cross', value: lev },
          entryPx: toWire((entryPx(p) as Decimal).toDecimalPlaces(MONEY_DP)),
          positionValue: money(value),
          unrealizedPnl: money(upnl),
          returnOnEquity: initial.isZero() ? '0' : toWire(upnl.div(initial).toDecimalPlaces(MONEY_DP)),
          liquidationPx: null,
          marginUsed: money(used),
          maxLeverage: spec.maxLeverage,
          cumFunding: { allTime: money(p.cumFunding.allTime), sinceOpen: money(p.cumFunding.sinceOpen), sinceChange: money(p.cumFunding.sinceChange) },
        },
      });
    }
    const accountValue = (acct?.balance ?? ZERO).plus(upnlSum);
    // Cross liquidation price of each position, others held at their marks.
    for (const [i, p] of positions.entries()) {
      const spec = this.#assets[p.asset] as AssetSpec;
      const mark = this.#markOf(p);
      const r = ONE.div(2 * spec.maxLeverage);
      const maintOther = maint.minus(p.szi.abs().times(mark).times(r));
      const denom = p.szi.minus(p.szi.abs().times(r));
      const px = denom.isZero() ? ZERO : maintOther.minus(accountValue).plus(p.szi.times(mark)).div(denom);
      const wire = assetPositions[i] as AssetPositionWire;
      wire.position.liquidationPx = px.gt(0) ? toWire(px.toSignificantDigits(6)) : null;
    }
    const summary = { accountValue: money(accountValue), totalNtlPos: money(ntl), totalRawUsd: money(accountValue.minus(signedNtl)), totalMarginUsed: money(marginUsed) };
    const withdrawable = Decimal.max(ZERO, accountValue.minus(marginUsed));
    return { assetPositions, marginSummary: summary, crossMarginSummary: { ...summary }, crossMaintenanceMarginUsed: money(maint), withdrawable: money(withdrawable), time };
  }

  /** Live orders, newest first; normalTpsl children still waiting for their parent's fill are left out. */
  openOrders(user: string): OpenOrderWire[] {
    return this.#liveOrders(user).map((o) => {
      const w: OpenOrderWire = { coin: o.coin, limitPx: toWire(o.px), oid: o.oid, side: o.side, sz: toWire(o.sz), timestamp: o.timestamp, origSz: toWire(o.origSz) };
      if (o.cloid !== undefined) w.cloid = o.cloid;
      if (o.reduceOnly) w.reduceOnly = true;
      return w;
    });
  }

  /** Like openOrders with the frontend fields; waiting normalTpsl children appear under their parent's `children`. */
  frontendOpenOrders(user: string): FrontendOpenOrderWire[] {
    return this.#liveOrders(user).map((o) => this.#frontendOrder(o));
  }

  /** Newest first, at most 2000. */
  userFills(user: string, aggregateByTime = false): FillWire[] {
    const fills = this.#accounts.get(user)?.fills ?? [];
    const agg = aggregateByTime ? aggregate(fills) : fills.slice();
    return agg.reverse().slice(0, MAX_FILLS);
  }

  /** Fills with startTime ≤ time ≤ endTime, oldest first, at most 2000. */
  userFillsByTime(user: string, startTime: number, endTime?: number, aggregateByTime = false): FillWire[] {
    const fills = (this.#accounts.get(user)?.fills ?? []).filter((f) => f.time >= startTime && (endTime === undefined || f.time <= endTime));
    return (aggregateByTime ? aggregate(fills) : fills).slice(0, MAX_FILLS);
  }

  orderStatus(user: string, oid: number | string): OrderStatusInfoWire {
    const acct = this.#accounts.get(user);
    const id = typeof oid === 'number' ? oid : acct?.cloids.get(oid.toLowerCase());
    const o = id === undefined ? undefined : this.#orders.get(id);
    if (o === undefined || o.user !== user) return { status: 'unknownOid' };
    return { status: 'order', order: { order: this.#frontendOrder(o), status: o.status, statusTimestamp: o.statusTimestamp } };
  }

  /**
   * Book snapshot, ≤ 20 levels a side. With `nSigFigs` (2..5) prices are bucketed to that many
   * significant figures (bids down, asks up); `mantissa` (1, 2, 5) applies with nSigFigs = 5.
   * Unknown coin → null.
   */
  l2Book(coin: string, nSigFigs?: number | null, mantissa?: number | null): L2BookWire | null {
    const asset = this.#assetByCoin.get(coin);
    if (asset === undefined) return null;
    const book = this.#book(asset);
    const side = (isBid: boolean): L2LevelWire[] => {
      const out: { px: Decimal; sz: Decimal; n: number }[] = [];
      for (const level of (isBid ? book.bids : book.asks).levels) {
        const px = nSigFigs == null ? level.px : bucket(level.px, nSigFigs, nSigFigs === 5 ? mantissa ?? 1 : 1, isBid);
        let sz = ZERO;
        let n = 0;
        for (const o of level.orders) {
          sz = sz.plus(o.sz);
          n += o.n;
        }
        const last = out[out.length - 1];
        if (last !== undefined && last.px.eq(px)) {
          last.sz = last.sz.plus(sz);
          last.n += n;
        } else {
          if (out.length === 20) break;
          out.push({ px, sz, n });
        }
      }
      return out.map((l) => ({ px: toWire(l.px), sz: toWire(l.sz), n: l.n }));
    };
    return { coin, time: this.#clock.now(), levels: [side(true), side(false)] };
  }

  /** The coin's last trades (synthetic and user), oldest first, at most 100. Unknown coin → []. */
  recentTrades(coin: string): TradeWire[] {
    const asset = this.#assetByCoin.get(coin);
    return asset === undefined ? [] : this.#market(asset).recentTrades.slice();
  }

  /**
   * Fee schedule as `userFees` reports it (subset of the real fields; no volume tiers, no discounts).
   */
  userFees(_user: string): UserFeesWire {
    return {
      dailyUserVlm: [],
      feeSchedule: { cross: toWire(this.#takerFee), add: toWire(this.#makerFee), spotCross: '0.0007', spotAdd: '0.0004', tiers: { vip: [], mm: [] }, referralDiscount: '0.04', stakingDiscountTiers: [] },
      userCrossRate: toWire(this.#takerFee),
      userAddRate: toWire(this.#makerFee),
      userSpotCrossRate: '0.0007',
      userSpotAddRate: '0.0004',
      activeReferralDiscount: '0.0',
      trial: null,
      feeTrialReward: '0.0',
      nextTrialAvailableTimestamp: null,
      stakingLink: null,
      activeStakingDiscount: { bpsOfMaxSupply: '0.0', discount: '0.0' },
    };
  }

  /** Everything, for GET /_sim/state: users' accounts (not the market maker), open orders, all orders and fills. */
  groundTruth(): GroundTruth {
    const accounts = [...this.#accounts.values()].map((acct) => {
      let upnl = ZERO;
      const positions = [...acct.positions.values()].map((p) => {
        const mark = this.#markOf(p);
        const u = unrealizedPnl(p, mark);
        upnl = upnl.plus(u);
        return {
          coin: (this.#assets[p.asset] as AssetSpec).name,
          szi: toWire(p.szi),
          entryPx: toWire((entryPx(p) as Decimal).toDecimalPlaces(MONEY_DP)),
          cost: toWire(p.cost),
          markPx: toWire(mark),
          unrealizedPnl: toWire(u),
          leverage: this.#leverage(acct, p.asset),
          cumFunding: { allTime: toWire(p.cumFunding.allTime), sinceOpen: toWire(p.cumFunding.sinceOpen), sinceChange: toWire(p.cumFunding.sinceChange) },
        };
      });
      return { address: acct.address, balance: toWire(acct.balance), accountValue: toWire(acct.balance.plus(upnl)), positions, scheduledCancel: acct.scheduledCancel ?? null };
    });
    const orders = [...this.#orders.values()].map((o): GroundTruthOrder => ({
      oid: o.oid,
      cloid: o.cloid ?? null,
      user: o.user,
      coin: o.coin,
      side: o.side,
      px: toWire(o.px),
      sz: toWire(o.sz),
      origSz: toWire(o.origSz),
      filledSz: toWire(o.filled),
      reduceOnly: o.reduceOnly,
      isTrigger: o.trigger !== undefined,
      ...(o.trigger === undefined ? {} : { triggerPx: toWire(o.trigger.triggerPx), tpsl: o.trigger.tpsl, isMarket: o.trigger.isMarket }),
      tif: o.tif ?? null,
      status: o.status,
      statusTimestamp: o.statusTimestamp,
      timestamp: o.timestamp,
      grouping: o.grouping,
    }));
    const openOrders = orders.filter((o) => this.#orders.get(o.oid)?.status === 'open');
    return {
      time: this.#clock.now(),
      accounts,
      openOrders,
      orders,
      fills: this.#fillLog.map(({ user, fill }) => ({ user, ...fill })),
      feesCollected: toWire(this.#fees),
      totalFunded: toWire(this.#funded),
    };
  }

  /** Aggregates the conservation properties check. Not part of the wire API. */
  _internalTotals(): InternalTotals {
    let totalValue = ZERO;
    const netSize: Record<string, Decimal> = {};
    for (const a of this.#assets) netSize[a.name] = ZERO;
    const positions: InternalTotals['positions'] = [];
    for (const acct of [...this.#accounts.values(), this.#mm]) {
      totalValue = totalValue.plus(acct.balance);
      for (const p of acct.positions.values()) {
        const coin = (this.#assets[p.asset] as AssetSpec).name;
        totalValue = totalValue.plus(unrealizedPnl(p, this.#markOf(p)));
        netSize[coin] = (netSize[coin] as Decimal).plus(p.szi);
        positions.push({ user: acct.address, coin, szi: p.szi });
      }
    }
    return { funded: this.#funded, feesCollected: this.#fees, mmBalance: this.#mm.balance, totalValue, netSize, positions };
  }

  /** Every order the engine holds, for property tests (live records; do not mutate). */
  _allOrders(): readonly EngineOrder[] {
    return [...this.#orders.values()];
  }

  /** All prices present in a coin's book right now (both sides, every level). */
  _bookPrices(coin: string): { bids: Decimal[]; asks: Decimal[] } {
    const asset = this.#assetByCoin.get(coin);
    if (asset === undefined) return { bids: [], asks: [] };
    const b = this.#book(asset);
    return { bids: b.bids.levels.map((l) => l.px), asks: b.asks.levels.map((l) => l.px) };
  }

  // ───────────────────────────── placement ─────────────────────────────

  #placeOne(acct: Account, req: OrderRequest, ctx: PlaceContext): { status: OrderStatusWire; order?: EngineOrder } {
    const err = (error: string): { status: OrderStatusWire } => ({ status: { error } });
    const fault = this.#faults.reject?.();
    if (fault !== undefined) return err(fault);
    const spec = this.#assets[req.asset];
    if (spec === undefined || !Number.isInteger(req.asset)) return err(ERR.invalidAsset);
    if (req.sz.isZero()) return err(ERR.zeroSize);
    if (!isValidSize(req.sz, spec.szDecimals)) return err(ERR.invalidSize);
    if (!isValidPrice(req.px, spec.szDecimals)) return err(ERR.tick);
    const trigger: TriggerSpec | undefined = req.type.kind === 'trigger' ? { isMarket: req.type.isMarket, triggerPx: req.type.triggerPx, tpsl: req.type.tpsl } : undefined;
    if (trigger !== undefined && !isValidPrice(trigger.triggerPx, spec.szDecimals)) return err(ERR.tpsl);
    const cloid = req.cloid?.toLowerCase();
    if (cloid !== undefined && acct.cloids.has(cloid) && !(ctx.replacing !== undefined && ctx.replacing.cloid === cloid)) return err(ERR.cloid);
    const side: Side = req.isBuy ? 'B' : 'A';
    const isChild = ctx.parent !== undefined;
    const reduceOnly = req.reduceOnly || ctx.positionTpsl === true || isChild;
    const mk = this.#market(req.asset);
    if (trigger === undefined && mk.mark !== undefined && req.px.minus(mk.mark).abs().gt(mk.mark.times(PRICE_BAND))) return err(ERR.priceBand);
    if (!reduceOnly && req.px.times(req.sz).lt(MIN_NOTIONAL)) return err(ERR.minValue);
    if (reduceOnly && !isChild && this.#allowance(acct, req.asset, side).lte(0)) return err(ERR.reduceOnly);
    const book = this.#book(req.asset);
    const tif: Tif | undefined = req.type.kind === 'limit' ? req.type.tif : undefined;
    if (tif === 'Alo') {
      const best = book.opposite(side).bestPx();
      if (best !== undefined && (side === 'B' ? req.px.gte(best) : req.px.lte(best))) {
        const bid = book.bids.bestPx();
        const ask = book.asks.bestPx();
        return err(`Post only order would have immediately matched, bbo was ${bid === undefined ? '0' : toWire(bid)}@${ask === undefined ? '0' : toWire(ask)}.`);
      }
    }
    if (trigger === undefined && !reduceOnly && !this.#marginOk(acct, req.asset, side, req.px, req.sz)) return err(ERR.margin);
    if (tif === 'FrontendMarket' && book.opposite(side).best() === undefined) return err(ERR.noLiquidity);

    const now = this.#clock.now();
    const parent = ctx.parent;
    const order: EngineOrder = {
      oid: this.#nextOid++,
      cloid,
      user: acct.address,
      coin: spec.name,
      asset: req.asset,
      side,
      px: req.px,
      sz: req.sz,
      origSz: req.sz,
      filled: ZERO,
      cancelled: ZERO,
      filledNtl: ZERO,
      reduceOnly,
      tif,
      trigger,
      status: 'open',
      statusTimestamp: now,
      timestamp: now,
      grouping: ctx.grouping,
      isPositionTpsl: ctx.positionTpsl === true,
      parentOid: parent?.oid,
      childOids: [],
      siblingOids: [],
      waitingForFill: parent !== undefined && parent.filled.isZero() && parent.status === 'open',
      triggered: false,
      resting: false,
      isMM: false,
      n: 1,
    };
    this.#orders.set(order.oid, order);
    if (cloid !== undefined) acct.cloids.set(cloid, order.oid);

    if (trigger !== undefined) {
      this.#setLive(acct, order);
      parent?.childOids.push(order.oid);
      if (order.waitingForFill) return { status: 'waitingForFill', order };
      this.#market(req.asset).triggers.add(order);
      this.#emitUpdate(order);
      return { status: 'waitingForTrigger', order };
    }

    let maxSz = order.sz;
    const f = this.#faults.partialFill?.();
    if (f !== undefined && f > 0 && f < 1) maxSz = roundSize(order.sz.times(f), spec.szDecimals);
    this.#match(order, order.px, maxSz, undefined);
    this.#flushTrades(req.asset);
    const withCloid = <T extends object>(w: T): T => (cloid === undefined ? w : { ...w, cloid });
    const filledWire = (): OrderStatusWire => ({ filled: withCloid({ totalSz: toWire(order.filled), avgPx: this.#avgPx(order), oid: order.oid }) });

    if (order.sz.isZero()) {
      this.#setStatus(order, 'filled');
      return { status: filledWire(), order };
    }
    if (reduceOnly && this.#allowance(acct, order.asset, side).lte(0)) {
      this.#finish(order, 'reduceOnlyCanceled');
      return { status: order.filled.isZero() ? { error: ERR.reduceOnly } : filledWire(), order };
    }
    if (tif === 'Ioc' || tif === 'FrontendMarket') {
      if (order.filled.isZero()) {
        this.#finish(order, 'rejected', false);
        return { status: { error: ERR.iocNoMatch }, order };
      }
      this.#finish(order, 'canceled');
      return { status: filledWire(), order };
    }
    // Choice: a Gtc/Alo order partly filled with the rest resting reports `resting`, as the exchange does.
    this.#rest(order);
    return { status: { resting: withCloid({ oid: order.oid }) }, order };
  }

  #modifyOne(user: string, oidOrCloid: number | string, req: OrderRequest): OrderStatusWire {
    this.#runScheduledCancels();
    const acct = this.#accounts.get(user);
    const oid = typeof oidOrCloid === 'number' ? oidOrCloid : acct?.cloids.get(oidOrCloid.toLowerCase());
    const old = oid === undefined ? undefined : acct?.openOrders.get(oid);
    if (acct === undefined || old === undefined) return { error: ERR.modify };
    this.#cancelOrder(old, 'canceled');
    return this.#placeOne(acct, req, { grouping: 'na', replacing: old }).status;
  }

  #linkSiblings(orders: EngineOrder[]): void {
    if (orders.length < 2) return;
    for (const o of orders) o.siblingOids = orders.filter((x) => x !== o).map((x) => x.oid);
  }

  /** Puts a (non-trigger or triggered) order's remainder in the book. */
  #rest(order: EngineOrder): void {
    this.#book(order.asset).add(order);
    this.#setLive(this.#account(order.user), order);
    if (!order.reduceOnly) this.#addNtl(order, order.px.times(order.sz));
    this.#setStatus(order, 'open');
  }

  // ───────────────────────────── matching ─────────────────────────────

  /** Trades `taker` against the opposite side while it crosses `limit` (undefined = any price). */
  #match(taker: EngineOrder, limit: Decimal | undefined, maxSz: Decimal, liq: LiquidationTag | undefined): void {
    const book = this.#book(taker.asset);
    const side = book.opposite(taker.side);
    const takerAcct = this.#account(taker.user);
    let budget = maxSz;
    while (budget.gt(0) && taker.sz.gt(0)) {
      const level = side.best();
      if (level === undefined || !side.crosses(level.px, limit)) break;
      const maker = level.orders[0] as EngineOrder;
      // Self-trade prevention: the resting order of the same user is cancelled (expire maker).
      if (!taker.isMM && maker.user === taker.user) {
        this.#cancelOrder(maker, 'canceled');
        continue;
      }
      let q = Decimal.min(budget, taker.sz, maker.sz);
      if (taker.reduceOnly) {
        const a = this.#allowance(takerAcct, taker.asset, taker.side);
        if (a.lte(0)) break;
        q = Decimal.min(q, a);
      }
      if (maker.reduceOnly) {
        const a = this.#allowance(this.#account(maker.user), maker.asset, maker.side);
        if (a.lte(0)) {
          this.#cancelOrder(maker, 'reduceOnlyCanceled');
          continue;
        }
        q = Decimal.min(q, a);
      }
      this.#trade(taker, maker, level.px, q, liq);
      budget = budget.minus(q);
      if (maker.resting && maker.reduceOnly && this.#allowance(this.#account(maker.user), maker.asset, maker.side).lte(0)) {
        this.#cancelOrder(maker, 'reduceOnlyCanceled');
      }
    }
  }

  /** One trade of `q` at `px`: both positions, fees, fills, maker bookkeeping. */
  #trade(taker: EngineOrder, maker: EngineOrder, px: Decimal, q: Decimal, liq: LiquidationTag | undefined): void {
    const tid = ++this.#tid;
    const hash = tradeHash(tid);
    const time = this.#clock.now();
    const asset = taker.asset;
    const coin = taker.coin;
    const flats: Account[] = [];
    for (const [order, crossed] of [[taker, true], [maker, false]] as const) {
      const acct = this.#account(order.user);
      const change = applyFill(acct, asset, order.side, q, px);
      const holders = this.#market(asset).holders;
      if (change.endPosition.isZero()) holders.delete(acct);
      else holders.add(acct);
      if (!change.endPosition.isZero() && !change.startPosition.isZero() && change.endPosition.isPositive() === change.startPosition.isPositive()) {
        // Position kept its side: reduce-only orders are still valid.
      } else if (!acct.isMM) flats.push(acct);
      const fee = acct.isMM ? ZERO : px.times(q).times(crossed ? this.#takerFee : this.#makerFee).toDecimalPlaces(MONEY_DP);
      acct.balance = acct.balance.minus(fee);
      this.#fees = this.#fees.plus(fee);
      const firstFill = order.filled.isZero();
      order.sz = order.sz.minus(q);
      order.filled = order.filled.plus(q);
      order.filledNtl = order.filledNtl.plus(px.times(q));
      if (order.resting && !order.reduceOnly) this.#addNtl(order, px.times(q).neg());
      if (!acct.isMM) {
        const fill: FillWire = {
          coin,
          px: toWire(px),
          sz: toWire(q),
          side: order.side,
          time,
          startPosition: toWire(change.startPosition),
          dir: change.dir,
          closedPnl: money(change.closedPnl),
          hash,
          oid: order.oid,
          crossed,
          fee: toWire(fee),
          feeToken: 'USDC',
          tid,
        };
        if (order.cloid !== undefined) fill.cloid = order.cloid;
        if (liq !== undefined && order === taker) fill.liquidation = { liquidatedUser: liq.liquidatedUser, markPx: liq.markPx, method: liq.method };
        acct.fills.push(fill);
        this.#fillLog.push({ user: acct.address, fill });
        this.#emit({ kind: 'fill', user: acct.address, fill });
      }
      if (firstFill && order.childOids.length > 0) this.#activateChildren(order);
    }
    if (maker.sz.isZero()) {
      if (maker.resting) this.#book(asset).remove(maker);
      if (!maker.isMM) {
        this.#unsetLive(this.#account(maker.user), maker);
        this.#setStatus(maker, 'filled');
      }
    }
    const buyer = taker.side === 'B' ? taker.user : maker.user;
    const seller = taker.side === 'B' ? maker.user : taker.user;
    this.#pendingTrades.push({ coin, side: taker.side, px: toWire(px), sz: toWire(q), hash, time, tid, users: [buyer, seller] });
    this.#recordVolume(asset, time, px.times(q), q);
    for (const acct of flats) this.#cancelStaleReduceOnly(acct, asset);
  }

  #flushTrades(asset: number): void {
    if (this.#pendingTrades.length === 0) return;
    const trades = this.#pendingTrades.splice(0);
    this.#pushRecent(asset, trades);
    this.#emit({ kind: 'trades', coin: (this.#assets[asset] as AssetSpec).name, trades });
  }

  #activateChildren(parent: EngineOrder): void {
    for (const oid of parent.childOids) {
      const child = this.#orders.get(oid);
      if (child === undefined || !child.waitingForFill || child.status !== 'open') continue;
      child.waitingForFill = false;
      this.#market(child.asset).triggers.add(child);
      this.#emitUpdate(child);
    }
  }

  #setLive(acct: Account, o: EngineOrder): void {
    acct.openOrders.set(o.oid, o);
    if (o.reduceOnly) acct.reduceOnlyOrders.add(o);
  }

  #unsetLive(acct: Account, o: EngineOrder): void {
    acct.openOrders.delete(o.oid);
    acct.reduceOnlyOrders.delete(o);
  }

  /** Cancels the user's reduce-only orders in `asset` that can no longer reduce the position. */
  #cancelStaleReduceOnly(acct: Account, asset: number): void {
    if (acct.reduceOnlyOrders.size === 0) return;
    for (const o of [...acct.reduceOnlyOrders]) {
      if (o.asset !== asset || !o.reduceOnly || o.waitingForFill) continue;
      if (this.#allowance(acct, asset, o.side).lte(0)) this.#cancelOrder(o, 'reduceOnlyCanceled');
    }
  }

  // ───────────────────────────── order lifecycle ─────────────────────────────

  /** Cancels a live user order with `status`; a parent cancelled before any fill takes its waiting children along. */
  #cancelOrder(order: EngineOrder, status: OrderState): void {
    if (order.isMM) {
      if (order.resting) this.#book(order.asset).remove(order);
      return;
    }
    if (order.resting) {
      this.#book(order.asset).remove(order);
      if (!order.reduceOnly) this.#addNtl(order, order.px.times(order.sz).neg());
    }
    this.#market(order.asset).triggers.delete(order);
    this.#finish(order, status);
    for (const oid of order.childOids) {
      const child = this.#orders.get(oid);
      const childStatus = status === 'scheduledCancel' || status === 'liquidatedCanceled' ? status : 'canceled';
      if (child !== undefined && child.waitingForFill && child.status === 'open') this.#cancelOrder(child, childStatus);
    }
  }

  /** Ends an order that is not in the book: its remainder counts as cancelled. */
  #finish(order: EngineOrder, status: OrderState, emit = true): void {
    const remaining = order.sz;
    order.cancelled = order.cancelled.plus(remaining);
    this.#unsetLive(this.#account(order.user), order);
    order.status = status;
    order.statusTimestamp = this.#clock.now();
    // As on the venue, the update of a cancelled order carries the size that was still open.
    if (emit) this.#emitUpdate(order, remaining);
    order.sz = ZERO;
  }

  #setStatus(order: EngineOrder, status: OrderState): void {
    order.status = status;
    order.statusTimestamp = this.#clock.now();
    this.#emitUpdate(order);
  }

  #emitUpdate(o: EngineOrder, sz: Decimal = o.sz): void {
    if (o.isMM) return;
    const order: Extract<ExchangeEvent, { kind: 'orderUpdate' }>['update']['order'] = {
      coin: o.coin,
      side: o.side,
      limitPx: toWire(o.px),
      sz: toWire(sz),
      oid: o.oid,
      timestamp: o.timestamp,
      origSz: toWire(o.origSz),
    };
    if (o.cloid !== undefined) order.cloid = o.cloid;
    this.#emit({ kind: 'orderUpdate', user: o.user, update: { order, status: o.status, statusTimestamp: o.statusTimestamp } });
  }

  // ───────────────────────────── triggers, liquidation, funding, schedule ─────────────────────────────

  #checkTriggers(asset: number): void {
    const mk = this.#market(asset);
    const mark = mk.mark;
    if (mark === undefined || mk.triggers.size === 0) return;
    for (const o of [...mk.triggers]) {
      if (!mk.triggers.has(o) || o.trigger === undefined) continue;
      const t = o.trigger;
      // A sell stop fires on a fall, a sell take-profit on a rise; buys the other way round.
      const fallFires = (o.side === 'A') === (t.tpsl === 'sl');
      const fires = fallFires ? mark.lte(t.triggerPx) : mark.gte(t.triggerPx);
      if (fires) this.#fireTrigger(o, mark);
    }
  }

  #fireTrigger(o: EngineOrder, mark: Decimal): void {
    const mk = this.#market(o.asset);
    mk.triggers.delete(o);
    o.triggered = true;
    this.#setStatus(o, 'triggered');
    for (const oid of o.siblingOids) {
      const s = this.#orders.get(oid);
      if (s !== undefined && s.status === 'open' && !s.triggered) this.#cancelOrder(s, 'siblingFilledCanceled');
    }
    const acct = this.#account(o.user);
    const spec = this.#assets[o.asset] as AssetSpec;
    if (o.reduceOnly && this.#allowance(acct, o.asset, o.side).lte(0)) {
      this.#finish(o, 'reduceOnlyCanceled');
      return;
    }
    const isMarket = o.trigger?.isMarket === true;
    const limit = isMarket
      ? roundPrice(o.side === 'B' ? mark.times(ONE.plus(SLIPPAGE)) : mark.times(ONE.minus(SLIPPAGE)), spec.szDecimals, o.side === 'B' ? 'down' : 'up')
      : o.px;
    if (!o.reduceOnly && !this.#marginOk(acct, o.asset, o.side, limit, o.sz)) {
      this.#finish(o, 'marginCanceled');
      return;
    }
    // While it executes it is a taker, not a live order: the stale reduce-only sweep must not see it.
    this.#unsetLive(acct, o);
    this.#match(o, limit, o.sz, undefined);
    this.#flushTrades(o.asset);
    if (o.sz.isZero()) this.#setStatus(o, 'filled');
    else if (o.reduceOnly && this.#allowance(acct, o.asset, o.side).lte(0)) this.#finish(o, 'reduceOnlyCanceled');
    else if (isMarket) this.#finish(o, 'canceled');
    else this.#rest(o);
  }

  #checkLiquidations(asset: number): void {
    const mk = this.#market(asset);
    for (const acct of [...mk.holders]) {
      if (acct.isMM || acct.positions.size === 0) continue;
      let upnl = ZERO;
      let maint = ZERO;
      let ntl = ZERO;
      for (const p of acct.positions.values()) {
        const mark = this.#markOf(p);
        upnl = upnl.plus(unrealizedPnl(p, mark));
        const value = p.szi.abs().times(mark);
        ntl = ntl.plus(value);
        maint = maint.plus(value.div(2 * (this.#assets[p.asset] as AssetSpec).maxLeverage));
      }
      const av = acct.balance.plus(upnl);
      if (av.gte(maint)) continue;
      this.#liquidate(acct, av, ntl);
    }
  }

  /**
   * Closes every position of `acct` against the book at market; what the book cannot absorb the
   * market maker takes at mark (backstop). Choice: a negative balance left over is covered by the
   * market maker (insurance), so value stays conserved and no user ends below zero.
   */
  #liquidate(acct: Account, av: Decimal, ntl: Decimal): void {
    const cancelled: { coin: string; oid: number }[] = [];
    for (const o of [...acct.openOrders.values()]) {
      cancelled.push({ coin: o.coin, oid: o.oid });
      this.#cancelOrder(o, 'liquidatedCanceled');
    }
    if (cancelled.length > 0) this.#emit({ kind: 'nonUserCancel', user: acct.address, cancels: cancelled });
    this.#emit({
      kind: 'liquidation',
      user: acct.address,
      liquidation: { lid: ++this.#lid, liquidator: MM_ADDRESS, liquidated_user: acct.address, liquidated_ntl_pos: money(ntl), liquidated_account_value: money(av) },
    });
    const now = this.#clock.now();
    for (const p of [...acct.positions.values()]) {
      const spec = this.#assets[p.asset] as AssetSpec;
      const mark = this.#markOf(p);
      const side: Side = p.szi.isPositive() ? 'A' : 'B';
      const sz = p.szi.abs();
      const order: EngineOrder = {
        oid: this.#nextOid++, cloid: undefined, user: acct.address, coin: spec.name, asset: p.asset, side, px: mark, sz, origSz: sz,
        filled: ZERO, cancelled: ZERO, filledNtl: ZERO, reduceOnly: true, tif: 'Ioc', trigger: undefined, status: 'open',
        statusTimestamp: now, timestamp: now, grouping: 'na', isPositionTpsl: false, parentOid: undefined, childOids: [], siblingOids: [],
        waitingForFill: false, triggered: false, resting: false, isMM: false, n: 1,
      };
      this.#orders.set(order.oid, order);
      this.#match(order, undefined, sz, { liquidatedUser: acct.address, markPx: toWire(mark), method: 'market' });
      if (order.sz.gt(0)) {
        const backstop = this.#mmOrder(p.asset, side === 'A' ? 'B' : 'A', mark, order.sz, 1);
        this.#trade(order, backstop, mark, order.sz, { liquidatedUser: acct.address, markPx: toWire(mark), method: 'backstop' });
      }
      this.#flushTrades(p.asset);
      this.#setStatus(order, 'filled');
    }
    if (acct.balance.isNegative()) {
      this.#mm.balance = this.#mm.balance.plus(acct.balance);
      acct.balance = ZERO;
    }
  }

  /** Hourly funding at the first block past an hour boundary: payment = szi × oraclePx × rate, paid by longs when positive. */
  #applyFunding(asset: number, block: MarketBlock): void {
    const mk = this.#market(asset);
    const hour = Math.floor(this.#clock.now() / HOUR);
    if (mk.lastFundingHour === undefined || hour <= mk.lastFundingHour) {
      mk.lastFundingHour ??= hour;
      return;
    }
    mk.lastFundingHour = hour;
    const time = hour * HOUR;
    const rate = block.fundingRate;
    for (const acct of mk.holders) {
      const p = acct.positions.get(asset);
      if (p === undefined) continue;
      const paid = p.szi.times(block.oraclePx).times(rate);
      acct.balance = acct.balance.minus(paid);
      p.cumFunding.allTime = p.cumFunding.allTime.plus(paid);
      p.cumFunding.sinceOpen = p.cumFunding.sinceOpen.plus(paid);
      p.cumFunding.sinceChange = p.cumFunding.sinceChange.plus(paid);
      if (!acct.isMM) {
        this.#emit({ kind: 'funding', user: acct.address, funding: { time, coin: block.coin, usdc: toWire(paid.neg()), szi: toWire(p.szi), fundingRate: toWire(rate) } });
      }
    }
  }

  #runScheduledCancels(): void {
    if (this.#scheduled.size === 0) return;
    const now = this.#clock.now();
    for (const acct of [...this.#scheduled]) {
      const t = acct.scheduledCancel;
      if (t === undefined || t > now) continue;
      this.#scheduled.delete(acct);
      acct.scheduledCancel = undefined;
      const day = Math.floor(t / DAY);
      if (acct.scheduledCancelDay !== day) {
        acct.scheduledCancelDay = day;
        acct.scheduledCancelCount = 0;
      }
      acct.scheduledCancelCount++;
      for (const o of [...acct.openOrders.values()]) if (o.status === 'open') this.#cancelOrder(o, 'scheduledCancel');
    }
  }

  // ───────────────────────────── margin ─────────────────────────────

  /** How much an order on `side` may still reduce the position (0 when it would only increase it). */
  #allowance(acct: Account, asset: number, side: Side): Decimal {
    const szi = acct.positions.get(asset)?.szi ?? ZERO;
    if (side === 'B') return szi.isNegative() ? szi.neg() : ZERO;
    return szi.isPositive() ? szi : ZERO;
  }

  #leverage(acct: Account, asset: number): number {
    return acct.leverage.get(asset)?.value ?? Math.min(20, (this.#assets[asset] as AssetSpec).maxLeverage);
  }

  /**
   * accountValue − (position margin + margin reserved by resting non-reduce-only orders) must cover
   * the new order's margin; the part of the order that would reduce an opposite position is free.
   */
  #marginOk(acct: Account, asset: number, side: Side, px: Decimal, sz: Decimal): boolean {
    if (acct.isMM) return true;
    let free = acct.balance;
    for (const p of acct.positions.values()) {
      const mark = this.#markOf(p);
      free = free.plus(unrealizedPnl(p, mark)).minus(p.szi.abs().times(mark).div(this.#leverage(acct, p.asset)));
    }
    for (const [a, ntl] of acct.openNtl) if (!ntl.isZero()) free = free.minus(ntl.div(this.#leverage(acct, a)));
    const opp = this.#allowance(acct, asset, side);
    const eff = Decimal.max(ZERO, sz.minus(opp));
    return free.gte(px.times(eff).div(this.#leverage(acct, asset)));
  }

  #addNtl(order: EngineOrder, delta: Decimal): void {
    if (order.isMM) return;
    const m = this.#account(order.user).openNtl;
    m.set(order.asset, (m.get(order.asset) ?? ZERO).plus(delta));
  }

  // ───────────────────────────── helpers ─────────────────────────────

  #account(user: string): Account {
    if (user === MM_ADDRESS) return this.#mm;
    let acct = this.#accounts.get(user);
    if (acct === undefined) {
      acct = newAccount(user);
      this.#accounts.set(user, acct);
    }
    return acct;
  }

  #book(asset: number): OrderBook {
    return this.#books[asset] as OrderBook;
  }

  #market(asset: number): Market {
    return this.#markets[asset] as Market;
  }

  /** Mark of the position's asset; before any block, its entry price (zero unrealized PnL). */
  #markOf(p: Position): Decimal {
    return this.#market(p.asset).mark ?? (entryPx(p) as Decimal);
  }

  #midOf(asset: number): Decimal | undefined {
    const book = this.#book(asset);
    const bb = book.bids.bestPx();
    const ba = book.asks.bestPx();
    if (bb !== undefined && ba !== undefined) return bb.plus(ba).div(2);
    return this.#market(asset).mid;
  }

  #mmOrder(asset: number, side: Side, px: Decimal, sz: Decimal, n: number): EngineOrder {
    const now = this.#clock.now();
    return {
      oid: this.#nextMmOid--, cloid: undefined, user: MM_ADDRESS, coin: (this.#assets[asset] as AssetSpec).name, asset, side, px, sz, origSz: sz,
      filled: ZERO, cancelled: ZERO, filledNtl: ZERO, reduceOnly: false, tif: 'Gtc', trigger: undefined, status: 'open',
      statusTimestamp: now, timestamp: now, grouping: 'na', isPositionTpsl: false, parentOid: undefined, childOids: [], siblingOids: [],
      waitingForFill: false, triggered: false, resting: false, isMM: true, n: Math.max(1, n),
    };
  }

  #avgPx(o: EngineOrder): string {
    return o.filled.isZero() ? '0' : toWire(o.filledNtl.div(o.filled).toSignificantDigits(8));
  }

  #liveOrders(user: string): EngineOrder[] {
    const acct = this.#accounts.get(user);
    if (acct === undefined) return [];
    return [...acct.openOrders.values()].filter((o) => !o.waitingForFill).sort((a, b) => b.oid - a.oid);
  }

  #frontendOrder(o: EngineOrder): FrontendOpenOrderWire {
    const t = o.trigger;
    // A finished, unfilled order shows the size that was still open when it ended (venue style),
    // so origSz − sz is always what filled.
    const sz = o.sz.isZero() && o.status !== 'filled' ? o.origSz.minus(o.filled) : o.sz;
    const children = o.childOids
      .map((id) => this.#orders.get(id))
      .filter((c): c is EngineOrder => c !== undefined && c.waitingForFill && c.status === 'open')
      .map((c) => this.#frontendOrder(c));
    return {
      coin: o.coin,
      side: o.side,
      limitPx: toWire(o.px),
      sz: toWire(sz),
      oid: o.oid,
      timestamp: o.timestamp,
      triggerCondition: t === undefined ? 'N/A' : `Price ${(o.side === 'A') === (t.tpsl === 'sl') ? 'below' : 'above'} ${toWire(t.triggerPx)}`,
      isTrigger: t !== undefined,
      triggerPx: t === undefined ? '0' : toWire(t.triggerPx),
      children,
      isPositionTpsl: o.isPositionTpsl,
      reduceOnly: o.reduceOnly,
      orderType: t === undefined ? 'Limit' : `${t.tpsl === 'tp' ? 'Take Profit' : 'Stop'} ${t.isMarket ? 'Market' : 'Limit'}`,
      origSz: toWire(o.origSz),
      tif: o.tif ?? null,
      cloid: o.cloid ?? null,
    };
  }

  #recordVolume(asset: number, time: number, ntl: Decimal, base: Decimal): void {
    const mk = this.#market(asset);
    mk.volume.push({ time, ntl, base });
    mk.dayNtl = mk.dayNtl.plus(ntl);
    mk.dayBase = mk.dayBase.plus(base);
    this.#pruneVolume(mk, time);
  }

  #pruneVolume(mk: Market, now: number): void {
    while (mk.volHead < mk.volume.length && (mk.volume[mk.volHead] as { time: number }).time <= now - DAY) {
      const v = mk.volume[mk.volHead++] as { ntl: Decimal; base: Decimal };
      mk.dayNtl = mk.dayNtl.minus(v.ntl);
      mk.dayBase = mk.dayBase.minus(v.base);
    }
    if (mk.volHead > 4096 && mk.volHead * 2 > mk.volume.length) {
      mk.volume.splice(0, mk.volHead);
      mk.volHead = 0;
    }
  }

  #pushRecent(asset: number, trades: TradeWire[]): void {
    const r = this.#market(asset).recentTrades;
    r.push(...trades);
    if (r.length > RECENT_TRADES) r.splice(0, r.length - RECENT_TRADES);
  }

  #emit(event: ExchangeEvent): void {
    for (const l of this.#listeners.slice()) l(event);
  }
}

/** l2Book price bucketing: `nSig` significant figures times `mantissa`, bids down, asks up. */
function bucket(px: Decimal, nSig: number, mantissa: number, isBid: boolean): Decimal {
  const exp = px.e - nSig + 1;
  const tick = new Decimal(10).pow(exp).times(mantissa);
  const q = px.div(tick);
  return (isBid ? q.floor() : q.ceil()).times(tick);
}

/** userFills' aggregateByTime: consecutive fills of one order at one time become one (VWAP px, summed sz/fee/pnl). */
function aggregate(fills: readonly FillWire[]): FillWire[] {
  const out: FillWire[] = [];
  let acc: { f: FillWire; sz: Decimal; ntl: Decimal; fee: Decimal; pnl: Decimal } | undefined;
  const flush = (): void => {
    if (acc === undefined) return;
    out.push({ ...acc.f, sz: toWire(acc.sz), px: toWire(acc.ntl.div(acc.sz).toSignificantDigits(8)), fee: toWire(acc.fee), closedPnl: money(acc.pnl) });
    acc = undefined;
  };
  for (const f of fills) {
    if (acc !== undefined && acc.f.oid === f.oid && acc.f.time === f.time) {
      const sz = new Decimal(f.sz);
      acc.sz = acc.sz.plus(sz);
      acc.ntl = acc.ntl.plus(sz.times(f.px));
      acc.fee = acc.fee.plus(f.fee);
      acc.pnl = acc.pnl.plus(f.closedPnl);
      continue;
    }
    flush();
    const sz = new Decimal(f.sz);
    acc = { f, sz, ntl: sz.times(f.px), fee: new Decimal(f.fee), pnl: new Decimal(f.closedPnl) };
  }
  flush();
  return out;
}
