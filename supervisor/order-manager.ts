/**
 * The order manager: one order actor (machines/order.machine.ts) per cloid, the exactly-once path
 * and position protection.
 *
 * Invariants:
 *  - Write before you act: a cloid is allocated and its intent committed (synchronous=FULL) before
 *    its order actor may sign anything; every state an order actor emits is persisted at once.
 *  - Never resubmit: an unknown outcome is resolved by orderStatus(cloid) inside the order actor.
 *  - Fills are applied once: `fills.insert` dedups by (tid, oid) before anything else sees a fill.
 *  - After an entry fills, reduce-only exchange-side stop-loss and take-profit orders protect it;
 *    a replacement stop is placed before the stop it replaces is cancelled.
 *  - After a restart every unresolved order gets its actor back (resume), so no cloid is both
 *    unresolved and forgotten.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import { orderMachine, OrderEvents, OrderEmitted, type OrderMachineConfig, type OrderResume, type PlaceOrderInput, type QueryStatusInput, type CancelOrderInput, type OrderStateEmitted } from '../machines/order.machine.ts';
import { Decimal, ZERO, roundPrice, roundSize } from '../src/domain/decimal.ts';
import { TERMINAL_ORDER_STATES, type Cloid, type Coin, type Direction, type Fill, type Instrument, type OrderIntent, type OrderKind } from '../src/domain/types.ts';
import { tradePnl } from '../src/domain/pnl.ts';
import type { Store, NewIntent, PositionRecord } from '../src/store/index.ts';
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
  /** Slippage cap of market-style triggers and exits, as a fraction (0.05 = 5 %). */
  readonly triggerSlippage?: number;
  /** Trailing stop distance as a fraction of price; off when undefined. */
  readonly trailPct?: number;
}

function clock(now: () => number) {
  return {
    setTimeout: (fn: (...a: unknown[]) => void, ms: number) => setTimeout(fn, ms),
    clearTimeout: (id: unknown) => clearTimeout(id as NodeJS.Timeout),
    now,
  };
}

export class OrderManager {
  readonly #o: OrderManagerOptions;
  readonly #actors = new Map<Cloid, OrderActor>();
  #accepting = true;
  #unsubs: (() => void)[] = [];

  constructor(opts: OrderManagerOptions) {
    this.#o = opts;
  }

  get liveOrders(): number {
    return this.#actors.size;
  }

