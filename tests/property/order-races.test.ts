/**
 * Races between fills, cancels and restarts on machines/order.machine.ts (issue 4, acceptance 5).
 *
 * `fc.scheduler()` owns every asynchronous completion: the order actor's effects (placeOrder,
 * queryStatus, cancelOrder: the venue acts when the scheduler releases the request, so a request
 * sent before a crash may still land after it), the delivery of fills (new ones and duplicate tids)
 * and venue updates (computed when the venue sends them, so they may arrive stale), CANCEL requests,
 * clock advances, and restarts. A restart stops the actor and builds a new one from what a manager
 * persisted, exactly as supervisor/order-manager.ts does: the last emitted `order.state` (state,
 * filledSz, oid, avgPx, expiresAfter) plus the fills recorded for the cloid (deduplicated by tid).
 *
 * The venue is a truthful model of one cloid: an order lands only if its send executes before
 * `expiresAfter`, fills only while live, a cancel lands only on a live order.
 *
 * Invariants, across restarts:
 * - placeOrder runs at most once per cloid;
 * - no `submitting` is persisted after an `unknown`;
 * - the persisted filledSz never decreases, never exceeds the intent's size, and the live actor's
 *   filledSz is at least the sum of the distinct-tid fills it was given (resume fills included);
 * - a cloid is never both unresolved and forgotten: whenever nothing is in flight, an unresolved
 *   persisted state has a live actor with a running effect or a pending timer;
 * - after the races, with the venue responsive and every fill delivered, a live order's filledSz
 *   equals the venue's distinct fills, and a final one never claims more than the venue filled.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock, type Actor } from 'xstate';
import { dec, minDec, ZERO } from '../../src/domain/decimal.ts';
import type { Decimal } from '../../src/domain/decimal.ts';
import { TERMINAL_ORDER_STATES, type CancelResult, type OrderIntent, type OrderState, type PlaceResult, type VenueOrderStatus } from '../../src/domain/types.ts';
import {
  orderMachine,
  OrderEmitted,
  OrderEvents,
  type CancelOrderInput,
  type OrderFill,
  type OrderResume,
  type OrderStateEmitted,
  type PlaceOrderInput,
  type QueryStatusInput,
} from '../../machines/order.machine.ts';

const T0 = 1_700_000_000_000;
const CLOID = '0x00000000000000000000000000000abc';
const CONFIG = { expiresAfterMs: 3_000, statusPollMs: 500, submitTimeoutMs: 2_000, expiryMarginMs: 1_000 };
const SZ = dec('1');
const UNRESOLVED = new Set<OrderState>(['intent', 'submitting', 'unknown', 'cancelling']);

const intent: OrderIntent = { cloid: CLOID, coin: 'BTC', assetId: 0, side: 'buy', sz: SZ, px: dec('65000'), reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: T0 };

type Ext =
  | { readonly k: 'fill'; readonly sz: string }
  | { readonly k: 'dupFill' }
  | { readonly k: 'update' }
  | { readonly k: 'cancel' }
  | { readonly k: 'restart' }
  | { readonly k: 'advance'; readonly ms: number };

const extArb: fc.Arbitrary<Ext> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('fill' as const), sz: fc.constantFrom('0.25', '0.5', '1') }) },
  { weight: 2, arbitrary: fc.constant({ k: 'dupFill' as const }) },
  { weight: 2, arbitrary: fc.constant({ k: 'update' as const }) },
  { weight: 2, arbitrary: fc.constant({ k: 'cancel' as const }) },
  { weight: 3, arbitrary: fc.constant({ k: 'restart' as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(0, 500, 2_000, 5_000) }) },
);

/** How the venue answers each request, drawn per run (consumed in order, cyclically). */
interface Answers {
  /** Per place: the send reaches the venue (else: lost before), and the answer comes back (else: lost). */
  readonly place: readonly { readonly reaches: boolean; readonly answered: boolean }[];
  /** Per cancel: the answer comes back. */
  readonly cancel: readonly boolean[];
  /** Per query: it fails in transport. */
  readonly queryFails: readonly boolean[];
}

