/**
 * Property tests of src/domain/reconciliation.ts over random (local, venue) pairs, seeded.
 *
 * The generator builds a small world on two coins: our orders in every lifecycle state, the book
 * (some of ours, some of ours we lost track of, the operator's and another runtime's orders),
 * order statuses for what the shell would query (sometimes missing), fills with repeated and
 * already-held (tid, oid) keys, and positions on both sides that may or may not agree. The
 * invariants are the ones stated at the top of reconciliation.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dec, ZERO } from '../../src/domain/decimal.ts';
import type { Decimal } from '../../src/domain/decimal.ts';
import { ORDER_STATES, TERMINAL_ORDER_STATES } from '../../src/domain/types.ts';
import type { Fill, OrderKind, OrderState, VenueOrder, VenueOrderStatus } from '../../src/domain/types.ts';
import {
  applyActions,
  cloidsToQuery,
  isOurCloid,
  NEVER_PLACED_REASON,
  nonZeroPositions,
  reconcile,
  type LocalOrder,
  type LocalState,
  type ReconcileOptions,
  type VenueSnapshot,
} from '../../src/domain/reconciliation.ts';

const PREFIX = '0a1b2c3d';
const FOREIGN = 'ffffeeee';
const NOW = 1_700_000_000_000;
const SLACK = 2_000;
const COINS = ['BTC', 'ETH'] as const;
const SIZES = ['0', '0.1', '0.2', '-0.1', '-0.2'] as const;
const cloid = (n: number, prefix = PREFIX) => `0x${prefix}${n.toString(16).padStart(24, '0')}`;
const KINDS: readonly OrderKind[] = ['entry', 'stop_loss', 'take_profit', 'take_profit_1', 'exit', 'flatten'];

interface OrderSpec {
  readonly state: OrderState;
  readonly kind: OrderKind;
  readonly coin: (typeof COINS)[number];
  readonly buy: boolean;
  readonly sz: string;
  readonly filledTenths: number;
  readonly expiry: 'none' | 'past' | 'slack' | 'future';
  /** Where the order is on the venue. */
  readonly venue: 'book' | 'off';
  /** Status the shell gets for it when queried. */
  readonly status: 'missing' | 'notFound' | 'open' | 'filled' | 'canceled' | 'triggered' | 'rejected' | 'other';
}

const orderSpec: fc.Arbitrary<OrderSpec> = fc.record({
  state: fc.constantFrom(...ORDER_STATES),
  kind: fc.constantFrom(...KINDS),
  coin: fc.constantFrom(...COINS),
  buy: fc.boolean(),
  sz: fc.constantFrom('0.1', '0.2'),
  filledTenths: fc.integer({ min: 0, max: 2 }),
  expiry: fc.constantFrom('none', 'past', 'slack', 'future'),
  venue: fc.constantFrom('book', 'off'),
  status: fc.constantFrom('missing', 'notFound', 'open', 'filled', 'canceled', 'triggered', 'rejected', 'other'),
});

interface ForeignSpec {
  readonly owner: 'lost' | 'manual' | 'foreign';
  readonly coin: (typeof COINS)[number];
  readonly buy: boolean;
  readonly reduceOnly: boolean;
  readonly trigger: boolean;
  readonly triggerBelow: boolean;
  readonly partial: boolean;
}

const foreignSpec: fc.Arbitrary<ForeignSpec> = fc.record({
  owner: fc.constantFrom('lost', 'manual', 'foreign'),
  coin: fc.constantFrom(...COINS),
  buy: fc.boolean(),
  reduceOnly: fc.boolean(),
  trigger: fc.boolean(),
  triggerBelow: fc.boolean(),
  partial: fc.boolean(),
});

const fillSpec = fc.record({ tid: fc.integer({ min: 1, max: 6 }), oidIdx: fc.integer({ min: 0, max: 3 }), coin: fc.constantFrom(...COINS), buy: fc.boolean(), sz: fc.constantFrom('0.1', '0.2') });

const worldArb = fc.record({
  orders: fc.array(orderSpec, { maxLength: 7 }),
  others: fc.array(foreignSpec, { maxLength: 4 }),
  venueFills: fc.array(fillSpec, { maxLength: 6 }),
  heldFills: fc.array(fc.record({ tid: fc.integer({ min: 1, max: 6 }), oidIdx: fc.integer({ min: 0, max: 3 }) }), { maxLength: 4 }),
  localPos: fc.tuple(fc.constantFrom(...SIZES), fc.constantFrom(...SIZES)),
  venuePos: fc.tuple(fc.constantFrom(...SIZES), fc.constantFrom(...SIZES)),
  marks: fc.boolean(),
  phase: fc.constantFrom('boot' as const, 'running' as const),
  cancelEntries: fc.boolean(),
});

