/**
 * The lifecycle of ONE order (one cloid): the exactly-once path of architecture.md.
 *
 * The order manager has already allocated the cloid and committed the intent (synchronous=FULL)
 * before this machine starts; the machine sends it at most once and then only observes.
 *
 * Invariants:
 * - `placeOrder` is invoked at most once per machine: only `submitting` invokes it and the only
 *   transition into `submitting` is from `intent` (a fresh start, or a resume that recorded no
 *   submit attempt). `unknown` never leads back to `submitting`.
 * - An unknown outcome (timeout, lost answer, transport failure) is resolved only by `orderStatus`
 *   by cloid; "not found" counts as proof that the order was never placed only when the query was
 *   *started* after `expiresAfter` + a margin (the venue refuses the action after that time).
 * - Fills are deduplicated by `tid`; `filledSz` never decreases and never exceeds `intent.sz`.
 *   It is the larger of the distinct fills' sum and the largest filled size a venue report showed
 *   (a report and the fills describe the same quantity, so they are never added together).
 * - Every non-final state that is not acknowledged by the venue (`submitting`, `unknown`,
 *   `cancelling`) always has a running actor or a pending timer, so no cloid is ever both
 *   unresolved and forgotten.
 * - No I/O here: the manager persists what the machine emits (`order.state`, `order.fill`), and it
 *   must do so synchronously in its listener: the `submitting` emit (with its `expiresAfter`)
 *   reaches the listener before `placeOrder` starts, which is what makes "write before you act"
 *   hold for the submit attempt. A new order leaves `intent` on a zero-delay timer for that reason
 *   (with a SimulatedClock, `increment(0)` after `start()` sends it).
 *
 * Time: `now` is read from the actor system's clock (`KeelClock`: XState's clock plus `now()`;
 * `SimulatedClock` has it; the supervisor creates the root actor with a real one).
 */
import { assign, emit, enqueueActions, fromPromise, setup } from 'xstate';
import type { SnapshotFrom } from 'xstate';
import { Decimal, ZERO, maxDec, minDec } from '../src/domain/decimal.ts';
import type { CancelResult, Cloid, Coin, OrderIntent, OrderState, PlaceResult, VenueOrderStatus } from '../src/domain/types.ts';

// ---------------------------------------------------------------------------------------------
// Switchboard strings
// ---------------------------------------------------------------------------------------------

/** Events the manager sends to an order actor. */
export const OrderEvents = {
  /** A fill for this cloid (from userFills or the REST backstop), possibly a duplicate. */
  FILL: 'order.fill_received',
  /** An orderUpdates entry for this cloid (raw venue status: open / filled / canceled / triggered / …Rejected …). */
  VENUE_UPDATE: 'order.venue_updated',
  /** Cancel the order (entries on halt, replaced stops, flatten). */
  CANCEL: 'order.cancel',
} as const;

/** Events the machine emits for the manager to persist. */
export const OrderEmitted = {
  STATE: 'order.state',
  FILL: 'order.fill',
} as const;

/** The effect actors the supervisor provides with `.provide({ actors })`. */
export const OrderActors = {
  placeOrder: 'placeOrder',
  queryStatus: 'queryStatus',
  cancelOrder: 'cancelOrder',
} as const;

// ---------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------

export interface OrderMachineConfig {
  /** How far ahead of the send the venue must refuse the action. */
  readonly expiresAfterMs: number;
  readonly statusPollMs: number;
  /** Backstop for a `placeOrder` that never answers: the outcome becomes unknown. */
  readonly submitTimeoutMs: number;
  /** Slack for the venue's clock before "not found" proves an order was never placed. */
  readonly expiryMarginMs: number;
}

export const DEFAULT_ORDER_CONFIG: OrderMachineConfig = Object.freeze({
  expiresAfterMs: 5_000,
  statusPollMs: 1_000,
  submitTimeoutMs: 10_000,
  expiryMarginMs: 2_000,
});

export interface OrderResume {
  /** The last state the manager persisted for this cloid. */
  readonly state: OrderState;
  readonly oid?: number;
  readonly filledSz: Decimal.Value;
  /** The `expiresAfter` of the submit attempt, when it was persisted; otherwise assumed as late as possible. */
  readonly expiresAfter?: number;
  readonly avgPx?: Decimal.Value;
  /** The fills already persisted for this cloid: their tids must stay deduplicated across the restart. */
  readonly fills?: readonly OrderFill[];
}

