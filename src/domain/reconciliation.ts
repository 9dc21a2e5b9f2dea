/**
 * Reconciliation: our books (orders, fills, positions from the database) against the exchange's
 * (open orders, order statuses, fills, positions), as one PURE function
 * `reconcile(local, venue, opts) → { actions, report }`. Boot, the periodic loop and
 * `keel reconcile` all run it; a thin I/O shell fetches, calls it and carries the actions out.
 * The exchange is the truth for what it holds; an unknown outcome stays unknown until proved.
 *
 * Invariants (property-tested in tests/property/reconciliation.test.ts):
 * 1. Never cancels an order that is not ours: only venue orders whose cloid carries our runtime
 *    prefix are ever cancelled or adopted. Every other open order (no cloid, a foreign prefix: the
 *    operator's manual orders) gets exactly one `reportExternal` and is left alone.
 * 2. Never concludes "never placed" early: a `submitting` / `unknown` order not on the book is
 *    resolved as rejected only on `found: false` after `expiresAfter + expirySlackMs`. Every such
 *    order gets a `resolveOrder`, or stays pending because its status is not conclusive yet (not
 *    found before expiry, no expiry to prove it by, no status given, an unrecognised status).
 * 3. The open-orders list wins for the orders on it; statuses are read only for ours that are not.
 * 4. A fill is keyed by (tid, oid), the fills table's key: one we hold, or one listed twice, is
 *    never applied twice.
 * 5. After `applyActions(local, actions)`: every position equals the venue's; every open venue
 *    order with our prefix is known locally; and `reconcile` again yields only `reportExternal`
 *    (idempotence).
 * 6. `report.clean` ⇔ no action other than `reportExternal` / `applyFill` and nothing pending
 *    (missed fills are routine bookkeeping; everything else is a difference to act on or explain).
 * 7. Deterministic: the same inputs give the same actions in the same order (sorted by cloid, oid,
 *    coin, fill time); no clock is read (`venue.now` is the time of the snapshot).
 *
 * Action order is the order the shell must apply them in: resolutions, fills, positions, adopted
 * and cancelled orders, protection, external reports (`adoptPosition.to` is absolute and assumes
 * the fills before it are applied).
 *
 * What the I/O shell must do around it:
 * - fetch the venue first (open orders, positions, fills since the last fill time minus a margin),
 *   THEN load the local state (an order sent before the snapshot was committed before it, so it is
 *   never mistaken for a lost one), then take `now` and query `orderStatus` for `cloidsToQuery`;
 * - while running, a `resolveOrder` / `applyFill` for a cloid a live order actor owns goes to that
 *   actor as a venue report / fill, never behind its back into the database;
 * - `protectPosition` asks the order manager for a reduce-only stop covering `szi` (it places,
 *   then commits, as any protective order); `adoptPosition` to zero lets the manager cancel that
 *   position's protection.
 */
import { Decimal, ZERO, maxDec, minDec } from './decimal.ts';
import { TERMINAL_ORDER_STATES } from './types.ts';
import type { Cloid, Coin, Fill, OrderKind, OrderState, Side, VenueOrder, VenueOrderStatus } from './types.ts';

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/** One of our orders as the database holds it (`OrderRecord` from the store fits). */
export interface LocalOrder {
  readonly cloid: Cloid;
  readonly state: OrderState;
  readonly kind: OrderKind;
  readonly coin: Coin;
  readonly side: Side;
  readonly sz: Decimal;
  readonly filledSz: Decimal;
  readonly oid?: number;
  /** Absolute ms after which the venue refuses the order (set when it was sent). */
  readonly expiresAfter?: number;
  readonly reduceOnly: boolean;
  readonly trigger?: { readonly triggerPx: Decimal; readonly tpsl: 'tp' | 'sl'; readonly isMarket: boolean };
}

/** Our position in one coin (`PositionRecord` from the store fits). */
export interface LocalPosition {
  /** Signed size: + long, − short. */
  readonly szi: Decimal;
  readonly stopCloid?: Cloid;
  readonly tpCloids?: readonly Cloid[];
}

export interface FillKey {
  readonly tid: number;
  readonly oid: number;
}

export interface LocalState {
  readonly orders: readonly LocalOrder[];
  /** The (tid, oid) of every fill we hold. */
  readonly fills: readonly FillKey[];
  readonly positions: ReadonlyMap<Coin, LocalPosition>;
}

