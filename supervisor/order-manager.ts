/**
 * The order manager: one order actor (machines/order.machine.ts) per cloid, the exactly-once path
 * and position protection (the plans come from src/domain/protection.ts).
 *
 * Invariants:
 *  - Write before you act: a cloid is allocated and its intent committed (synchronous=FULL) before
 *    its order actor may sign anything; every state an order actor emits is persisted at once.
 *  - Never resubmit: an unknown outcome is resolved by orderStatus(cloid) inside the order actor.
 *  - Fills are applied once: `fills.insert` dedups by (tid, oid) in the same transaction as the
 *    position / trade bookkeeping, before anything else sees the fill.
 *  - After an entry fills, reduce-only exchange-side stop-loss and take-profit orders protect it,
 *    sized from the venue's filled size and priced from a known average entry price (never a
 *    guess: without one, protection waits for the entry's fills).
 *  - A replacement stop is placed, and only once the venue has acknowledged it live is the stop it
 *    replaces cancelled: the position is never without a stop. A replacement the venue rejects
 *    leaves the previous stop in charge.
 *  - After a restart every unresolved order gets its actor back (resume, with its persisted fills),
 *    and every position is reviewed (protect, break-even, retire replaced stops), so no cloid is
 *    both unresolved and forgotten and no step of protection is lost between two writes.
 *  - Every log line about an order carries its `cloid`.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import { orderMachine, orderStateOf, OrderEvents, OrderEmitted, type OrderMachineConfig, type OrderResume, type PlaceOrderInput, type QueryStatusInput, type CancelOrderInput, type OrderStateEmitted } from '../machines/order.machine.ts';
import { Decimal, ZERO, roundPrice } from '../src/domain/decimal.ts';
import { DEFAULT_PROTECTION_CONFIG, onTp1Filled, planProtection, stopIntent, type FilledEntry, type ProtectionConfig, type ProtectiveIntent } from '../src/domain/protection.ts';
import { TERMINAL_ORDER_STATES, type Cloid, type Coin, type Direction, type Fill, type Instrument, type OrderIntent, type OrderState, type Position } from '../src/domain/types.ts';
import { tradePnl } from '../src/domain/pnl.ts';
import type { Store, NewIntent, OrderRecord, PositionRecord } from '../src/store/index.ts';
import type { VenuePort } from '../src/venue/port.ts';
import type { Logger } from '../src/ops/logger.ts';
import type { ApprovedOrder, Bus } from './bus.ts';

type OrderActor = Actor<typeof orderMachine>;

export interface OrderManagerOptions {
  readonly store: Store;
  readonly venue: VenuePort;
  readonly bus: Bus;
  readonly log: Logger;
  readonly instruments: ReadonlyMap<Coin, Instrument>;
  readonly now: () => number;
  readonly orderConfig: Partial<OrderMachineConfig>;
  /** Told about every persisted order state and every new fill (metrics); must not throw. */
  readonly observer?: {
    orderState(intent: OrderIntent, state: OrderState, error: string | undefined, sentAt: number | undefined): void;
    fill(f: Fill): void;
  };
  /** Slippage cap of market-style triggers and exits, as a fraction (0.05 = 5 %). */
  readonly triggerSlippage?: number;
  /** Trailing stop distance as a fraction of price; off when undefined. */
  readonly trailPct?: number;
}

/** States in which an order actor is waiting on the venue (a stop must let them finish). */
const IN_FLIGHT: ReadonlySet<OrderState> = new Set(['intent', 'submitting', 'unknown', 'cancelling']);
/** States that prove the venue holds (or held) a placed order. */
const ACKNOWLEDGED: ReadonlySet<OrderState> = new Set(['resting', 'partially_filled', 'filled']);
/** Used when a position row carries no stop / target (it should): 2 % stop, 2R target. */
const FALLBACK_STOP_FRAC = new Decimal('0.02');

/** Real timers schedule; `now` (the exchange's time in tests and replay) judges expiry. */
function clock(now: () => number) {
  return {
    setTimeout: (fn: (...a: unknown[]) => void, ms: number) => setTimeout(fn, ms),
    clearTimeout: (id: unknown) => clearTimeout(id as NodeJS.Timeout),
    now,
  };
}

function sumSz(fills: readonly Fill[]): Decimal {
  return fills.reduce((a, f) => a.plus(f.sz), ZERO);
}