export interface OrderMachineInput {
  readonly intent: OrderIntent;
  readonly resume?: OrderResume;
  readonly config?: Partial<OrderMachineConfig>;
}

/** One fill as the order actor receives it (the manager routes by cloid). */
export interface OrderFill {
  readonly tid: number;
  readonly sz: Decimal;
  readonly px: Decimal;
  readonly fee: Decimal;
  readonly time: number;
  readonly oid?: number;
}

/** An orderUpdates entry for this cloid; `status` is the venue's raw string. */
export interface OrderVenueUpdate {
  readonly status: string;
  readonly sz: Decimal;
  readonly origSz: Decimal;
  readonly time: number;
  readonly oid?: number;
}

export type OrderMachineEvent =
  | ({ readonly type: typeof OrderEvents.FILL } & OrderFill)
  | ({ readonly type: typeof OrderEvents.VENUE_UPDATE } & OrderVenueUpdate)
  | { readonly type: typeof OrderEvents.CANCEL };

export interface OrderStateEmitted {
  readonly type: typeof OrderEmitted.STATE;
  readonly cloid: Cloid;
  readonly state: OrderState;
  readonly oid?: number;
  readonly filledSz: Decimal;
  readonly avgPx?: Decimal;
  readonly error?: string;
  /** Set once a submit attempt exists; persist it so a resume can prove absence without waiting. */
  readonly expiresAfter?: number;
}

export interface OrderFillEmitted {
  readonly type: typeof OrderEmitted.FILL;
  readonly cloid: Cloid;
  readonly fill: OrderFill;
  readonly filledSz: Decimal;
  readonly avgPx?: Decimal;
}

export type OrderMachineEmitted = OrderStateEmitted | OrderFillEmitted;

export interface PlaceOrderInput {
  readonly intent: OrderIntent;
  readonly expiresAfter: number;
}
export interface QueryStatusInput {
  readonly cloid: Cloid;
  readonly coin: Coin;
}
export interface CancelOrderInput {
  readonly cloid: Cloid;
  readonly coin: Coin;
  readonly oid?: number;
  readonly expiresAfter: number;
}

export interface OrderContext {
  readonly intent: OrderIntent;
  readonly config: OrderMachineConfig;
  readonly resumed: boolean;
  readonly oid?: number;
  /** Distinct fills, in arrival order. */
  readonly fills: readonly OrderFill[];
  readonly fillSz: Decimal;
  /** Largest filled size a venue report (place result, order status, order update) showed. */
  readonly venueFilledSz: Decimal;
  readonly venueAvgPx?: Decimal;
  readonly filledSz: Decimal;
  readonly avgPx?: Decimal;
  readonly triggered: boolean;
  /** `expiresAfter` of the (single) submit attempt. */
  readonly expiresAfter?: number;
  readonly cancelExpiresAfter?: number;
  readonly cancelRequested: boolean;
  /** True while the running status query was started after expiresAfter + margin. */
  readonly queryProvesAbsence: boolean;
  /** The state the latest observation proved; consumed by the eventless routes. */
  readonly next?: OrderState;
  readonly error?: string;
}

/** XState's clock plus the current time, as keel injects it into every actor system. */
export interface KeelClock {
  setTimeout(fn: (...args: unknown[]) => void, timeout: number): unknown;
  clearTimeout(id: unknown): void;
  now(): number;
}

/** Thrown when an actor system was created without a clock that tells the time. */
export class OrderClockError extends Error {
  constructor() {
    super('order machine: the actor system clock has no now(); create the root actor with a KeelClock');
    this.name = 'OrderClockError';
  }
}

// ---------------------------------------------------------------------------------------------
// Pure helpers: every observation is folded into context by one of these reducers
// ---------------------------------------------------------------------------------------------

export const NEVER_PLACED = 'never placed (proved by orderStatus after expiry)';

function nowOf(system: unknown): number {
  const clock = (system as unknown as { _clock?: Partial<KeelClock> })._clock;
  if (typeof clock?.now !== 'function') throw new OrderClockError();
  return clock.now();
}

export type OrderPatch = Partial<Omit<OrderContext, 'intent' | 'config' | 'resumed'>>;

