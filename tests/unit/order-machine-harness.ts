/**
 * Test harness for machines/order.machine.ts: fake effect actors whose promises the test settles
 * by hand, a SimulatedClock, and a record of every emitted event and actor invocation.
 */
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { dec } from '../../src/domain/decimal.ts';
import type { Decimal } from '../../src/domain/decimal.ts';
import type { CancelResult, OrderIntent, PlaceResult, VenueOrderStatus } from '../../src/domain/types.ts';
import {
  orderMachine,
  orderStateOf,
  OrderEvents,
  type CancelOrderInput,
  type OrderMachineConfig,
  type OrderMachineEmitted,
  type OrderResume,
  type OrderStateEmitted,
  type PlaceOrderInput,
  type QueryStatusInput,
} from '../../machines/order.machine.ts';

export const T0 = 1_700_000_000_000;
export const CLOID = '0x000000000000000000000000000000a1';

export function makeIntent(over: Partial<OrderIntent> = {}): OrderIntent {
  return {
    cloid: CLOID,
    coin: 'BTC',
    assetId: 0,
    side: 'buy',
    sz: dec('1'),
    px: dec('65000'),
    reduceOnly: false,
    tif: 'Gtc',
    kind: 'entry',
    createdAt: T0,
    ...over,
  };
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
  settled: boolean;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve: (v) => {
      d.settled = true;
      resolve(v);
    },
    reject: (e) => {
      d.settled = true;
      reject(e);
    },
  };
  // An aborted invocation may never be awaited again; keep its rejection quiet.
  promise.catch(() => undefined);
  return d;
}

export interface HarnessOptions {
  readonly intent?: OrderIntent;
  readonly resume?: OrderResume;
  readonly config?: Partial<OrderMachineConfig>;
}

/** Lets the fake actors' promise reactions run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  await new Promise((r) => setImmediate(r));
}

export function startOrder(opts: HarnessOptions = {}) {
  const clock = new SimulatedClock();
  clock.set(T0);
  const emittedBeforePlace: string[][] = [];
  const emitted: OrderMachineEmitted[] = [];
  const calls = { place: [] as PlaceOrderInput[], query: [] as QueryStatusInput[], cancel: [] as CancelOrderInput[] };
  const pending = { place: [] as Deferred<PlaceResult>[], query: [] as Deferred<VenueOrderStatus>[], cancel: [] as Deferred<CancelResult>[] };
  const machine = orderMachine.provide({
    actors: {
      placeOrder: fromPromise<PlaceResult, PlaceOrderInput>(({ input }) => {
        calls.place.push(input);
        // What the manager had been told (and persisted) when the send started.
        emittedBeforePlace.push(emitted.map((e) => (e.type === 'order.state' ? e.state : e.type)));
        const d = deferred<PlaceResult>();
        pending.place.push(d);
        return d.promise;
      }),
      queryStatus: fromPromise<VenueOrderStatus, QueryStatusInput>(({ input }) => {
        calls.query.push(input);
        const d = deferred<VenueOrderStatus>();
        pending.query.push(d);
        return d.promise;
      }),
      cancelOrder: fromPromise<CancelResult, CancelOrderInput>(({ input }) => {
        calls.cancel.push(input);
        const d = deferred<CancelResult>();
        pending.cancel.push(d);
        return d.promise;
      }),
    },
  });
  const intent = opts.intent ?? makeIntent();
  const actor = createActor(machine, {
    input: { intent, ...(opts.resume ? { resume: opts.resume } : {}), ...(opts.config ? { config: opts.config } : {}) },
    clock,
  });
  actor.on('*', (e) => emitted.push(e as OrderMachineEmitted));
  actor.start();
  // A new order is sent on a zero-delay timer, once the actor runs (see the machine's header).
  clock.increment(0);

  const last = <T>(xs: readonly T[]): T => {
    const x = xs[xs.length - 1];
    if (x === undefined) throw new Error('nothing pending');
    return x;
  };

  return {
    actor,
    clock,
    calls,
    pending,
    emitted,
    emittedBeforePlace,
    intent,
    state: () => orderStateOf(actor.getSnapshot()),
    ctx: () => actor.getSnapshot().context,
    /** The lifecycle states emitted, in order. */
    states: () => emitted.filter((e): e is OrderStateEmitted => e.type === 'order.state').map((e) => e.state),
    lastState: () => last(emitted.filter((e): e is OrderStateEmitted => e.type === 'order.state')),
    async place(r: PlaceResult) {
      last(pending.place).resolve(r);
      await flush();
    },
    async placeFails(e: unknown) {
      last(pending.place).reject(e);
      await flush();
    },
    async query(r: VenueOrderStatus) {
      last(pending.query).resolve(r);
      await flush();
    },
    async cancelResult(r: CancelResult) {
      last(pending.cancel).resolve(r);
      await flush();
    },
    async advance(ms: number) {
      clock.increment(ms);
      await flush();
    },
    fill(tid: number, sz: Decimal.Value, px: Decimal.Value = '65000') {
      actor.send({ type: OrderEvents.FILL, tid, sz: dec(sz), px: dec(px), fee: dec('0.5'), time: clock.now() });
    },
    update(status: string, sz: Decimal.Value, origSz: Decimal.Value, oid?: number) {
      actor.send({ type: OrderEvents.VENUE_UPDATE, status, sz: dec(sz), origSz: dec(origSz), time: clock.now(), ...(oid !== undefined ? { oid } : {}) });
    },
    cancel() {
      actor.send({ type: OrderEvents.CANCEL });
    },
  };
}

export function found(status: 'open' | 'filled' | 'canceled' | 'triggered' | 'rejected' | 'other', sz: Decimal.Value, origSz: Decimal.Value, oid = 42, rawStatus: string = status): VenueOrderStatus {
  return { found: true, oid, status, rawStatus, sz: dec(sz), origSz: dec(origSz), statusTimestamp: T0 };
}

export const NOT_FOUND: VenueOrderStatus = { found: false };