/** A position row without its `updatedAt`, so an upsert stamps the time of this write. */
function fresh(p: PositionRecord): Omit<PositionRecord, 'updatedAt'> {
  const { updatedAt: _stale, ...rest } = p;
  return rest;
}

export class OrderManager {
  readonly #o: OrderManagerOptions;
  readonly #actors = new Map<Cloid, OrderActor>();
  readonly #retries = new Set<ReturnType<typeof setTimeout>>();
  #stopped = false;
  /** When each order's send began, for the acknowledgement latency. */
  readonly #sentAt = new Map<Cloid, number>();
  readonly #protection: ProtectionConfig;
  #accepting = true;
  #unsubs: (() => void)[] = [];

  constructor(opts: OrderManagerOptions) {
    this.#o = opts;
    this.#protection = { ...DEFAULT_PROTECTION_CONFIG, ...(opts.triggerSlippage !== undefined ? { slippageFrac: new Decimal(opts.triggerSlippage) } : {}) };
  }

  /** Whether a live order actor owns this cloid (it resolves the order itself). */
  owns(cloid: Cloid): boolean {
    return this.#actors.has(cloid);
  }

  get liveOrders(): number {
    return this.#actors.size;
  }

  /** Rebuilds the actors of every unresolved order and reviews every position (boot is recovery), then listens. */
  start(): void {
    const { store, bus, log } = this.#o;
    for (const rec of store.orders.unresolved()) {
      const resume: OrderResume = {
        state: rec.state,
        filledSz: rec.filledSz.toFixed(),
        ...(rec.oid !== undefined ? { oid: rec.oid } : {}),
        ...(rec.expiresAfter !== undefined ? { expiresAfter: rec.expiresAfter } : {}),
        ...(rec.avgPx ? { avgPx: rec.avgPx.toFixed() } : {}),
        // Fills applied before the restart stay counted (and deduplicated) by the new actor.
        fills: store.fills.byCloid(rec.cloid).map((f) => ({ tid: f.tid, sz: f.sz, px: f.px, fee: f.fee, time: f.time, oid: f.oid })),
      };
      log.info({ cloid: rec.cloid, state: rec.state, kind: rec.kind }, 'resuming unresolved order');
      this.#spawn(rec, resume);
    }
    // A crash may have fallen between two steps of protection: finish them.
    for (const pos of store.positions.all()) {
      this.#review(pos.coin);
      this.#retireReplacedStops(pos.coin);
    }
    this.#unsubs.push(bus.on('order.approved', (a) => this.submitEntry(a)));
    this.#unsubs.push(bus.on('fills', (f) => this.onFills(f.fills)));
    this.#unsubs.push(
      bus.on('orderUpdates', (updates) => {
        for (const u of updates) {
          if (!u.cloid) continue;
          // A trigger order is acknowledged without an oid; its first update tells it.
          const rec = store.orders.byCloid(u.cloid);
          if (rec && rec.oid === undefined) store.orders.updateState(u.cloid, { oid: u.oid });
          this.#actors.get(u.cloid)?.send({ type: OrderEvents.VENUE_UPDATE, status: u.status, sz: u.sz, origSz: u.origSz, time: u.time, oid: u.oid });
        }
      }),
    );
  }

  /** No new orders from now on (graceful stop, halt). Protective and exit orders still go out. */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /**
   * Resolves when no order actor is in flight (intent / submitting / unknown / cancelling), or
   * after `deadlineMs` of waiting. The deadline is counted on the timers that drive the actors,
   * not on `now`: a stepped exchange clock that stands still must not make a graceful stop hang.
   */
  async drain(deadlineMs: number): Promise<boolean> {
    const pause = 50;
    // orderStateOf: `unknown` and `cancelling` have substates, so the snapshot value is an object.
    const busy = () => [...this.#actors.values()].some((a) => IN_FLIGHT.has(orderStateOf(a.getSnapshot())));
    for (let waited = 0; busy() && waited < deadlineMs; waited += pause) await new Promise((r) => setTimeout(r, pause));
    return !busy();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#retries) clearTimeout(t);
    this.#retries.clear();
    for (const u of this.#unsubs) u();
    this.#unsubs = [];
    for (const a of this.#actors.values()) a.stop();
    this.#actors.clear();
  }

  submitEntry(a: ApprovedOrder): Cloid | undefined {
    const { store, log } = this.#o;
    if (!this.#accepting) {
      log.warn({ coin: a.coin }, 'entry refused: the order manager is stopping');
      return undefined;
    }
    const intent = this.#commit({
      coin: a.coin,
      assetId: a.assetId,
      side: a.side,
      sz: a.sz,
      px: a.px,
      reduceOnly: false,
      tif: 'Ioc',
      kind: 'entry',
      createdAt: this.#o.now(),
    });
    // The plan for protection travels with the position row, written before the order is sent.
    const direction: Direction = a.side === 'buy' ? 'long' : 'short';
    const existing = store.positions.get(a.coin);
    if (!existing || existing.szi.isZero()) {
      store.positions.upsert({
        coin: a.coin,
        szi: existing?.szi ?? ZERO,
        entryPx: existing?.entryPx ?? ZERO,
        entryCloid: intent.cloid,
        entryFees: ZERO,
        stage: 'unprotected',
        tpCloids: [],
        initialStopPx: a.stopPx,
        takeProfitPx: a.takeProfitPx,
        rUnit: a.px.minus(a.stopPx).abs(),
      });
    }
    log.info({ cloid: intent.cloid, coin: a.coin, side: a.side, sz: a.sz.toFixed(), px: a.px.toFixed(), stopPx: a.stopPx.toFixed(), takeProfitPx: a.takeProfitPx.toFixed(), direction }, 'entry intent committed');
    this.#spawn(intent);
    return intent.cloid;
  }

  /**
   * Gives a venue position that no stop covers a reduce-only stop for its whole size (boot after
   * a crash, the periodic protection check, reconciliation's `protectPosition`). The stop sits at
   * the position's planned stop when our row agrees with the venue's direction, else 2 % from the
   * venue's entry price. Returns undefined when a stop of ours for the coin is already on its way
   * or the market is not one keel trades (then the operator must protect it by hand: logged).
   */
  ensureStop(p: Position): Cloid | undefined {
    const { store, log } = this.#o;
    const inst = this.#o.instruments.get(p.coin);
    if (!inst) {
      log.error({ coin: p.coin, szi: p.szi.toFixed() }, 'position without a stop in a market keel does not trade: protect it by hand');
      return undefined;
    }
    const onItsWay = store.orders.unresolved().some((o) => o.coin === p.coin && o.kind === 'stop_loss' && (o.state === 'intent' || o.state === 'submitting' || o.state === 'unknown'));
    if (onItsWay || p.szi.isZero()) return undefined;
    const long = p.szi.isPositive();
    const row = store.positions.get(p.coin);
    const sameWay = row !== undefined && !row.szi.isZero() && row.szi.isPositive() === long;
    const planned = sameWay ? row.initialStopPx : undefined;
    const triggerPx = roundPrice(planned ?? p.entryPx.times(long ? 0.98 : 1.02), inst.szDecimals, long ? 'up' : 'down');
    const intent = this.#commit(stopIntent(inst, long ? 'long' : 'short', p.szi.abs(), triggerPx, this.#o.now(), sameWay ? row.entryCloid : undefined));
    if (sameWay) store.positions.upsert({ ...fresh(row), stage: row.stage === 'unprotected' ? 'open' : row.stage, stopCloid: intent.cloid });
    log.error({ cloid: intent.cloid, coin: p.coin, szi: p.szi.toFixed(), stopPx: triggerPx.toFixed() }, 'position without a stop on the venue: stop placed');
    this.#spawn(intent);
    return intent.cloid;
  }

  /** Cancels every working entry order (Emergency, kill switch); protection stays. */
  cancelEntries(): Cloid[] {
    const cloids = this.#o.store.orders.unresolved().filter((o) => o.kind === 'entry').map((o) => o.cloid);
    for (const c of cloids) this.#cancel(c);
    return cloids;
  }

  #commit(i: NewIntent): OrderIntent {
    return this.#o.store.orders.commitIntent(i);
  }

  #spawn(intent: OrderIntent, resume?: OrderResume): void {
    const { venue, log } = this.#o;
    const machine = orderMachine.provide({
      actors: {
        placeOrder: fromPromise(async ({ input }: { input: PlaceOrderInput }) => {
          log.info({ cloid: input.intent.cloid, coin: input.intent.coin, kind: input.intent.kind, expiresAfter: input.expiresAfter }, 'sending order');
          return venue.place(input.intent, { expiresAfter: input.expiresAfter });
        }),
        queryStatus: fromPromise(async ({ input }: { input: QueryStatusInput }) => venue.orderStatus(input.cloid)),
        cancelOrder: fromPromise(async ({ input }: { input: CancelOrderInput }) => {
          log.info({ cloid: input.cloid, coin: input.coin, oid: input.oid, expiresAfter: input.expiresAfter }, 'sending cancel');
          return venue.cancel(input.coin, input.cloid, { expiresAfter: input.expiresAfter });
        }),
      },
    });
    const actor = createActor(machine, { input: { intent, ...(resume ? { resume } : {}), config: this.#o.orderConfig }, clock: clock(this.#o.now) });
    this.#actors.set(intent.cloid, actor);
    actor.on(OrderEmitted.STATE, (e) => this.#onState(intent, e as OrderStateEmitted));
    actor.subscribe({
      error: (err) => {
        log.error({ cloid: intent.cloid, err }, 'order actor failed');
        if (this.#actors.get(intent.cloid) === actor) this.#actors.delete(intent.cloid);
      },
    });
    actor.start();
  }

  #onState(intent: OrderIntent, e: OrderStateEmitted): void {
    const { store, log } = this.#o;
    if (e.state === 'submitting') this.#sentAt.set(intent.cloid, this.#o.now());
    this.#o.observer?.orderState(intent, e.state, e.error, this.#sentAt.get(intent.cloid));
    if (e.state !== 'submitting' && e.state !== 'intent') this.#sentAt.delete(intent.cloid);
    store.orders.updateState(intent.cloid, {
      state: e.state,
      filledSz: e.filledSz,
      ...(e.oid !== undefined ? { oid: e.oid } : {}),
      ...(e.avgPx ? { avgPx: e.avgPx } : {}),
      lastError: e.error ?? null,
      ...(e.expiresAfter !== undefined ? { expiresAfter: e.expiresAfter } : {}),
      ...(e.state === 'submitting' ? { submittedAt: this.#o.now() } : {}),
    });
    const level = e.state === 'rejected' || e.state === 'unknown' ? 'warn' : 'info';
    log[level]({ cloid: intent.cloid, coin: intent.coin, kind: intent.kind, state: e.state, oid: e.oid, filledSz: e.filledSz.toFixed(), avgPx: e.avgPx?.toFixed(), error: e.error }, `order ${e.state}`);
    // A stop the venue acknowledged takes over from the stops it replaces.
    if (intent.kind === 'stop_loss' && (e.state === 'resting' || e.state === 'partially_filled')) this.#retireReplacedStops(intent.coin);
    if (TERMINAL_ORDER_STATES.has(e.state)) {
      // The actor is in a final state and stops by itself; it is only forgotten here.
      this.#actors.delete(intent.cloid);
      this.#afterTerminal(intent, e);
    }
  }

  /** What happens when an order is finished: protect a new position, tidy up, move the stop. */
  #afterTerminal(intent: OrderIntent, e: OrderStateEmitted): void {
    const { store, log } = this.#o;
    const pos = store.positions.get(intent.coin);
    if (!pos) return;
    if (intent.kind === 'entry') {
      if (e.filledSz.isZero() && pos.szi.isZero() && pos.entryCloid === intent.cloid) store.positions.remove(intent.coin);
      else this.#review(intent.coin);
      return;
    }
    if (intent.kind === 'take_profit_1') {
      this.#review(intent.coin);
      return;
    }
    if (intent.kind === 'stop_loss' && e.state === 'rejected' && pos.stopCloid === intent.cloid && !pos.szi.isZero()) {
      // The replacement never went live: the stop it was to replace is still the protection.
      const previous = store.orders
        .unresolved()
        .filter((o) => o.coin === intent.coin && o.kind === 'stop_loss' && o.cloid !== intent.cloid && o.state !== 'cancelling')
        .at(-1);
      if (previous) {
        store.positions.upsert({ ...fresh(pos), stopCloid: previous.cloid });
        log.error({ cloid: intent.cloid, coin: intent.coin, keeps: previous.cloid, error: e.error }, 'replacement stop rejected: the previous stop stays in place');
      } else {
        log.error({ cloid: intent.cloid, coin: intent.coin, szi: pos.szi.toFixed(), error: e.error }, 'stop rejected and no other stop protects the position');
        // A bare position is the worst failure: try a fresh stop after a short pause (not in a
        // tight loop), sized to the position as it stands then; the periodic watch is the backstop.
        const coin = intent.coin;
        const retry = setTimeout(() => {
          this.#retries.delete(retry);
          const now = this.#o.store.positions.get(coin);
          if (!this.#stopped && now && !now.szi.isZero()) this.ensureStop({ coin, szi: now.szi, entryPx: now.entryPx, unrealizedPnl: ZERO, leverage: 0, marginUsed: ZERO });
        }, 1_000);
        this.#retries.add(retry);
      }
    }
  }

  /** Applies new fills: dedup, position bookkeeping, routing to the order actor. */
  onFills(fills: readonly Fill[]): void {
    const { store, log } = this.#o;
    for (const f of fills) {
      // The dedup insert and the position / trade bookkeeping commit together: a crash between
      // them would otherwise lose the bookkeeping for good (the replayed fill is a duplicate).
      const followUp = store.transaction(() => {
        if (!store.fills.insert(f)) return undefined;
        const lastFill = store.state.get('last_fill_time') ?? 0;
        if (f.time > lastFill) store.state.set('last_fill_time', f.time);
        return this.#applyToPosition(f);
      });
      if (followUp === undefined) continue;
      log.info({ cloid: f.cloid, tid: f.tid, oid: f.oid, coin: f.coin, side: f.side, px: f.px.toFixed(), sz: f.sz.toFixed(), fee: f.fee.toFixed() }, 'fill');
      this.#o.observer?.fill(f);
      if (f.cloid) this.#actors.get(f.cloid)?.send({ type: OrderEvents.FILL, tid: f.tid, sz: f.sz, px: f.px, fee: f.fee, time: f.time, oid: f.oid });
      followUp();
    }
  }

  /** Position and trade bookkeeping for one new fill (inside the caller's transaction); returns what to do after commit. */
  #applyToPosition(f: Fill): () => void {
    const { store, log } = this.#o;
    const review = () => this.#review(f.coin);
    const signed = f.side === 'buy' ? f.sz : f.sz.neg();
    const pos: PositionRecord | undefined = store.positions.get(f.coin);
    const szi = pos?.szi ?? ZERO;
    const next = szi.plus(signed);
    if (szi.isZero() || szi.isPositive() === signed.isPositive()) {
      // Opening or adding: the entry price is size-weighted, kept to 12 decimals (display and
      // PnL precision far beyond the tick).
      const entryPx = szi.isZero() ? f.px : pos!.entryPx.times(szi.abs()).plus(f.px.times(f.sz)).div(next.abs()).toDecimalPlaces(12);
      store.positions.upsert({
        ...(pos ? fresh(pos) : { coin: f.coin, stage: 'unprotected' as const, tpCloids: [] }),
        coin: f.coin,
        szi: next,
        entryPx,
        entryFees: (pos?.entryFees ?? ZERO).plus(f.fee),
        openedAt: pos?.openedAt ?? f.time,
      });
      return review;
    }
    // Reducing (or flipping): realise PnL on the closed part.
    const closed = Decimal.min(f.sz, szi.abs());
    const direction: Direction = szi.isPositive() ? 'long' : 'short';
    const entryFeeShare = pos!.entryFees.times(closed).div(szi.abs());
    const exitFee = f.fee.times(closed).div(f.sz);
    const pnl = tradePnl({ direction, sz: closed, entryPx: pos!.entryPx, exitPx: f.px, entryFees: entryFeeShare, exitFees: exitFee });
    store.trades.insert({
      coin: f.coin,
      direction,
      sz: closed,
      entryPx: pos!.entryPx,
      exitPx: f.px,
      grossPnl: pnl.gross,
      fees: pnl.fees,
      netPnl: pnl.net,
      openedAt: pos!.openedAt ?? f.time,
      closedAt: f.time,
      ...(pos!.entryCloid ? { entryCloid: pos!.entryCloid } : {}),
      ...(f.cloid ? { exitCloid: f.cloid } : {}),
      exitFill: { tid: f.tid, oid: f.oid },
    });
    log.info({ cloid: f.cloid, coin: f.coin, direction, sz: closed.toFixed(), entryPx: pos!.entryPx.toFixed(), exitPx: f.px.toFixed(), grossPnl: pnl.gross.toFixed(), fees: pnl.fees.toFixed(), netPnl: pnl.net.toFixed() }, 'trade closed (PnL, fees included)');
    if (next.isZero()) {
      store.positions.remove(f.coin);
      return () => this.#cancelProtection(pos!);
    }
    if (next.isPositive() !== szi.isPositive()) {
      // Flipped: the remainder opens a new position at this fill's price.
      store.positions.upsert({ coin: f.coin, szi: next, entryPx: f.px, entryFees: f.fee.minus(exitFee), openedAt: f.time, stage: 'unprotected', tpCloids: [] });
      return () => this.#cancelProtection(pos!);
    }
    store.positions.upsert({ ...fresh(pos!), szi: next, entryFees: pos!.entryFees.minus(entryFeeShare) });
    return review;
  }

  #instrument(coin: Coin): Instrument {
    const i = this.#o.instruments.get(coin);
    if (!i) throw new Error(`no instrument for ${coin}`);
    return i;
  }

  /** Moves a position's protection forward from what is known now; idempotent (stages guard each step). */
  #review(coin: Coin): void {
    const pos = this.#o.store.positions.get(coin);
    if (!pos) return;
    if (pos.stage === 'unprotected') this.#maybeProtect(pos);
    else if (pos.stage === 'open' && this.#tp1Done(pos)) this.#moveStopToBreakEven(pos);
  }

  /** Protects a position once its entry is finished with a fill and its average price is known. */
  #maybeProtect(pos: PositionRecord): void {
    const { store, log } = this.#o;
    if (!pos.entryCloid) return;
    const entry = store.orders.byCloid(pos.entryCloid);
    if (!entry || !TERMINAL_ORDER_STATES.has(entry.state) || entry.filledSz.isZero()) return;
    // The venue's report may run ahead of the fills applied so far: its size is the one to protect.
    const fills = store.fills.byCloid(entry.cloid);
    const applied = sumSz(fills);
    const avgPx = entry.avgPx ?? (applied.gt(0) ? fills.reduce((a, f) => a.plus(f.px.times(f.sz)), ZERO).div(applied) : undefined);
    if (avgPx === undefined) {
      log.warn({ cloid: entry.cloid, coin: pos.coin, filledSz: entry.filledSz.toFixed() }, 'entry filled but its price is not known yet: protection waits for its fills');
      return;
    }
    this.#protect(pos, entry, avgPx);
  }

  /** Stop-loss for the whole size, TP1 for half at 1R, TP2 for the rest at the target (planProtection). */
  #protect(pos: PositionRecord, entry: OrderRecord, avgEntryPx: Decimal): void {
    const { store, log } = this.#o;
    const instrument = this.#instrument(pos.coin);
    const direction: Direction = entry.side === 'buy' ? 'long' : 'short';
    const base: Omit<FilledEntry, 'stopPx' | 'takeProfitPx'> = { instrument, direction, filledSz: entry.filledSz, avgEntryPx, entryCloid: entry.cloid, time: this.#o.now() };
    const s = direction === 'long' ? -1 : 1;
    let result = pos.initialStopPx && pos.takeProfitPx ? planProtection({ ...base, stopPx: pos.initialStopPx, takeProfitPx: pos.takeProfitPx }, this.#protection) : undefined;
    if (!result?.ok) {
      // The signal's levels do not fit the actual fill (a gap through the stop, say): protect with
      // a plain 2 % stop and a 2R target rather than leave the position bare.
      const r = avgEntryPx.times(FALLBACK_STOP_FRAC);
      const fallback = { ...base, stopPx: roundPrice(avgEntryPx.plus(r.times(s)), instrument.szDecimals), takeProfitPx: roundPrice(avgEntryPx.minus(r.times(2 * s)), instrument.szDecimals) };
      log.error({ cloid: entry.cloid, coin: pos.coin, reason: result && !result.ok ? result.reason : 'no stop or target on the position', detail: result && !result.ok ? result.detail : undefined, stopPx: fallback.stopPx.toFixed() }, 'protection plan refused: using the fallback stop');
      result = planProtection(fallback, this.#protection);
    }
    if (!result.ok) {
      log.fatal({ cloid: entry.cloid, coin: pos.coin, reason: result.reason, detail: result.detail }, 'cannot protect the position');
      return;
    }
    const { plan } = result;
    const sl = this.#commit(plan.stopLoss);
    const tps = plan.takeProfits.map((t) => this.#commit(t));
    // Only the protective fields change: size and entry stay what the applied fills say.
    const current = store.positions.get(pos.coin) ?? pos;
    store.positions.upsert({ ...fresh(current), stage: 'open', stopCloid: sl.cloid, tpCloids: tps.map((t) => t.cloid), initialStopPx: plan.stopLoss.trigger!.triggerPx, rUnit: plan.risk });
    log.info(
      { cloid: sl.cloid, entryCloid: entry.cloid, coin: pos.coin, filledSz: entry.filledSz.toFixed(), entryPx: avgEntryPx.toFixed(), stopPx: plan.stopLoss.trigger!.triggerPx.toFixed(), tp: tps.map((t) => `${t.cloid}@${t.trigger!.triggerPx.toFixed()}x${t.sz.toFixed()}`) },
      'protecting position',
    );
    this.#spawn(sl);
    for (const t of tps) this.#spawn(t);
  }

  /** TP1 is done when the fills applied for it cover its size (or what it filled, once it is finished). */
  #tp1Done(pos: PositionRecord): boolean {
    const { store } = this.#o;
    for (const c of pos.tpCloids) {
      const tp = store.orders.byCloid(c);
      if (tp?.kind !== 'take_profit_1') continue;
      const target = TERMINAL_ORDER_STATES.has(tp.state) ? tp.filledSz : tp.sz;
      return target.gt(0) && sumSz(store.fills.byCloid(c)).gte(target);
    }
    return false;
  }

  /**
   * After TP1: a break-even stop for the rest (onTp1Filled). Its place step runs now; its cancel
   * step runs when the venue acknowledges the new stop (#retireReplacedStops), never before.
   */
  #moveStopToBreakEven(pos: PositionRecord): void {
    const { store, log } = this.#o;
    const instrument = this.#instrument(pos.coin);
    const direction: Direction = pos.szi.isPositive() ? 'long' : 'short';
    const position = { instrument, direction, sz: pos.szi.abs(), entryPx: pos.entryPx, ...(pos.entryCloid ? { entryCloid: pos.entryCloid } : {}) };
    const old = pos.stopCloid ? store.orders.byCloid(pos.stopCloid) : undefined;
    const now = this.#o.now();
    let place: ProtectiveIntent | undefined;
    if (old?.trigger) {
      const plan = onTp1Filled(position, { cloid: old.cloid, triggerPx: old.trigger.triggerPx }, now, this.#protection);
      for (const step of plan.steps) if (step.kind === 'place') place = step.intent;
    } else {
      const be = roundPrice(pos.entryPx, instrument.szDecimals, direction === 'long' ? 'up' : 'down');
      place = stopIntent(instrument, direction, position.sz, be, now, pos.entryCloid, this.#protection);
    }
    if (!place) return;
    const newStop = this.#commit(place);
    store.positions.upsert({ ...fresh(pos), stage: 'tp1_done', stopCloid: newStop.cloid });
    log.info({ cloid: newStop.cloid, coin: pos.coin, sz: newStop.sz.toFixed(), stopPx: newStop.trigger!.triggerPx.toFixed(), replaces: old?.cloid }, 'stop moved to break-even');
    this.#spawn(newStop);
  }

  /** Cancels the stops the position's current stop replaced, once the venue holds the current one. */
  #retireReplacedStops(coin: Coin): void {
    const { store, log } = this.#o;
    const pos = store.positions.get(coin);
    if (!pos?.stopCloid) return;
    const current = store.orders.byCloid(pos.stopCloid);
    if (!current || !ACKNOWLEDGED.has(current.state)) return;
    for (const o of store.orders.unresolved()) {
      if (o.coin !== coin || o.kind !== 'stop_loss' || o.cloid === pos.stopCloid || o.state === 'cancelling') continue;
      log.info({ cloid: o.cloid, coin, replacedBy: pos.stopCloid }, 'cancelling the replaced stop');
      this.#cancel(o.cloid);
    }
  }

  #cancelProtection(pos: PositionRecord): void {
    const { store } = this.#o;
    const cloids = new Set<Cloid>([...(pos.stopCloid ? [pos.stopCloid] : []), ...pos.tpCloids]);
    if (pos.entryCloid) for (const o of store.orders.children(pos.entryCloid)) cloids.add(o.cloid);
    for (const c of cloids) this.#cancel(c);
  }

  #cancel(cloid: Cloid): void {
    const a = this.#actors.get(cloid);
    if (a) a.send({ type: OrderEvents.CANCEL });
  }
}