/** Recomputes `filledSz` / `avgPx` from fills and venue reports (never above intent.sz). */
function settle(ctx: OrderContext, patch: OrderPatch): OrderPatch {
  const fillSz = patch.fillSz ?? ctx.fillSz;
  const venueFilledSz = patch.venueFilledSz ?? ctx.venueFilledSz;
  const fills = patch.fills ?? ctx.fills;
  const venueAvgPx = patch.venueAvgPx ?? ctx.venueAvgPx;
  const filledSz = minDec(maxDec(maxDec(fillSz, venueFilledSz), ctx.filledSz), ctx.intent.sz);
  let avgPx: Decimal | undefined;
  if (fillSz.gt(0) && (fillSz.gte(venueFilledSz) || venueAvgPx === undefined)) {
    avgPx = fills.reduce((acc, f) => acc.plus(f.px.times(f.sz)), ZERO).div(fillSz);
  } else {
    avgPx = venueAvgPx ?? ctx.avgPx;
  }
  return { ...patch, filledSz, avgPx };
}

/** The live state the known filled size implies. */
function liveState(filledSz: Decimal, intent: OrderIntent): 'resting' | 'partially_filled' | 'filled' {
  if (filledSz.gte(intent.sz)) return 'filled';
  return filledSz.gt(0) ? 'partially_filled' : 'resting';
}

/** Filled size a venue report implies: origSz − remaining (0 when the report carries no sizes). */
function reportedFilled(origSz: Decimal, sz: Decimal, intent: OrderIntent): Decimal {
  const orig = origSz.gt(0) ? origSz : intent.sz;
  return maxDec(ZERO, orig.minus(sz));
}

export type VenueStatusClass = 'open' | 'filled' | 'canceled' | 'triggered' | 'rejected' | 'other';

/** Maps a raw orderUpdates / orderStatus string to what it means for the lifecycle. */
export function classifyVenueStatus(raw: string): VenueStatusClass {
  if (raw === 'open' || raw === 'filled' || raw === 'triggered' || raw === 'rejected') return raw;
  if (raw === 'canceled' || raw === 'scheduledCancel' || /Canceled$/.test(raw)) return 'canceled';
  if (/Rejected$/.test(raw)) return 'rejected';
  return 'other';
}

export interface VenueReport {
  readonly status: VenueStatusClass;
  readonly rawStatus: string;
  readonly oid?: number;
  readonly sz: Decimal;
  readonly origSz: Decimal;
}

/**
 * Folds a venue report (order status or order update) into context and names the state it proves.
 * A clear answer clears the last error: `error` describes the problem behind the current state.
 */
export function observeReport(ctx: OrderContext, report: VenueReport): OrderPatch {
  const oid = report.oid ?? ctx.oid;
  switch (report.status) {
    case 'open':
    case 'triggered': {
      const s = settle(ctx, { oid, venueFilledSz: maxDec(ctx.venueFilledSz, reportedFilled(report.origSz, report.sz, ctx.intent)), triggered: ctx.triggered || report.status === 'triggered' });
      return { ...s, next: liveState(s.filledSz!, ctx.intent), error: undefined };
    }
    case 'filled':
    case 'canceled': {
      const done = report.status === 'filled' && report.sz.isZero() ? ctx.intent.sz : reportedFilled(report.origSz, report.sz, ctx.intent);
      const s = settle(ctx, { oid, venueFilledSz: maxDec(ctx.venueFilledSz, done) });
      // A done order that is not completely filled had its remainder cancelled (Ioc, margin, …).
      return { ...s, next: s.filledSz!.gte(ctx.intent.sz) ? 'filled' : 'cancelled', error: undefined };
    }
    case 'rejected':
      return { ...settle(ctx, { oid }), next: 'rejected', error: `venue status ${report.rawStatus}` };
    case 'other':
      return { oid, error: `unrecognised venue status ${report.rawStatus}` };
  }
}

/** Folds an orderStatus answer into context (`unknown` / `cancelling` confirmations). */
export function observeStatus(ctx: OrderContext, status: VenueOrderStatus, whileCancelling: boolean): OrderPatch {
  if (!status.found) {
    if (whileCancelling) return { next: 'cancelled', error: 'venue does not know the order while cancelling' };
    return ctx.queryProvesAbsence ? { next: 'rejected', error: NEVER_PLACED } : {};
  }
  // The adapter's coarse class may be 'other' for statuses such as reduceOnlyCanceled or
  // scheduledCancel; the raw string is the authority.
  const cls = status.status === 'other' ? classifyVenueStatus(status.rawStatus) : status.status;
  const patch = observeReport(ctx, { status: cls, rawStatus: status.rawStatus, oid: status.oid, sz: status.sz, origSz: status.origSz });
  // While cancelling, a live answer means "try the cancel again", not "go back to resting".
  if (whileCancelling && (patch.next === 'resting' || patch.next === 'partially_filled')) return { ...patch, next: undefined };
  return patch;
}