export interface VenueSnapshot {
  readonly openOrders: readonly VenueOrder[];
  /** `orderStatus` answers, by cloid, for `cloidsToQuery(local, openOrders)`. */
  readonly statuses: ReadonlyMap<Cloid, VenueOrderStatus>;
  /** Fills since the shell's start time (any order, oldest first or not). */
  readonly fills: readonly Fill[];
  /** Signed sizes; a missing coin is flat. */
  readonly positions: ReadonlyMap<Coin, Decimal>;
  /** Mids, when known: tell a stop from a take profit among orders we hold no record of. */
  readonly marks?: ReadonlyMap<Coin, Decimal>;
  /** Clock time (ms) taken before the status queries. */
  readonly now: number;
}

export interface ReconcileOptions {
  /** This database's runtime prefix: 8 lowercase hex (our cloids are `0x` + prefix + 24 hex). */
  readonly prefix: string;
  /** `boot`: nothing is live yet, so stale work from before the crash is cleaned up. `running`: live actors own their orders. */
  readonly phase: 'boot' | 'running';
  /** Cancel our working entry orders (Emergency's effect). */
  readonly cancelEntries?: boolean;
  /** Margin for the venue's clock after `expiresAfter` before "not found" proves absence. Default 2000 ms. */
  readonly expirySlackMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------------------------

export const CANCEL_REASONS = ['lost_entry', 'orphan_protective', 'stale_entry', 'entries_cancelled', 'duplicate_entry'] as const;
/**
 * - lost_entry: ours and resting, but the database says terminal or has no row: an entry nobody
 *   vouches for any more;
 * - orphan_protective: a reduce-only order of ours with no position for it to reduce (lost track of
 *   it, or at boot);
 * - stale_entry: at boot, a working entry from before the crash on a flat market;
 * - entries_cancelled: `cancelEntries` asked for it (Emergency);
 * - duplicate_entry: a second working entry of ours on the same coin and side.
 */
export type CancelReason = (typeof CANCEL_REASONS)[number];

export type ReconcileAction =
  | { readonly type: 'resolveOrder'; readonly cloid: Cloid; readonly state: OrderState; readonly oid?: number; readonly filledSz: Decimal; readonly reason: string }
  | { readonly type: 'applyFill'; readonly fill: Fill }
  | { readonly type: 'adoptPosition'; readonly coin: Coin; readonly from: Decimal; readonly to: Decimal }
  | { readonly type: 'adoptOrder'; readonly cloid: Cloid; readonly venueOrder: VenueOrder; readonly orderKind: OrderKind; readonly state: 'resting' | 'partially_filled'; readonly filledSz: Decimal; readonly reason: string }
  | { readonly type: 'cancelOrder'; readonly cloid: Cloid; readonly oid: number; readonly coin: Coin; readonly reason: CancelReason; readonly venueOrder: VenueOrder; readonly orderKind: OrderKind }
  | { readonly type: 'protectPosition'; readonly coin: Coin; readonly szi: Decimal }
  | { readonly type: 'reportExternal'; readonly venueOrder: VenueOrder };

export type ReconcileActionType = ReconcileAction['type'];
export const RECONCILE_ACTION_TYPES = ['resolveOrder', 'applyFill', 'adoptPosition', 'adoptOrder', 'cancelOrder', 'protectPosition', 'reportExternal'] as const satisfies readonly ReconcileActionType[];

/** An order whose outcome this run could not prove. */
export interface PendingOrder {
  readonly cloid: Cloid;
  readonly state: OrderState;
  readonly why: string;
}

export interface ReconcileReport {
  /** `venue.now`. */
  readonly at: number;
  readonly phase: ReconcileOptions['phase'];
  readonly clean: boolean;
  readonly counts: Readonly<Record<ReconcileActionType, number>>;
  readonly pending: readonly PendingOrder[];
  /** Intents committed but never sent (no submit attempt recorded, not known to the venue). */
  readonly notSubmitted: readonly Cloid[];
  /** One human-readable line per action and pending order. */
  readonly lines: readonly string[];
  /** One line, for runtime_state.last_reconciliation and the alert. */
  readonly summary: string;
}

export interface ReconcileResult {
  readonly actions: readonly ReconcileAction[];
  readonly report: ReconcileReport;
}

/** Thrown for a caller's bug (an invalid prefix), never for anything the venue says. */
export class ReconcileInputError extends Error {
  readonly detail: unknown;
  constructor(message: string, detail?: unknown) {
    super(message);
    this.name = 'ReconcileInputError';
    this.detail = detail;
  }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

const PREFIX_RE = /^[0-9a-f]{8}$/;
const CLOID_RE = /^0x[0-9a-f]{32}$/;
const UNRESOLVED: ReadonlySet<OrderState> = new Set(['intent', 'submitting', 'unknown']);
const DEFAULT_EXPIRY_SLACK_MS = 2_000;
export const NEVER_PLACED_REASON = 'never placed: not found by orderStatus after expiresAfter';

const fillKey = (f: FillKey) => `${f.tid}:${f.oid}`;
const norm = (cloid: Cloid) => cloid.toLowerCase();
const signed = (side: Side, sz: Decimal) => (side === 'buy' ? sz : sz.neg());
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** True when `cloid` is one of this runtime's (our prefix). */
export function isOurCloid(prefix: string, cloid: Cloid | undefined): cloid is Cloid {
  if (cloid === undefined) return false;
  const c = norm(cloid);
  return CLOID_RE.test(c) && c.slice(2, 10) === prefix;
}

/** Our non-terminal orders the open-orders list does not show: the shell asks `orderStatus` for these. */
export function cloidsToQuery(local: Pick<LocalState, 'orders'>, openOrders: readonly VenueOrder[]): Cloid[] {
  const open = new Set(openOrders.flatMap((o) => (o.cloid ? [norm(o.cloid)] : [])));
  return local.orders
    .filter((o) => !TERMINAL_ORDER_STATES.has(o.state) && !open.has(norm(o.cloid)))
    .map((o) => o.cloid)
    .sort(byString);
}

/** Filled size a venue report implies (origSz − remaining; the order's own size when origSz is absent). */
function reportedFilled(origSz: Decimal, sz: Decimal, orderSz: Decimal): Decimal {
  const orig = origSz.gt(0) ? origSz : orderSz;
  return maxDec(ZERO, orig.minus(sz));
}

function liveState(filledSz: Decimal): 'resting' | 'partially_filled' {
  return filledSz.gt(0) ? 'partially_filled' : 'resting';
}

function closingSide(szi: Decimal): Side {
  return szi.isPositive() ? 'sell' : 'buy';
}

function isStopKind(o: Pick<LocalOrder, 'kind' | 'trigger'>): boolean {
  return o.kind === 'stop_loss' || o.trigger?.tpsl === 'sl';
}

interface Resolution {
  readonly state: OrderState;
  readonly oid?: number;
  readonly filledSz: Decimal;
  readonly reason: string;
}

/** What the venue proves about one of our non-terminal orders, or why it proves nothing yet. */
function resolve(o: LocalOrder, onBook: VenueOrder | undefined, status: VenueOrderStatus | undefined, now: number, slack: number): { res?: Resolution; pending?: string; notSubmitted?: true } {
  if (onBook) {
    if (!UNRESOLVED.has(o.state)) return {};
    const filled = maxDec(o.filledSz, reportedFilled(onBook.origSz, onBook.sz, o.sz));
    return { res: { state: liveState(filled), oid: onBook.oid, filledSz: filled, reason: 'found on the venue’s book' } };
  }
  if (status === undefined) return o.state === 'intent' ? { notSubmitted: true } : { pending: 'no orderStatus answer' };
  if (!status.found) {
    if (o.state === 'intent') return { notSubmitted: true };
    if (o.state === 'cancelling') return { res: { state: 'cancelled', filledSz: o.filledSz, reason: 'the venue does not know the order we were cancelling' } };
    if (o.state === 'submitting' || o.state === 'unknown') {
      if (o.expiresAfter !== undefined && now > o.expiresAfter + slack) return { res: { state: 'rejected', filledSz: o.filledSz, reason: NEVER_PLACED_REASON } };
      return { pending: o.expiresAfter === undefined ? 'not found, and no expiresAfter to prove absence by' : `not found before expiresAfter ${o.expiresAfter} (+${slack} ms)` };
    }
    return { pending: `${o.state} here, unknown to the venue` };
  }
  const reported = reportedFilled(status.origSz, status.sz, o.sz);
  switch (status.status) {
    case 'open':
    case 'triggered': {
      // Live but not on the book we fetched (a race): only an unresolved order learns from it.
      if (!UNRESOLVED.has(o.state)) return {};
      const filled = minDec(maxDec(o.filledSz, reported), o.sz);
      return { res: { state: liveState(filled), oid: status.oid, filledSz: filled, reason: `orderStatus ${status.rawStatus}` } };
    }
    case 'filled': {
      const done = status.sz.isZero() ? o.sz : reported;
      const filled = minDec(maxDec(o.filledSz, done), o.sz);
      return { res: { state: filled.gte(o.sz) ? 'filled' : 'cancelled', oid: status.oid, filledSz: filled, reason: `orderStatus ${status.rawStatus}` } };
    }
    case 'canceled': {
      const filled = minDec(maxDec(o.filledSz, reported), o.sz);
      return { res: { state: filled.gte(o.sz) ? 'filled' : 'cancelled', oid: status.oid, filledSz: filled, reason: `orderStatus ${status.rawStatus}` } };
    }
    case 'rejected':
      return { res: { state: 'rejected', oid: status.oid, filledSz: o.filledSz, reason: `orderStatus ${status.rawStatus}` } };
    case 'other':
      return { pending: `unrecognised orderStatus ${status.rawStatus}` };
  }
}

function fmtOrder(v: VenueOrder): string {
  const trig = v.isTrigger ? ` trigger ${v.triggerPx?.toFixed() ?? '?'}` : '';
  return `${v.coin} ${v.side} ${v.sz.toFixed()}/${v.origSz.toFixed()} @ ${v.px.toFixed()}${v.reduceOnly ? ' reduce-only' : ''}${trig}`;
}

function describeAction(a: ReconcileAction): string {
  switch (a.type) {
    case 'resolveOrder':
      return `resolved ${a.cloid} → ${a.state}${a.oid !== undefined ? ` (oid ${a.oid})` : ''}, filled ${a.filledSz.toFixed()}: ${a.reason}`;
    case 'applyFill':
      return `missed fill applied: tid ${a.fill.tid} oid ${a.fill.oid} ${a.fill.coin} ${a.fill.side} ${a.fill.sz.toFixed()} @ ${a.fill.px.toFixed()}`;
    case 'adoptPosition':
      return `position ${a.coin}: ours ${a.from.toFixed()} (missed fills included), the exchange's ${a.to.toFixed()}: adopted from the exchange`;
    case 'adoptOrder':
      return `adopted ${a.cloid} as ${a.orderKind} (oid ${a.venueOrder.oid}, ${fmtOrder(a.venueOrder)}): ${a.reason}`;
    case 'cancelOrder':
      return `cancel ${a.cloid} (oid ${a.oid}, ${fmtOrder(a.venueOrder)}): ${a.reason}`;
    case 'protectPosition':
      return `position ${a.coin} ${a.szi.toFixed()} has no exchange-side stop covering it: protect`;
    case 'reportExternal':
      return `external order left alone: oid ${a.venueOrder.oid}${a.venueOrder.cloid ? ` cloid ${a.venueOrder.cloid}` : ' (no cloid)'}, ${fmtOrder(a.venueOrder)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// reconcile
// ---------------------------------------------------------------------------------------------

/**
 * Compares our books with the venue's and says what to do. Pure; never throws for anything the
 * venue reports (only for an invalid prefix, a caller's bug).
 *
 * @example
 * const { actions, report } = reconcile(local, venue, { prefix: store.orders.prefix, phase: 'boot' });
 * if (!report.clean) log.warn({ lines: report.lines }, report.summary);
 */
export function reconcile(local: LocalState, venue: VenueSnapshot, opts: ReconcileOptions): ReconcileResult {
  if (!PREFIX_RE.test(opts.prefix)) throw new ReconcileInputError(`runtime prefix must be 8 lowercase hex, got ${JSON.stringify(opts.prefix)}`);
  const slack = opts.expirySlackMs ?? DEFAULT_EXPIRY_SLACK_MS;
  const ours = (cloid: Cloid | undefined): cloid is Cloid => isOurCloid(opts.prefix, cloid);

  // The book, one entry per oid and per cloid (the first listed wins), sorted by oid.
  const seenOids = new Set<number>();
  const seenCloids = new Set<Cloid>();
  const book: VenueOrder[] = [];
  for (const v of [...venue.openOrders].sort((a, b) => a.oid - b.oid)) {
    if (seenOids.has(v.oid)) continue;
    seenOids.add(v.oid);
    if (v.cloid !== undefined) {
      if (seenCloids.has(norm(v.cloid))) continue;
      seenCloids.add(norm(v.cloid));
    }
    book.push(v);
  }
  const ourBook = new Map<Cloid, VenueOrder>();
  const external: VenueOrder[] = [];
  for (const v of book) {
    if (ours(v.cloid)) ourBook.set(norm(v.cloid), v);
    else external.push(v);
  }
  const localByCloid = new Map<Cloid, LocalOrder>();
  for (const o of local.orders) if (!localByCloid.has(norm(o.cloid))) localByCloid.set(norm(o.cloid), o);
  const statusOf = (cloid: Cloid) => venue.statuses.get(cloid) ?? venue.statuses.get(norm(cloid));
  const venuePos = (coin: Coin) => venue.positions.get(coin) ?? ZERO;

  // 1. Our non-terminal orders: what the venue proves about them.
  const resolutions: ReconcileAction[] = [];
  const pending: PendingOrder[] = [];
  const notSubmitted: Cloid[] = [];
  const effective = new Map<Cloid, OrderState>();
  for (const [cloid, o] of [...localByCloid].sort(([a], [b]) => byString(a, b))) {
    effective.set(cloid, o.state);
    if (TERMINAL_ORDER_STATES.has(o.state)) continue;
    const r = resolve(o, ourBook.get(cloid), statusOf(o.cloid), venue.now, slack);
    if (r.pending) pending.push({ cloid: o.cloid, state: o.state, why: r.pending });
    if (r.notSubmitted) notSubmitted.push(o.cloid);
    const res = r.res;
    if (res && (res.state !== o.state || (res.oid !== undefined && o.oid === undefined))) {
      effective.set(cloid, res.state);
      resolutions.push({ type: 'resolveOrder', cloid: o.cloid, state: res.state, ...(res.oid !== undefined ? { oid: res.oid } : {}), filledSz: res.filledSz, reason: res.reason });
    }
  }

  // 2. Missed fills, then positions as they stand after them.
  const held = new Set(local.fills.map(fillKey));
  const fills: ReconcileAction[] = [];
  const projected = new Map<Coin, Decimal>([...local.positions].map(([c, p]) => [c, p.szi]));
  const sortedFills = [...venue.fills].sort((a, b) => a.time - b.time || a.tid - b.tid || a.oid - b.oid);
  for (const f of sortedFills) {
    const k = fillKey(f);
    if (held.has(k)) continue;
    held.add(k);
    fills.push({ type: 'applyFill', fill: f });
    projected.set(f.coin, (projected.get(f.coin) ?? ZERO).plus(signed(f.side, f.sz)));
  }
  const positions: ReconcileAction[] = [];
  for (const coin of [...new Set([...projected.keys(), ...venue.positions.keys()])].sort(byString)) {
    const from = projected.get(coin) ?? ZERO;
    const to = venuePos(coin);
    if (!from.eq(to)) positions.push({ type: 'adoptPosition', coin, from, to });
  }

  // 3. Our orders on the book: lost track (adopt or cancel), or tracked (boot clean-up, Emergency, duplicates).
  const isStop = (v: VenueOrder): boolean => {
    const lo = v.cloid !== undefined ? localByCloid.get(norm(v.cloid)) : undefined;
    if (lo) return isStopKind(lo);
    if (v.cloid !== undefined && local.positions.get(v.coin)?.stopCloid !== undefined && norm(local.positions.get(v.coin)!.stopCloid!) === norm(v.cloid)) return true;
    const mark = venue.marks?.get(v.coin);
    if (!v.isTrigger || v.triggerPx === undefined || mark === undefined) return false;
    return v.side === 'sell' ? v.triggerPx.lt(mark) : v.triggerPx.gt(mark);
  };
  const inferKind = (v: VenueOrder, lo: LocalOrder | undefined): OrderKind => {
    if (lo) return lo.kind;
    if (!v.reduceOnly) return 'entry';
    if (v.isTrigger) return isStop(v) ? 'stop_loss' : 'take_profit';
    return 'exit';
  };
  const orderActions: ReconcileAction[] = [];
  const cancelled = new Set<Cloid>();
  const cancel = (cloid: Cloid, v: VenueOrder, lo: LocalOrder | undefined, reason: CancelReason) => {
    cancelled.add(cloid);
    orderActions.push({ type: 'cancelOrder', cloid: v.cloid!, oid: v.oid, coin: v.coin, reason, venueOrder: v, orderKind: inferKind(v, lo) });
  };
  const liveEntries: { cloid: Cloid; v: VenueOrder; lo: LocalOrder }[] = [];
  for (const [cloid, v] of ourBook) {
    const lo = localByCloid.get(cloid);
    const state = effective.get(cloid);
    const pos = venuePos(v.coin);
    if (lo === undefined || state === undefined || TERMINAL_ORDER_STATES.has(state)) {
      const why = lo === undefined ? 'resting on the venue, no record in the database' : `resting on the venue, the database says ${state}`;
      if (!v.reduceOnly || lo?.kind === 'entry') cancel(cloid, v, lo, 'lost_entry');
      else if (!pos.isZero() && v.side === closingSide(pos)) {
        const filledSz = reportedFilled(v.origSz, v.sz, v.origSz);
        orderActions.push({ type: 'adoptOrder', cloid: v.cloid!, venueOrder: v, orderKind: inferKind(v, lo), state: liveState(filledSz), filledSz, reason: why });
      } else cancel(cloid, v, lo, 'orphan_protective');
      continue;
    }
    if (state === 'cancelling') continue;
    if (lo.kind === 'entry') {
      if (opts.cancelEntries) cancel(cloid, v, lo, 'entries_cancelled');
      else if (opts.phase === 'boot' && pos.isZero()) cancel(cloid, v, lo, 'stale_entry');
      else liveEntries.push({ cloid, v, lo });
    } else if (opts.phase === 'boot' && lo.reduceOnly && pos.isZero()) {
      cancel(cloid, v, lo, 'orphan_protective');
    }
  }
  // Two working entries of ours on one coin and side: the first committed stays.
  const firstEntry = new Map<string, Cloid>();
  for (const e of liveEntries.sort((a, b) => byString(a.cloid, b.cloid))) {
    const key = `${e.v.coin}|${e.v.side}`;
    if (!firstEntry.has(key)) firstEntry.set(key, e.cloid);
    else cancel(e.cloid, e.v, e.lo, 'duplicate_entry');
  }
  orderActions.sort((a, b) => orderOid(a) - orderOid(b));

  // 4. Protection: every non-zero venue position needs a reduce-only stop covering it, on the book
  //    (and staying there) or on its way (an unresolved stop of ours is presumed on its way).
  const protect: ReconcileAction[] = [];
  for (const coin of [...venue.positions.keys()].sort(byString)) {
    const szi = venuePos(coin);
    if (szi.isZero()) continue;
    const side = closingSide(szi);
    const need = szi.abs();
    const onBook = book.some((v) => {
      if (v.coin !== coin || !v.reduceOnly || !v.isTrigger || v.side !== side || v.sz.lt(need) || !isStop(v)) return false;
      if (v.cloid === undefined) return true;
      const c = norm(v.cloid);
      return !cancelled.has(c) && effective.get(c) !== 'cancelling';
    });
    const onItsWay = [...localByCloid].some(([c, o]) => {
      const state = effective.get(c)!;
      return !ourBook.has(c) && UNRESOLVED.has(state) && o.coin === coin && o.reduceOnly && o.side === side && isStopKind(o) && o.sz.minus(o.filledSz).gte(need);
    });
    if (!onBook && !onItsWay) protect.push({ type: 'protectPosition', coin, szi });
  }

  const externals: ReconcileAction[] = external.map((v) => ({ type: 'reportExternal', venueOrder: v }));
  const actions = [...resolutions, ...fills, ...positions, ...orderActions, ...protect, ...externals];
  return { actions, report: makeReport(actions, pending, notSubmitted, venue.now, opts.phase) };
}

function orderOid(a: ReconcileAction): number {
  return a.type === 'adoptOrder' || a.type === 'cancelOrder' ? a.venueOrder.oid : 0;
}

function makeReport(actions: readonly ReconcileAction[], pending: readonly PendingOrder[], notSubmitted: readonly Cloid[], at: number, phase: ReconcileOptions['phase']): ReconcileReport {
  const counts = Object.fromEntries(RECONCILE_ACTION_TYPES.map((t) => [t, 0])) as Record<ReconcileActionType, number>;
  for (const a of actions) counts[a.type] += 1;
  const clean = pending.length === 0 && actions.every((a) => a.type === 'reportExternal' || a.type === 'applyFill');
  const lines = [...actions.map(describeAction), ...pending.map((p) => `pending ${p.cloid} (${p.state}): ${p.why}`), ...notSubmitted.map((c) => `intent ${c} never sent`)];
  const parts = RECONCILE_ACTION_TYPES.filter((t) => counts[t] > 0).map((t) => `${counts[t]} ${t}`);
  if (pending.length) parts.push(`${pending.length} pending`);
  const summary = `${clean ? 'clean' : 'not clean'}${parts.length ? `: ${parts.join(', ')}` : ''}`;
  return { at, phase, clean, counts, pending, notSubmitted, lines, summary };
}

// ---------------------------------------------------------------------------------------------
// applyActions: the shell's effect on our books, as a pure model
// ---------------------------------------------------------------------------------------------

/** Placeholder cloid for the protective stop `protectPosition` asks for (the manager allocates the real one). */
export function protectiveIntentCloid(coin: Coin): Cloid {
  return `protect:${coin}`;
}

/**
 * Our books after the shell carried `actions` out (before the venue reacts): resolutions and
 * adoptions are written, fills recorded and booked into positions, positions set to the venue's,
 * cancels requested (`cancelling`), protective stops committed as intents. Pure.
 */
export function applyActions(local: LocalState, actions: readonly ReconcileAction[]): LocalState {
  const orders = new Map<Cloid, LocalOrder>(local.orders.map((o) => [norm(o.cloid), o]));
  const fills = [...local.fills];
  const positions = new Map<Coin, LocalPosition>(local.positions);
  const fromVenue = (v: VenueOrder, kind: OrderKind, state: OrderState, filledSz: Decimal): LocalOrder => ({
    cloid: v.cloid!,
    state,
    kind,
    coin: v.coin,
    side: v.side,
    sz: v.origSz.gt(0) ? v.origSz : v.sz,
    filledSz,
    oid: v.oid,
    reduceOnly: v.reduceOnly,
    ...(v.isTrigger && v.triggerPx !== undefined ? { trigger: { triggerPx: v.triggerPx, tpsl: kind === 'stop_loss' ? ('sl' as const) : ('tp' as const), isMarket: true } } : {}),
  });
  for (const a of actions) {
    switch (a.type) {
      case 'resolveOrder': {
        const o = orders.get(norm(a.cloid));
        if (o) orders.set(norm(a.cloid), { ...o, state: a.state, filledSz: a.filledSz, ...(a.oid !== undefined ? { oid: a.oid } : {}) });
        break;
      }
      case 'applyFill': {
        fills.push({ tid: a.fill.tid, oid: a.fill.oid });
        const p = positions.get(a.fill.coin);
        positions.set(a.fill.coin, { ...(p ?? {}), szi: (p?.szi ?? ZERO).plus(signed(a.fill.side, a.fill.sz)) });
        break;
      }
      case 'adoptPosition': {
        const p = positions.get(a.coin);
        positions.set(a.coin, { ...(p ?? {}), szi: a.to });
        break;
      }
      case 'adoptOrder':
        orders.set(norm(a.cloid), fromVenue(a.venueOrder, a.orderKind, a.state, a.filledSz));
        break;
      case 'cancelOrder': {
        const o = orders.get(norm(a.cloid));
        const filledSz = reportedFilled(a.venueOrder.origSz, a.venueOrder.sz, a.venueOrder.origSz);
        orders.set(norm(a.cloid), o ? { ...o, state: 'cancelling', oid: a.oid } : fromVenue(a.venueOrder, a.orderKind, 'cancelling', filledSz));
        break;
      }
      case 'protectPosition': {
        const cloid = protectiveIntentCloid(a.coin);
        orders.set(norm(cloid), {
          cloid,
          state: 'intent',
          kind: 'stop_loss',
          coin: a.coin,
          side: closingSide(a.szi),
          sz: a.szi.abs(),
          filledSz: ZERO,
          reduceOnly: true,
        });
        break;
      }
      case 'reportExternal':
        break;
    }
  }
  return { orders: [...orders.values()], fills, positions };
}

/** Signed sizes of non-zero positions, for comparisons (a zero row is a planned position, i.e. flat). */
export function nonZeroPositions(positions: ReadonlyMap<Coin, Decimal | LocalPosition>): Map<Coin, Decimal> {
  const out = new Map<Coin, Decimal>();
  for (const [c, p] of positions) {
    const szi = 'szi' in p ? p.szi : p;
    if (!szi.isZero()) out.set(c, szi);
  }
  return out;
}