  /** Rebuilds the actors of every unresolved order (boot is recovery) and starts listening. */
  start(): void {
    const { store, bus, log } = this.#o;
    for (const rec of store.orders.unresolved()) {
      const resume: OrderResume = {
        state: rec.state,
        filledSz: rec.filledSz.toFixed(),
        ...(rec.oid !== undefined ? { oid: rec.oid } : {}),
        ...(rec.expiresAfter !== undefined ? { expiresAfter: rec.expiresAfter } : {}),
        ...(rec.avgPx ? { avgPx: rec.avgPx.toFixed() } : {}),
      };
      log.info({ cloid: rec.cloid, state: rec.state, kind: rec.kind }, 'resuming unresolved order');
      this.#spawn(rec, resume);
    }
    this.#unsubs.push(bus.on('order.approved', (a) => this.submitEntry(a)));
    this.#unsubs.push(bus.on('fills', (f) => this.onFills(f.fills)));
    this.#unsubs.push(
      bus.on('orderUpdates', (updates) => {
        for (const u of updates) {
          if (!u.cloid) continue;
          this.#actors.get(u.cloid)?.send({ type: OrderEvents.VENUE_UPDATE, status: u.status, sz: u.sz, origSz: u.origSz, time: u.time, oid: u.oid });
        }
      }),
    );
  }

  /** No new orders from now on (graceful stop, halt). Protective and exit orders still go out. */
  stopAccepting(): void {
    this.#accepting = false;
  }

  /** Resolves when no order actor is in flight (submitting / unknown / cancelling), or at the deadline. */
  async drain(deadlineMs: number): Promise<boolean> {
    const until = this.#o.now() + deadlineMs;
    const busy = () => [...this.#actors.values()].some((a) => ['intent', 'submitting', 'unknown', 'cancelling'].includes(String(a.getSnapshot().value)));
    while (busy() && this.#o.now() < until) await new Promise((r) => setTimeout(r, 50));
    return !busy();
  }

  stop(): void {
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

  #commit(i: NewIntent): OrderIntent {
    return this.#o.store.orders.commitIntent(i);
  }

  #spawn(intent: OrderIntent, resume?: OrderResume): void {
    const { venue, log } = this.#o;
    const machine = orderMachine.provide({
      actors: {
        placeOrder: fromPromise(async ({ input }: { input: PlaceOrderInput }) => {
          log.info({ cloid: input.intent.cloid, coin: input.intent.coin, expiresAfter: input.expiresAfter }, 'sending order');
          return venue.place(input.intent, { expiresAfter: input.expiresAfter });
        }),
        queryStatus: fromPromise(async ({ input }: { input: QueryStatusInput }) => venue.orderStatus(input.cloid)),
        cancelOrder: fromPromise(async ({ input }: { input: CancelOrderInput }) => venue.cancel(input.coin, input.cloid, { expiresAfter: input.expiresAfter })),
      },
    });
    const actor = createActor(machine, { input: { intent, ...(resume ? { resume } : {}), config: this.#o.orderConfig }, clock: clock(this.#o.now) });
    this.#actors.set(intent.cloid, actor);
    actor.on(OrderEmitted.STATE, (e) => this.#onState(intent, e as OrderStateEmitted));
    actor.subscribe({
      error: (err) => {
        log.error({ cloid: intent.cloid, err }, 'order actor failed');
        this.#actors.delete(intent.cloid);
      },
    });
    actor.start();
  }

  #onState(intent: OrderIntent, e: OrderStateEmitted): void {
    const { store, log } = this.#o;
    store.orders.updateState(intent.cloid, {
      state: e.state,
      filledSz: e.filledSz,
      ...(e.oid !== undefined ? { oid: e.oid } : {}),
      ...(e.avgPx ? { avgPx: e.avgPx } : {}),
      ...(e.error !== undefined ? { lastError: e.error } : {}),
      ...(e.expiresAfter !== undefined ? { expiresAfter: e.expiresAfter } : {}),
      ...(e.state === 'submitting' ? { submittedAt: this.#o.now() } : {}),
    });
    const level = e.state === 'rejected' || e.state === 'unknown' ? 'warn' : 'info';
    log[level]({ cloid: intent.cloid, coin: intent.coin, kind: intent.kind, state: e.state, oid: e.oid, filledSz: e.filledSz.toFixed(), avgPx: e.avgPx?.toFixed(), error: e.error }, `order ${e.state}`);
    if (TERMINAL_ORDER_STATES.has(e.state)) {
      this.#actors.get(intent.cloid)?.stop();
      this.#actors.delete(intent.cloid);
      this.#afterTerminal(intent, e);
    }
  }

  /** What happens when an order is finished: protect a new position, tidy up a closed one. */
  #afterTerminal(intent: OrderIntent, e: OrderStateEmitted): void {
    const { store } = this.#o;
    const pos = store.positions.get(intent.coin);
    if (intent.kind !== 'entry' || !pos) return;
    if (e.filledSz.gt(0) && pos.stage === 'unprotected') {
      // Protect what the entry filled, at its average price: the venue's report, which may run
      // ahead of the fills applied to the position row so far.
      const signed = intent.side === 'buy' ? e.filledSz : e.filledSz.neg();
      this.#protect({ ...pos, szi: signed, entryPx: e.avgPx ?? pos.entryPx });
    } else if (e.filledSz.isZero() && pos.szi.isZero()) {
      store.positions.remove(intent.coin);
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
      log.info({ cloid: f.cloid, tid: f.tid, coin: f.coin, side: f.side, px: f.px.toFixed(), sz: f.sz.toFixed(), fee: f.fee.toFixed() }, 'fill');
      if (f.cloid) this.#actors.get(f.cloid)?.send({ type: OrderEvents.FILL, tid: f.tid, sz: f.sz, px: f.px, fee: f.fee, time: f.time, oid: f.oid });
      followUp();
    }
  }

  /** Position and trade bookkeeping for one new fill (inside the caller's transaction); returns what to do after commit. */
  #applyToPosition(f: Fill): () => void {
    const { store, log } = this.#o;
    const none = () => {};
    const signed = f.side === 'buy' ? f.sz : f.sz.neg();
    const pos: PositionRecord | undefined = store.positions.get(f.coin);
    const szi = pos?.szi ?? ZERO;
    const next = szi.plus(signed);
    const order = f.cloid ? store.orders.byCloid(f.cloid) : undefined;
    if (szi.isZero() || szi.isPositive() === signed.isPositive()) {
      // Opening or adding: the entry price is size-weighted.
      // Size-weighted entry, kept to 12 decimals (display and PnL precision far beyond the tick).
      const entryPx = szi.isZero() ? f.px : pos!.entryPx.times(szi.abs()).plus(f.px.times(f.sz)).div(next.abs()).toDecimalPlaces(12);
      store.positions.upsert({
        ...(pos ?? { coin: f.coin, stage: 'unprotected' as const, tpCloids: [] }),
        coin: f.coin,
        szi: next,
        entryPx,
        entryFees: (pos?.entryFees ?? ZERO).plus(f.fee),
        openedAt: pos?.openedAt ?? f.time,
      });
      return none;
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
    const reduced = { ...pos!, szi: next, entryFees: pos!.entryFees.minus(entryFeeShare) };
    store.positions.upsert(reduced);
    if (order?.kind === 'take_profit_1' && pos!.stage === 'open') return () => this.#moveStopToBreakEven(store.positions.get(f.coin) ?? reduced);
    return none;
  }

  #instrument(coin: Coin): Instrument {
    const i = this.#o.instruments.get(coin);
    if (!i) throw new Error(`no instrument for ${coin}`);
    return i;
  }

  #protective(pos: PositionRecord, kind: OrderKind, sz: Decimal, triggerPx: Decimal, tpsl: 'tp' | 'sl'): OrderIntent {
    const inst = this.#instrument(pos.coin);
    const closing = pos.szi.isPositive() ? 'sell' : 'buy';
    const slip = new Decimal(this.#o.triggerSlippage ?? 0.05);
    // Market triggers still carry a limit: the slippage cap from the trigger price.
    const limit = closing === 'sell' ? roundPrice(triggerPx.times(Decimal.sub(1, slip)), inst.szDecimals, 'down') : roundPrice(triggerPx.times(slip.plus(1)), inst.szDecimals, 'up');
    return this.#commit({
      coin: pos.coin,
      assetId: inst.assetId,
      side: closing,
      sz,
      px: limit,
      reduceOnly: true,
      tif: 'Gtc',
      trigger: { triggerPx, tpsl, isMarket: true },
      kind,
      ...(pos.entryCloid ? { parentCloid: pos.entryCloid } : {}),
      createdAt: this.#o.now(),
    });
  }

  /** Stop-loss for the whole size, TP1 for half at 1R, TP2 for the rest at the target. */
  #protect(pos: PositionRecord): void {
    const { store, log } = this.#o;
    const inst = this.#instrument(pos.coin);
    const size = pos.szi.abs();
    const long = pos.szi.isPositive();
    const stopPx = pos.initialStopPx ?? (long ? pos.entryPx.times(0.98) : pos.entryPx.times(1.02));
    const stop = roundPrice(stopPx, inst.szDecimals, long ? 'down' : 'up');
    const r = pos.entryPx.minus(stop).abs();
    const target = roundPrice(pos.takeProfitPx ?? (long ? pos.entryPx.plus(r.times(2)) : pos.entryPx.minus(r.times(2))), inst.szDecimals, long ? 'down' : 'up');
    const oneR = roundPrice(long ? pos.entryPx.plus(r) : pos.entryPx.minus(r), inst.szDecimals, long ? 'up' : 'down');
    const half = roundSize(size.div(2), inst.szDecimals);
    const twoSteps = half.gt(0) && half.times(oneR).gte(10) && size.minus(half).times(target).gte(10);
    const sl = this.#protective(pos, 'stop_loss', size, stop, 'sl');
    const tps: OrderIntent[] = twoSteps ? [this.#protective(pos, 'take_profit_1', half, oneR, 'tp'), this.#protective(pos, 'take_profit', size.minus(half), target, 'tp')] : [this.#protective(pos, 'take_profit', size, target, 'tp')];
    // Only the protective fields change: size and entry stay what the applied fills say.
    const current = store.positions.get(pos.coin) ?? pos;
    store.positions.upsert({ ...current, stage: 'open', stopCloid: sl.cloid, tpCloids: tps.map((t) => t.cloid), initialStopPx: stop, rUnit: r });
    log.info({ cloid: sl.cloid, coin: pos.coin, szi: pos.szi.toFixed(), entryPx: pos.entryPx.toFixed(), stopPx: stop.toFixed(), tp: tps.map((t) => `${t.cloid}@${t.trigger!.triggerPx.toFixed()}x${t.sz.toFixed()}`) }, 'protecting position');
    this.#spawn(sl);
    for (const t of tps) this.#spawn(t);
  }

  /** After TP1: a break-even stop for the rest, placed before the old stop is cancelled. */
  #moveStopToBreakEven(pos: PositionRecord): void {
    const { store, log } = this.#o;
    const inst = this.#instrument(pos.coin);
    const long = pos.szi.isPositive();
    const be = roundPrice(pos.entryPx, inst.szDecimals, long ? 'up' : 'down');
    const newStop = this.#protective(pos, 'stop_loss', pos.szi.abs(), be, 'sl');
    const old = pos.stopCloid;
    store.positions.upsert({ ...pos, stage: 'tp1_done', stopCloid: newStop.cloid, tpCloids: pos.tpCloids });
    log.info({ cloid: newStop.cloid, coin: pos.coin, stopPx: be.toFixed(), replaces: old }, 'stop moved to break-even');
    this.#spawn(newStop);
    if (old) this.#cancel(old);
  }

  #cancelProtection(pos: PositionRecord): void {
    for (const c of [pos.stopCloid, ...pos.tpCloids]) if (c) this.#cancel(c);
  }

  #cancel(cloid: Cloid): void {
    const a = this.#actors.get(cloid);
    if (a) a.send({ type: OrderEvents.CANCEL });
  }
}