/** Folds the `placeOrder` result into context. */
export function observePlaced(ctx: OrderContext, result: PlaceResult): OrderPatch {
  switch (result.kind) {
    case 'resting':
    case 'waiting': {
      const s = settle(ctx, { oid: result.oid ?? ctx.oid });
      return { ...s, next: liveState(s.filledSz!, ctx.intent), error: undefined };
    }
    case 'filled': {
      const overfill = result.totalSz.gt(ctx.intent.sz);
      const s = settle(ctx, { oid: result.oid, venueFilledSz: maxDec(ctx.venueFilledSz, result.totalSz), venueAvgPx: result.avgPx });
      const complete = s.filledSz!.gte(ctx.intent.sz);
      // An Ioc's unfilled remainder is cancelled by the venue; any other order may keep resting.
      const next: OrderState = complete ? 'filled' : ctx.intent.tif === 'Ioc' ? 'cancelled' : liveState(s.filledSz!, ctx.intent);
      return { ...s, next, error: overfill ? `venue reports ${result.totalSz.toFixed()} filled of ${ctx.intent.sz.toFixed()}` : undefined };
    }
    case 'rejected':
      // Fills already seen contradict a rejection: ask the venue rather than believe either.
      return ctx.fillSz.gt(0) ? { next: 'unknown', error: `rejected after fills: ${result.error}` } : { next: 'rejected', error: result.error };
    case 'unknown':
      return observeLost(ctx, result.cause);
  }
}

/** Timeout / lost answer / transport failure: unknown, unless fills already prove the order exists. */
export function observeLost(ctx: OrderContext, cause: string): OrderPatch {
  if (ctx.fillSz.gt(0)) return { next: liveState(ctx.filledSz, ctx.intent), error: cause };
  return { next: 'unknown', error: cause };
}

/** Folds a fill (already known to be new) into context; `routeLive` says whether it may move the state. */
export function observeFill(ctx: OrderContext, fill: OrderFill, routeLive: boolean): OrderPatch {
  const fillSz = ctx.fillSz.plus(fill.sz);
  const s = settle(ctx, { fills: [...ctx.fills, fill], fillSz, oid: ctx.oid ?? fill.oid });
  const error = fillSz.gt(ctx.intent.sz) ? `fills total ${fillSz.toFixed()} exceed order size ${ctx.intent.sz.toFixed()}` : undefined;
  const next = routeLive ? liveState(s.filledSz!, ctx.intent) : s.filledSz!.gte(ctx.intent.sz) ? 'filled' : undefined;
  return { ...s, next, ...(error ? { error } : {}) };
}

function toReport(u: OrderVenueUpdate): VenueReport {
  return { status: classifyVenueStatus(u.status), rawStatus: u.status, oid: u.oid, sz: u.sz, origSz: u.origSz };
}

function distinctByTid(fills: readonly OrderFill[]): OrderFill[] {
  const seen = new Set<number>();
  return fills.filter((f) => (seen.has(f.tid) ? false : (seen.add(f.tid), true)));
}

function resumeTarget(resume: OrderResume | undefined): OrderState {
  if (resume === undefined) return 'submitting';
  // After a crash we cannot know whether a send in flight happened: only the venue can tell.
  if (resume.state === 'submitting') return 'unknown';
  if (resume.state === 'intent') return 'submitting';
  return resume.state;
}