type World = fc.Arbitrary<{ local: LocalState; venue: VenueSnapshot; opts: ReconcileOptions }>;

const EXPIRY = { none: undefined, past: NOW - 60_000, slack: NOW - SLACK / 2, future: NOW + 5_000 } as const;

type WorldSpec = typeof worldArb extends fc.Arbitrary<infer T> ? T : never;

function build(w: WorldSpec) {
  const orders: LocalOrder[] = [];
  const book: VenueOrder[] = [];
  let oid = 100;
  w.orders.forEach((s, i) => {
    const sz = dec(s.sz);
    const reduceOnly = s.kind !== 'entry';
    const isTrigger = s.kind === 'stop_loss' || s.kind === 'take_profit' || s.kind === 'take_profit_1';
    const filledSz = TERMINAL_ORDER_STATES.has(s.state) || s.state === 'partially_filled' ? Decimal_min(sz, dec(s.filledTenths).div(10)) : ZERO;
    const expiresAfter = EXPIRY[s.expiry];
    const o: LocalOrder = {
      cloid: cloid(i + 1),
      state: s.state,
      kind: s.kind,
      coin: s.coin,
      side: s.buy ? 'buy' : 'sell',
      sz,
      filledSz,
      ...(s.state === 'intent' || s.state === 'submitting' || s.state === 'unknown' ? {} : { oid: oid + i }),
      ...(expiresAfter !== undefined ? { expiresAfter } : {}),
      reduceOnly,
      ...(isTrigger ? { trigger: { triggerPx: dec(s.buy ? '70000' : '60000'), tpsl: s.kind === 'stop_loss' ? ('sl' as const) : ('tp' as const), isMarket: true } } : {}),
    };
    orders.push(o);
    if (s.venue === 'book') {
      book.push({ oid: oid + i, cloid: o.cloid, coin: o.coin, side: o.side, px: dec('65000'), sz: sz.minus(filledSz).gt(0) ? sz.minus(filledSz) : sz, origSz: sz, reduceOnly, isTrigger, ...(o.trigger ? { triggerPx: o.trigger.triggerPx } : {}), timestamp: NOW - 10_000 });
    }
  });
  w.others.forEach((s, j) => {
    const n = 1000 + j;
    const c = s.owner === 'lost' ? cloid(500 + j) : s.owner === 'foreign' ? cloid(j + 1, FOREIGN) : undefined;
    book.push({
      oid: n,
      ...(c ? { cloid: c } : {}),
      coin: s.coin,
      side: s.buy ? 'buy' : 'sell',
      px: dec('65000'),
      sz: dec(s.partial ? '0.05' : '0.1'),
      origSz: dec('0.1'),
      reduceOnly: s.reduceOnly,
      isTrigger: s.trigger,
      ...(s.trigger ? { triggerPx: dec(s.triggerBelow ? '60000' : '70000') } : {}),
      timestamp: NOW - 20_000,
    });
  });
  const statuses = new Map<string, VenueOrderStatus>();
  for (const c of cloidsToQuery({ orders }, book)) {
    const i = orders.findIndex((o) => o.cloid === c);
    const s = w.orders[i]!;
    if (s.status === 'missing') continue;
    if (s.status === 'notFound') statuses.set(c, { found: false });
    else {
      const remaining = s.status === 'filled' ? '0' : s.filledTenths > 0 ? '0.05' : s.sz;
      statuses.set(c, { found: true, oid: oid + i, status: s.status, rawStatus: s.status, sz: dec(remaining), origSz: dec(s.sz), statusTimestamp: NOW - 1 });
    }
  }
  const oids = [100, 101, 102, 1000];
  const fills: Fill[] = w.venueFills.map((f, k) => ({ tid: f.tid, oid: oids[f.oidIdx]!, coin: f.coin, side: f.buy ? 'buy' : 'sell', px: dec('65000'), sz: dec(f.sz), fee: dec('0.1'), closedPnl: ZERO, time: NOW - 50_000 + k, crossed: true }));
  const local: LocalState = {
    orders,
    fills: w.heldFills.map((h) => ({ tid: h.tid, oid: oids[h.oidIdx]! })),
    positions: new Map(COINS.map((c, k) => [c, { szi: dec(w.localPos[k]!) }] as const)),
  };
  const venue: VenueSnapshot = {
    openOrders: book,
    statuses,
    fills,
    positions: new Map(COINS.map((c, k) => [c, dec(w.venuePos[k]!)] as const)),
    ...(w.marks ? { marks: new Map(COINS.map((c) => [c, dec('65000')] as const)) } : {}),
    now: NOW,
  };
  const opts: ReconcileOptions = { prefix: PREFIX, phase: w.phase, cancelEntries: w.cancelEntries, expirySlackMs: SLACK };
  return { local, venue, opts };
}