const answersArb: fc.Arbitrary<Answers> = fc.record({
  place: fc.array(fc.record({ reaches: fc.boolean(), answered: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  cancel: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
  queryFails: fc.array(fc.boolean(), { minLength: 1, maxLength: 3 }),
});

class Venue {
  exists: boolean | undefined;
  status: 'live' | 'filled' | 'canceled' = 'live';
  readonly fills = new Map<number, Decimal>();
  /** Once set, every request reaches the venue and is answered. */
  reliable = false;
  #tid = 1;
  #n = { place: 0, cancel: 0, query: 0 };
  readonly #answers: Answers;
  constructor(answers: Answers) {
    this.#answers = answers;
  }
  #pick<T>(xs: readonly T[], k: 'place' | 'cancel' | 'query', reliable: T): T {
    return this.reliable ? reliable : xs[this.#n[k]++ % xs.length]!;
  }
  filled(): Decimal {
    return [...this.fills.values()].reduce((a, b) => a.plus(b), ZERO);
  }
  place(now: number, expiresAfter: number): PlaceResult {
    const a = this.#pick(this.#answers.place, 'place', { reaches: true, answered: true });
    // The venue refuses an action after its expiresAfter; an undecided order is decided here.
    if (a.reaches && now <= expiresAfter && this.exists === undefined) this.exists = true;
    if (!a.reaches || now > expiresAfter) {
      if (this.exists === undefined && now > expiresAfter) this.exists = false;
      return a.answered && a.reaches ? { kind: 'rejected', error: 'Action already expired' } : { kind: 'unknown', cause: 'timeout' };
    }
    if (!a.answered) return { kind: 'unknown', cause: 'lost answer' };
    return this.status === 'filled' ? { kind: 'filled', oid: 9, totalSz: this.filled(), avgPx: dec('65000') } : { kind: 'resting', oid: 9 };
  }
  query(now: number, expiresAfter: number | undefined): VenueOrderStatus {
    if (this.#pick(this.#answers.queryFails, 'query', false)) throw new Error('503');
    // Past expiry nothing can land any more: an undecided order never did.
    if (this.exists === undefined && expiresAfter !== undefined && now > expiresAfter) this.exists = false;
    if (this.exists !== true) return { found: false };
    return { found: true, oid: 9, status: this.status === 'live' ? 'open' : this.status, rawStatus: this.status === 'live' ? 'open' : this.status, sz: SZ.minus(this.filled()), origSz: SZ, statusTimestamp: now };
  }
  cancel(): CancelResult {
    const answered = this.#pick(this.#answers.cancel, 'cancel', true);
    if (this.exists === true && this.status === 'live') {
      this.status = 'canceled';
      return answered ? { kind: 'cancelled' } : { kind: 'unknown', cause: 'timeout' };
    }
    return answered ? { kind: 'not_found', error: 'Order was never placed, already canceled, or filled.' } : { kind: 'unknown', cause: 'timeout' };
  }
  fill(sz: Decimal, now: number): OrderFill | undefined {
    if (this.exists !== true || this.status !== 'live') return undefined;
    const take = minDec(sz, SZ.minus(this.filled()));
    const f: OrderFill = { tid: this.#tid++, sz: take, px: dec('65000'), fee: dec('0.1'), time: now, oid: 9 };
    this.fills.set(f.tid, take);
    if (this.filled().gte(SZ)) this.status = 'filled';
    return f;
  }
}

const flush = async () => {
  for (let i = 0; i < 4; i++) await Promise.resolve();
};

async function race(s: fc.Scheduler, answers: Answers, exts: readonly Ext[]): Promise<void> {
  const clock = new SimulatedClock();
  clock.set(T0);
  const venue = new Venue(answers);
  /** What a manager persisted: the last state event, and every fill by tid. */
  let persisted: OrderStateEmitted | undefined;
  const storedFills = new Map<number, OrderFill>();
  const persistedStates: OrderState[] = [];
  let places = 0;
  let sentFills = new Map<number, Decimal>();
  let actor: Actor<typeof orderMachine> | undefined;
  let lastFilled = ZERO;
  let placeExpiry: number | undefined;

  const machine = orderMachine.provide({
    actors: {
      placeOrder: fromPromise<PlaceResult, PlaceOrderInput>(({ input }) => {
        places++;
        placeExpiry = input.expiresAfter;
        return s.schedule(Promise.resolve(), 'place').then(() => venue.place(clock.now(), input.expiresAfter));
      }),
      queryStatus: fromPromise<VenueOrderStatus, QueryStatusInput>(() => s.schedule(Promise.resolve(), 'query').then(() => venue.query(clock.now(), placeExpiry))),
      cancelOrder: fromPromise<CancelResult, CancelOrderInput>(() => s.schedule(Promise.resolve(), 'cancel').then(() => venue.cancel())),
    },
  });

  const check = (where: string) => {
    expect(places, `${where}: placeOrder runs`).toBeLessThanOrEqual(1);
    const u = persistedStates.indexOf('unknown');
    if (u >= 0) expect(persistedStates.slice(u), `${where}: submitting after unknown`).not.toContain('submitting');
    if (persisted) {
      expect(persisted.filledSz.gte(lastFilled), `${where}: persisted filledSz decreased`).toBe(true);
      expect(persisted.filledSz.lte(SZ), `${where}: filledSz above intent`).toBe(true);
      lastFilled = persisted.filledSz;
    }
    if (actor && actor.getSnapshot().status === 'active') {
      const distinct = [...sentFills.values()].reduce((a, b) => a.plus(b), ZERO);
      expect(actor.getSnapshot().context.filledSz.gte(minDec(distinct, SZ)), `${where}: filledSz below the distinct fills`).toBe(true);
    }
  };

  const spawn = () => {
    const resume: OrderResume | undefined = persisted
      ? {
          state: persisted.state,
          filledSz: persisted.filledSz.toFixed(),
          ...(persisted.oid !== undefined ? { oid: persisted.oid } : {}),
          ...(persisted.expiresAfter !== undefined ? { expiresAfter: persisted.expiresAfter } : {}),
          ...(persisted.avgPx ? { avgPx: persisted.avgPx.toFixed() } : {}),
          fills: [...storedFills.values()],
        }
      : undefined;
    // The new actor knows exactly the stored fills.
    sentFills = new Map([...storedFills.values()].map((f) => [f.tid, f.sz]));
    const a = createActor(machine, { clock, input: { intent, config: CONFIG, ...(resume ? { resume } : {}) } });
    a.on(OrderEmitted.STATE, (e) => {
      // The manager's listener persists synchronously (write before act).
      persisted = e as OrderStateEmitted;
      persistedStates.push(persisted.state);
    });
    actor = a;
    a.start();
    clock.increment(0);
  };

  const deliverFill = (f: OrderFill) => {
    // The manager stores every fill (dedup by tid) and routes it to the live actor.
    if (!storedFills.has(f.tid)) storedFills.set(f.tid, f);
    if (actor && actor.getSnapshot().status === 'active') {
      if (!sentFills.has(f.tid)) sentFills.set(f.tid, f.sz);
      actor.send({ type: OrderEvents.FILL, ...f });
    }
  };

  const apply = (e: Ext) => {
    switch (e.k) {
      case 'fill': {
        const f = venue.fill(dec(e.sz), clock.now());
        // The venue's userFills push travels on its own.
        if (f) void s.schedule(Promise.resolve(f), 'fill push').then(deliverFill);
        break;
      }
      case 'dupFill': {
        const tid = [...venue.fills.keys()][0];
        if (tid !== undefined) void s.schedule(Promise.resolve(tid), 'dup push').then((t) => deliverFill({ tid: t, sz: venue.fills.get(t)!, px: dec('65000'), fee: dec('0.1'), time: clock.now(), oid: 9 }));
        break;
      }
      case 'update': {
        if (venue.exists !== true) break;
        // Computed when the venue sends it: it may arrive after newer news.
        const u = { status: venue.status === 'live' ? 'open' : venue.status, sz: SZ.minus(venue.filled()), origSz: SZ, time: clock.now(), oid: 9 };
        void s.schedule(Promise.resolve(u), 'update push').then((x) => {
          if (actor && actor.getSnapshot().status === 'active') actor.send({ type: OrderEvents.VENUE_UPDATE, ...x });
        });
        break;
      }
      case 'cancel':
        if (actor && actor.getSnapshot().status === 'active') actor.send({ type: OrderEvents.CANCEL });
        break;
      case 'restart':
        actor?.stop();
        actor = undefined;
        // Boot is recovery: only unresolved orders get an actor back.
        if (persisted === undefined || !TERMINAL_ORDER_STATES.has(persisted.state)) spawn();
        break;
      case 'advance':
        clock.increment(e.ms);
        break;
    }
  };

  spawn();
  check('start');
  for (const [i, e] of exts.entries()) void s.schedule(Promise.resolve(e), `ext #${i} ${e.k}`).then((x) => {
    apply(x);
    check(`ext #${i} ${JSON.stringify(x)}`);
  });
  // The races: the scheduler picks which completion happens next.
  for (let step = 0; step < 200 && s.count() > 0; step++) {
    await s.waitNext(1);
    await flush();
    check(`step ${step}`);
  }
  // Nothing in flight: an unresolved order must still be being worked on.
  const forgotten = () => {
    if (persisted === undefined || !UNRESOLVED.has(persisted.state)) return false;
    if (!actor || actor.getSnapshot().status !== 'active') return true;
    const running = Object.keys(actor.getSnapshot().children).length > 0;
    const timers = Object.values(actor.system.getSnapshot()._scheduledEvents).some((x) => x.source === actor);
    return !running && !timers;
  };
  expect(forgotten(), `unresolved and forgotten in ${persisted?.state}`).toBe(false);

  // Settle: the venue becomes reliable, every fill is delivered, time passes.
  venue.reliable = true;
  for (const [tid, sz] of venue.fills) deliverFill({ tid, sz, px: dec('65000'), fee: dec('0.1'), time: clock.now(), oid: 9 });
  for (let step = 0; step < 100; step++) {
    if (s.count() > 0) await s.waitNext(1);
    else clock.increment(500);
    await flush();
    check(`settle ${step}`);
    expect(forgotten(), `settle ${step}: unresolved and forgotten`).toBe(false);
    if (persisted && !UNRESOLVED.has(persisted.state) && s.count() === 0) break;
  }
  expect(persisted, 'nothing persisted').toBeDefined();
  const p = persisted!;
  expect(UNRESOLVED.has(p.state), `still unresolved after settling: ${p.state}`).toBe(false);
  expect(p.filledSz.lte(venue.filled()), `claims ${p.filledSz.toFixed()} filled, the venue filled ${venue.filled().toFixed()}`).toBe(true);
  if (!TERMINAL_ORDER_STATES.has(p.state)) {
    // The live actor knows every fill (the persisted row only changes with the state: see the report).
    const live = actor!.getSnapshot().context.filledSz;
    expect(live.eq(venue.filled()), `live ${p.state} filledSz ${live.toFixed()} vs venue ${venue.filled().toFixed()}`).toBe(true);
  }
  if (p.state === 'rejected' && p.error?.startsWith('never placed')) expect(venue.exists, 'never placed, but it landed').not.toBe(true);
  // The manager's fill store is the ledger: it holds exactly the venue's fills.
  expect([...storedFills.keys()].sort()).toEqual([...venue.fills.keys()].sort());
  actor?.stop();
}

describe('order machine: fc.scheduler races between fills, cancels and restarts', () => {
  it('keeps the order invariants in every interleaving', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), answersArb, fc.array(extArb, { minLength: 1, maxLength: 14 }), async (s, answers, exts) => {
        await race(s, answers, exts);
      }),
      { numRuns: 400, seed: 20_250_404 },
    );
  });
});