function initialContext(input: OrderMachineInput): OrderContext {
  const config: OrderMachineConfig = { ...DEFAULT_ORDER_CONFIG, ...input.config };
  const r = input.resume;
  const fills = distinctByTid(r?.fills ?? []);
  const fillSz = fills.reduce((acc, f) => acc.plus(f.sz), ZERO);
  const persisted = r ? new Decimal(r.filledSz) : ZERO;
  const filled = minDec(maxDec(persisted, fillSz), input.intent.sz);
  const avgPx = fillSz.gt(0) ? fills.reduce((acc, f) => acc.plus(f.px.times(f.sz)), ZERO).div(fillSz) : r?.avgPx !== undefined ? new Decimal(r.avgPx) : undefined;
  return {
    intent: input.intent,
    config,
    resumed: r !== undefined,
    ...(r?.oid !== undefined ? { oid: r.oid } : {}),
    fills,
    fillSz,
    // The persisted size is what earlier reports and fills showed: a lower bound, like a venue report.
    venueFilledSz: minDec(persisted, input.intent.sz),
    ...(r?.avgPx !== undefined ? { venueAvgPx: new Decimal(r.avgPx) } : {}),
    ...(avgPx !== undefined ? { avgPx } : {}),
    filledSz: filled,
    triggered: false,
    ...(r?.expiresAfter !== undefined ? { expiresAfter: r.expiresAfter } : {}),
    cancelRequested: false,
    queryProvesAbsence: false,
    next: resumeTarget(r),
  };
}

function stateEvent(ctx: OrderContext, state: OrderState): OrderStateEmitted {
  return {
    type: OrderEmitted.STATE,
    cloid: ctx.intent.cloid,
    state,
    ...(ctx.oid !== undefined ? { oid: ctx.oid } : {}),
    filledSz: ctx.filledSz,
    ...(ctx.avgPx !== undefined ? { avgPx: ctx.avgPx } : {}),
    ...(ctx.error !== undefined ? { error: ctx.error } : {}),
    ...(ctx.expiresAfter !== undefined ? { expiresAfter: ctx.expiresAfter } : {}),
  };
}

/** Eventless routes from a state to the states an observation may prove from there. */
function routes(targets: readonly OrderState[]) {
  return [
    ...targets.map((state) => ({ guard: { type: 'proves', params: { state } } as const, target: `#order.${state}`, actions: 'clearProof' as const })),
    // A proof that leads nowhere from here (e.g. "resting" while resting) is dropped.
    { guard: 'hasProof' as const, actions: 'clearProof' as const },
  ];
}

function describeCancel(result: CancelResult): string {
  return result.kind === 'not_found' ? `cancel: ${result.error}` : result.kind === 'unknown' ? `cancel outcome unknown: ${result.cause}` : 'cancelled';
}

function notProvided(name: string): never {
  throw new Error(`order machine: actor ${name} not provided`);
}

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