function Decimal_min(a: Decimal, b: Decimal): Decimal {
  return a.lt(b) ? a : b;
}

const worlds: World = worldArb.map(build);
const RUNS = { numRuns: 1500, seed: 20240707 };

const show = (m: Map<string, Decimal>) => Object.fromEntries([...m].map(([c, s]) => [c, s.toFixed()]));

describe('reconcile: properties over random books', () => {
  it('never cancels or adopts an order that is not ours; every external order is reported exactly once', () => {
    fc.assert(
      fc.property(worlds, ({ local, venue, opts }) => {
        const { actions } = reconcile(local, venue, opts);
        const ourBook = new Set(venue.openOrders.flatMap((v) => (isOurCloid(PREFIX, v.cloid) ? [v.cloid] : [])));
        for (const a of actions) {
          if (a.type === 'cancelOrder' || a.type === 'adoptOrder') {
            expect(isOurCloid(PREFIX, a.cloid)).toBe(true);
            expect(ourBook.has(a.cloid)).toBe(true);
          }
          // What we adopt is protection: reduce-only, on the closing side of a position the venue holds.
          if (a.type === 'adoptOrder') {
            const szi = venue.positions.get(a.venueOrder.coin) ?? ZERO;
            expect(a.venueOrder.reduceOnly).toBe(true);
            expect(szi.isZero()).toBe(false);
            expect(a.venueOrder.side).toBe(szi.isPositive() ? 'sell' : 'buy');
          }
        }
        const externals = venue.openOrders.filter((v) => !isOurCloid(PREFIX, v.cloid)).map((v) => v.oid);
        const reported = actions.flatMap((a) => (a.type === 'reportExternal' ? [a.venueOrder.oid] : []));
        expect(reported.sort()).toEqual(externals.sort());
      }),
      RUNS,
    );
  });

  it('every unresolved order gets a resolveOrder, or stays only while its status is not conclusive; never-placed only after expiry', () => {
    fc.assert(
      fc.property(worlds, ({ local, venue, opts }) => {
        const { actions, report } = reconcile(local, venue, opts);
        const resolved = new Map(actions.flatMap((a) => (a.type === 'resolveOrder' ? [[a.cloid, a] as const] : [])));
        const onBook = new Set(venue.openOrders.map((v) => v.cloid));
        for (const o of local.orders) {
          const r = resolved.get(o.cloid);
          if (r?.reason === NEVER_PLACED_REASON) {
            expect(o.expiresAfter).toBeDefined();
            expect(venue.now).toBeGreaterThan(o.expiresAfter! + SLACK);
          }
          if (o.state !== 'submitting' && o.state !== 'unknown') continue;
          if (r) continue;
          const status = venue.statuses.get(o.cloid);
          expect(onBook.has(o.cloid)).toBe(false);
          const inconclusive =
            status === undefined || (status.found === false && (o.expiresAfter === undefined || venue.now <= o.expiresAfter + SLACK)) || (status.found && status.status === 'other');
          expect(inconclusive).toBe(true);
          expect(report.pending.map((p) => p.cloid)).toContain(o.cloid);
        }
      }),
      RUNS,
    );
  });

  it('after applyActions: positions equal the venue’s, every order of ours on the book is known, and reconcile again yields only reportExternal', () => {
    fc.assert(
      fc.property(worlds, ({ local, venue, opts }) => {
        const first = reconcile(local, venue, opts);
        const after = applyActions(local, first.actions);
        expect(show(nonZeroPositions(after.positions))).toEqual(show(nonZeroPositions(venue.positions)));
        const known = new Set(after.orders.map((o) => o.cloid));
        for (const v of venue.openOrders) if (isOurCloid(PREFIX, v.cloid)) expect(known.has(v.cloid)).toBe(true);
        const again = reconcile(after, venue, opts);
        expect(again.actions.filter((a) => a.type !== 'reportExternal')).toEqual([]);
        expect(again.actions.length).toBe(first.report.counts.reportExternal);
      }),
      RUNS,
    );
  });

  it('after applyActions no venue position is unprotected: a stop covers it on the book (not being cancelled) or is on its way', () => {
    fc.assert(
      fc.property(worlds, ({ local, venue, opts }) => {
        const after = applyActions(local, reconcile(local, venue, opts).actions);
        const byCloid = new Map(after.orders.map((o) => [o.cloid, o]));
        const onBook = new Set(venue.openOrders.flatMap((v) => (v.cloid ? [v.cloid] : [])));
        for (const [coin, szi] of nonZeroPositions(venue.positions)) {
          const side = szi.isPositive() ? 'sell' : 'buy';
          const need = szi.abs();
          const isStop = (o: LocalOrder) => o.kind === 'stop_loss' || o.trigger?.tpsl === 'sl';
          const ours = after.orders.some((o) => {
            if (o.coin !== coin || o.side !== side || !o.reduceOnly || !isStop(o)) return false;
            if (onBook.has(o.cloid)) {
              const v = venue.openOrders.find((x) => x.cloid === o.cloid)!;
              return v.sz.gte(need) && v.isTrigger && v.reduceOnly && v.side === side && (o.state === 'resting' || o.state === 'partially_filled');
            }
            return (o.state === 'intent' || o.state === 'submitting' || o.state === 'unknown') && o.sz.minus(o.filledSz).gte(need);
          });
          const mark = venue.marks?.get(coin);
          const theirs = venue.openOrders.some(
            (v) =>
              !(v.cloid && byCloid.has(v.cloid)) &&
              !isOurCloid(PREFIX, v.cloid) &&
              v.coin === coin && v.side === side && v.reduceOnly && v.isTrigger && v.sz.gte(need) &&
              mark !== undefined && v.triggerPx !== undefined && (side === 'sell' ? v.triggerPx.lt(mark) : v.triggerPx.gt(mark)),
          );
          expect(ours || theirs).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('no fill is applied twice: never one we hold, never the same (tid, oid) twice', () => {
    fc.assert(
      fc.property(worlds, ({ local, venue, opts }) => {
        const { actions } = reconcile(local, venue, opts);
        const held = new Set(local.fills.map((f) => `${f.tid}:${f.oid}`));
        const applied = actions.flatMap((a) => (a.type === 'applyFill' ? [`${a.fill.tid}:${a.fill.oid}`] : []));
        expect(new Set(applied).size).toBe(applied.length);
        for (const k of applied) expect(held.has(k)).toBe(false);
        const venueKeys = new Set(venue.fills.map((f) => `${f.tid}:${f.oid}`));
        expect(applied.length).toBe([...venueKeys].filter((k) => !held.has(k)).length);
      }),
      RUNS,
    );
  });

  it('the report is clean iff there is no action besides reportExternal / applyFill and nothing pending; counts add up', () => {
    fc.assert(
      fc.property(worlds, ({ local, venue, opts }) => {
        const { actions, report } = reconcile(local, venue, opts);
        const quiet = actions.every((a) => a.type === 'reportExternal' || a.type === 'applyFill') && report.pending.length === 0;
        expect(report.clean).toBe(quiet);
        expect(Object.values(report.counts).reduce((a, b) => a + b, 0)).toBe(actions.length);
        expect(report.lines.length).toBe(actions.length + report.pending.length + report.notSubmitted.length);
      }),
      RUNS,
    );
  });

  it('deterministic: the same inputs give the same actions, whatever the order of the lists', () => {
    fc.assert(
      fc.property(worlds, ({ local, venue, opts }) => {
        const a = reconcile(local, venue, opts);
        const shuffled = reconcile({ ...local, orders: [...local.orders].reverse(), fills: [...local.fills].reverse() }, { ...venue, openOrders: [...venue.openOrders].reverse() }, opts);
        expect(JSON.stringify(shuffled.actions)).toBe(JSON.stringify(a.actions));
      }),
      { ...RUNS, numRuns: 300 },
    );
  });
});