export const orderMachine = setup({
  types: {
    context: {} as OrderContext,
    events: {} as OrderMachineEvent,
    input: {} as OrderMachineInput,
    emitted: {} as OrderMachineEmitted,
  },
  actors: {
    placeOrder: fromPromise<PlaceResult, PlaceOrderInput>(async () => notProvided(OrderActors.placeOrder)),
    queryStatus: fromPromise<VenueOrderStatus, QueryStatusInput>(async () => notProvided(OrderActors.queryStatus)),
    cancelOrder: fromPromise<CancelResult, CancelOrderInput>(async () => notProvided(OrderActors.cancelOrder)),
  },
  delays: {
    afterStart: 0,
    submitTimeout: ({ context }) => context.config.submitTimeoutMs,
    statusPoll: ({ context }) => context.config.statusPollMs,
  },
  guards: {
    proves: ({ context }, params: { state: OrderState }) => context.next === params.state,
    hasProof: ({ context }) => context.next !== undefined,
    isNewFill: ({ context, event }) =>
      event.type === OrderEvents.FILL && event.sz.gt(0) && !context.fills.some((f) => f.tid === event.tid),
    cancelRequested: ({ context }) => context.cancelRequested,
    cancelAcknowledged: (_, params: { result: CancelResult }) => params.result.kind === 'cancelled',
  },
  actions: {
    clearProof: assign({ next: undefined }),
    emitState: enqueueActions(({ context, enqueue }, params: { state: OrderState }) => {
      // A resumed actor passes through `intent` only to reach its persisted state.
      if (params.state === 'intent' && context.resumed) return;
      enqueue.emit(stateEvent(context, params.state));
    }),
    emitFill: emit(({ context }) => {
      const fill = context.fills[context.fills.length - 1]!;
      return { type: OrderEmitted.FILL, cloid: context.intent.cloid, fill, filledSz: context.filledSz, ...(context.avgPx ? { avgPx: context.avgPx } : {}) };
    }),
    /** A resumed submit attempt without a persisted expiry: assume the latest it could be. */
    stampResumedExpiry: assign(({ context, system }) =>
      context.resumed && context.next === 'unknown' && context.expiresAfter === undefined ? { expiresAfter: nowOf(system) + context.config.expiresAfterMs } : {},
    ),
    stampExpiry: assign(({ context, system }) => ({ expiresAfter: nowOf(system) + context.config.expiresAfterMs })),
    stampCancelExpiry: assign(({ context, system }) => ({ cancelExpiresAfter: nowOf(system) + context.config.expiresAfterMs })),
    stampQuery: assign(({ context, system }) => ({
      queryProvesAbsence: context.expiresAfter !== undefined && nowOf(system) > context.expiresAfter + context.config.expiryMarginMs,
    })),
    observePlaced: assign(({ context }, params: { result: PlaceResult }) => observePlaced(context, params.result)),
    observeLost: assign(({ context }, params: { cause: string }) => observeLost(context, params.cause)),
    observeStatus: assign(({ context }, params: { status: VenueOrderStatus; whileCancelling: boolean }) => observeStatus(context, params.status, params.whileCancelling)),
    observeUpdate: assign(({ context, event }) => (event.type === OrderEvents.VENUE_UPDATE ? observeReport(context, toReport(event)) : {})),
    observeFill: assign(({ context, event }, params: { routeLive: boolean }) =>
      event.type === OrderEvents.FILL ? observeFill(context, { tid: event.tid, sz: event.sz, px: event.px, fee: event.fee, time: event.time, ...(event.oid !== undefined ? { oid: event.oid } : {}) }, params.routeLive) : {},
    ),
    observeCancelled: assign(({ context }) => ({ next: context.filledSz.gte(context.intent.sz) ? 'filled' : 'cancelled' }) as OrderPatch),
    noteError: assign((_, params: { error: string }) => ({ error: params.error })),
    requestCancel: assign({ cancelRequested: true }),
  },
}).createMachine({
  id: 'order',
  context: ({ input }) => initialContext(input),
  initial: 'intent',
  states: {
    intent: {
      entry: [{ type: 'emitState', params: { state: 'intent' } }, 'stampResumedExpiry'],
      // A resumed order goes straight to its persisted state (never to submitting from here) …
      always: routes(['unknown', 'resting', 'partially_filled', 'cancelling', 'filled', 'cancelled', 'rejected']),
      // … a new one is sent only once the actor runs: XState starts the children of the initial
      // macrostep before it delivers that step's emits, so sending from it would act before write.
      after: { afterStart: { target: 'submitting' } },
    },
    submitting: {
      entry: ['stampExpiry', { type: 'emitState', params: { state: 'submitting' } }],
      invoke: {
        id: OrderActors.placeOrder,
        src: 'placeOrder',
        input: ({ context }) => ({ intent: context.intent, expiresAfter: context.expiresAfter! }),
        onDone: { actions: { type: 'observePlaced', params: ({ event }) => ({ result: event.output }) } },
        onError: { actions: { type: 'observeLost', params: ({ event }) => ({ cause: `placeOrder failed: ${String(event.error)}` }) } },
      },
      after: { submitTimeout: { actions: { type: 'observeLost', params: { cause: 'placeOrder timed out' } } } },
      on: {
        [OrderEvents.FILL]: { guard: 'isNewFill', actions: [{ type: 'observeFill', params: { routeLive: false } }, 'emitFill'] },
        [OrderEvents.VENUE_UPDATE]: { actions: 'observeUpdate' },
        [OrderEvents.CANCEL]: { actions: 'requestCancel' },
      },
      always: routes(['unknown', 'resting', 'partially_filled', 'filled', 'cancelled', 'rejected']),
    },
    unknown: {
      entry: { type: 'emitState', params: { state: 'unknown' } },
      initial: 'querying',
      states: {
        querying: {
          entry: 'stampQuery',
          invoke: {
            id: OrderActors.queryStatus,
            src: 'queryStatus',
            input: ({ context }) => ({ cloid: context.intent.cloid, coin: context.intent.coin }),
            onDone: { target: 'waiting', actions: { type: 'observeStatus', params: ({ event }) => ({ status: event.output, whileCancelling: false }) } },
            onError: { target: 'waiting', actions: { type: 'noteError', params: ({ event }) => ({ error: `orderStatus failed: ${String(event.error)}` }) } },
          },
        },
        waiting: { after: { statusPoll: 'querying' } },
      },
      on: {
        [OrderEvents.FILL]: { guard: 'isNewFill', actions: [{ type: 'observeFill', params: { routeLive: true } }, 'emitFill'] },
        [OrderEvents.VENUE_UPDATE]: { actions: 'observeUpdate' },
        [OrderEvents.CANCEL]: { actions: 'requestCancel' },
      },
      // Never `submitting`: only the venue's answer, or proof of absence, leaves `unknown`.
      always: routes(['resting', 'partially_filled', 'filled', 'cancelled', 'rejected']),
    },
    resting: {
      entry: { type: 'emitState', params: { state: 'resting' } },
      on: {
        [OrderEvents.FILL]: { guard: 'isNewFill', actions: [{ type: 'observeFill', params: { routeLive: true } }, 'emitFill'] },
        [OrderEvents.VENUE_UPDATE]: { actions: 'observeUpdate' },
        [OrderEvents.CANCEL]: { target: 'cancelling' },
      },
      always: [...routes(['partially_filled', 'filled', 'cancelled', 'rejected']), { guard: 'cancelRequested', target: 'cancelling' }],
    },
    partially_filled: {
      entry: { type: 'emitState', params: { state: 'partially_filled' } },
      on: {
        [OrderEvents.FILL]: { guard: 'isNewFill', actions: [{ type: 'observeFill', params: { routeLive: true } }, 'emitFill'] },
        [OrderEvents.VENUE_UPDATE]: { actions: 'observeUpdate' },
        [OrderEvents.CANCEL]: { target: 'cancelling' },
      },
      always: [...routes(['filled', 'cancelled', 'rejected']), { guard: 'cancelRequested', target: 'cancelling' }],
    },
    cancelling: {
      entry: { type: 'emitState', params: { state: 'cancelling' } },
      initial: 'requesting',
      states: {
        requesting: {
          entry: 'stampCancelExpiry',
          invoke: {
            id: OrderActors.cancelOrder,
            src: 'cancelOrder',
            input: ({ context }) => ({ cloid: context.intent.cloid, coin: context.intent.coin, ...(context.oid !== undefined ? { oid: context.oid } : {}), expiresAfter: context.cancelExpiresAfter! }),
            onDone: [
              { guard: { type: 'cancelAcknowledged', params: ({ event }) => ({ result: event.output }) }, actions: 'observeCancelled' },
              // not_found (already filled or cancelled?) or unknown (did it land?): ask the venue.
              { target: 'confirming', actions: { type: 'noteError', params: ({ event }) => ({ error: describeCancel(event.output) }) } },
            ],
            onError: { target: 'confirming', actions: { type: 'noteError', params: ({ event }) => ({ error: `cancelOrder failed: ${String(event.error)}` }) } },
          },
        },
        confirming: {
          invoke: {
            id: OrderActors.queryStatus,
            src: 'queryStatus',
            input: ({ context }) => ({ cloid: context.intent.cloid, coin: context.intent.coin }),
            onDone: { target: 'backoff', actions: { type: 'observeStatus', params: ({ event }) => ({ status: event.output, whileCancelling: true }) } },
            onError: { target: 'backoff', actions: { type: 'noteError', params: ({ event }) => ({ error: `orderStatus failed: ${String(event.error)}` }) } },
          },
        },
        // Still live at the venue: the cancel did not land; try again after a pause.
        backoff: { after: { statusPoll: 'requesting' } },
      },
      on: {
        [OrderEvents.FILL]: { guard: 'isNewFill', actions: [{ type: 'observeFill', params: { routeLive: false } }, 'emitFill'] },
        [OrderEvents.VENUE_UPDATE]: { actions: 'observeUpdate' },
      },
      always: routes(['filled', 'cancelled', 'rejected']),
    },
    filled: { type: 'final', entry: { type: 'emitState', params: { state: 'filled' } } },
    cancelled: { type: 'final', entry: { type: 'emitState', params: { state: 'cancelled' } } },
    rejected: { type: 'final', entry: { type: 'emitState', params: { state: 'rejected' } } },
  },
});

export type OrderMachine = typeof orderMachine;
export type OrderSnapshot = SnapshotFrom<OrderMachine>;

/** The lifecycle state of a snapshot (the top-level state; substates are polling details). */
export function orderStateOf(snapshot: OrderSnapshot): OrderState {
  const v = snapshot.value;
  return (typeof v === 'string' ? v : Object.keys(v)[0]) as OrderState;
}
