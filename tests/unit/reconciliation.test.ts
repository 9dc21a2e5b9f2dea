/**
 * reconcile(): hand-built cases for each action kind, the pending cases that must NOT resolve, the
 * report, and applyActions / idempotence on each case.
 */
import { describe, expect, it } from 'vitest';
import { dec, ZERO } from '../../src/domain/decimal.ts';
import type { Decimal } from '../../src/domain/decimal.ts';
import type { Fill, VenueOrder, VenueOrderStatus } from '../../src/domain/types.ts';
import {
  applyActions,
  cloidsToQuery,
  NEVER_PLACED_REASON,
  reconcile,
  ReconcileInputError,
  type LocalOrder,
  type LocalPosition,
  type LocalState,
  type ReconcileAction,
  type ReconcileOptions,
  type VenueSnapshot,
} from '../../src/domain/reconciliation.ts';

const PREFIX = 'abcdef01';
const NOW = 1_700_000_000_000;
const cloid = (n: number, prefix = PREFIX) => `0x${prefix}${n.toString(16).padStart(24, '0')}`;
const BOOT: ReconcileOptions = { prefix: PREFIX, phase: 'boot' };
const RUN: ReconcileOptions = { prefix: PREFIX, phase: 'running' };

function order(n: number, over: Partial<LocalOrder> = {}): LocalOrder {
  return { cloid: cloid(n), state: 'resting', kind: 'entry', coin: 'BTC', side: 'buy', sz: dec('0.1'), filledSz: ZERO, oid: 1000 + n, reduceOnly: false, ...over };
}

function stopOrder(n: number, over: Partial<LocalOrder> = {}): LocalOrder {
  return order(n, { kind: 'stop_loss', side: 'sell', reduceOnly: true, trigger: { triggerPx: dec('60000'), tpsl: 'sl', isMarket: true }, ...over });
}

function onBook(over: Partial<VenueOrder> & { oid: number }): VenueOrder {
  return { coin: 'BTC', side: 'buy', px: dec('65000'), sz: dec('0.1'), origSz: dec('0.1'), reduceOnly: false, isTrigger: false, timestamp: NOW - 1000, ...over };
}

function bookOf(o: LocalOrder, over: Partial<VenueOrder> = {}): VenueOrder {
  return onBook({
    oid: o.oid ?? 1,
    cloid: o.cloid,
    coin: o.coin,
    side: o.side,
    sz: o.sz.minus(o.filledSz),
    origSz: o.sz,
    reduceOnly: o.reduceOnly,
    isTrigger: o.trigger !== undefined,
    ...(o.trigger ? { triggerPx: o.trigger.triggerPx } : {}),
    ...over,
  });
}

function fill(tid: number, over: Partial<Fill> = {}): Fill {
  return { tid, oid: 1001, coin: 'BTC', side: 'buy', px: dec('65000'), sz: dec('0.1'), fee: dec('0.5'), closedPnl: ZERO, time: NOW - 5000, crossed: true, ...over };
}

const found = (oid: number, status: 'open' | 'filled' | 'canceled' | 'triggered' | 'rejected' | 'other', sz: string, origSz: string, raw: string = status): VenueOrderStatus => ({
  found: true,
  oid,
  status,
  rawStatus: raw,
  sz: dec(sz),
  origSz: dec(origSz),
  statusTimestamp: NOW - 100,
});
const NOT_FOUND: VenueOrderStatus = { found: false };

function localOf(orders: LocalOrder[] = [], positions: [string, LocalPosition][] = [], fills: { tid: number; oid: number }[] = []): LocalState {
  return { orders, fills, positions: new Map(positions) };
}

function venueOf(v: Partial<Omit<VenueSnapshot, 'statuses' | 'positions'>> & { statuses?: [string, VenueOrderStatus][]; positions?: [string, string][] } = {}): VenueSnapshot {
  return {
    openOrders: v.openOrders ?? [],
    statuses: new Map(v.statuses ?? []),
    fills: v.fills ?? [],
    positions: new Map((v.positions ?? []).map(([c, s]) => [c, dec(s)] as [string, Decimal])),
    ...(v.marks ? { marks: v.marks } : {}),
    now: v.now ?? NOW,
  };
}

const types = (as: readonly ReconcileAction[]) => as.map((a) => a.type);

/** Applying the actions and reconciling again leaves only external reports. */
function expectIdempotent(local: LocalState, venue: VenueSnapshot, opts: ReconcileOptions) {
  const first = reconcile(local, venue, opts);
  const again = reconcile(applyActions(local, first.actions), venue, opts);
  expect(types(again.actions).filter((t) => t !== 'reportExternal')).toEqual([]);
  return first;
}

describe('reconcile: nothing to do', () => {
  it('books that agree are clean and produce no action', () => {
    const entry = order(1, { state: 'partially_filled', filledSz: dec('0.04') });
    const stop = stopOrder(2, { sz: dec('0.04') });
    const local = localOf([entry, stop], [['BTC', { szi: dec('0.04'), stopCloid: stop.cloid }]], [{ tid: 7, oid: 1001 }]);
    const venue = venueOf({ openOrders: [bookOf(entry), bookOf(stop)], positions: [['BTC', '0.04']], fills: [fill(7, { sz: dec('0.04') })] });
    const { actions, report } = reconcile(local, venue, RUN);
    expect(actions).toEqual([]);
    expect(report.clean).toBe(true);
    expect(report.summary).toBe('clean');
  });

  it('rejects a malformed prefix (a caller bug) with a clear error', () => {
    expect(() => reconcile(localOf(), venueOf(), { prefix: 'XYZ', phase: 'boot' })).toThrow(ReconcileInputError);
  });
});

describe('resolveOrder', () => {
  it('an unknown intent found on the book becomes resting / partially filled with its oid', () => {
    const a = order(1, { state: 'unknown', oid: undefined, expiresAfter: NOW + 5000 });
    const b = order(2, { state: 'submitting', oid: undefined, coin: 'ETH', expiresAfter: NOW + 5000 });
    const venue = venueOf({ openOrders: [bookOf(a, { oid: 55 }), bookOf(b, { oid: 56, sz: dec('0.06') })] });
    const { actions, report } = expectIdempotent(localOf([a, b]), venue, RUN);
    expect(actions.filter((x) => x.type === 'resolveOrder').map((x) => x.type === 'resolveOrder' && [x.cloid, x.state, x.oid, x.filledSz.toFixed()])).toEqual([
      [a.cloid, 'resting', 55, '0'],
      [b.cloid, 'partially_filled', 56, '0.04'],
    ]);
    expect(report.clean).toBe(false);
  });

  it('an unknown intent not found AFTER expiresAfter + slack is proved never placed (rejected)', () => {
    const a = order(1, { state: 'unknown', oid: undefined, expiresAfter: NOW - 10_000 });
    const venue = venueOf({ statuses: [[a.cloid, NOT_FOUND]] });
    const { actions } = expectIdempotent(localOf([a]), venue, RUN);
    expect(actions).toEqual([{ type: 'resolveOrder', cloid: a.cloid, state: 'rejected', filledSz: ZERO, reason: NEVER_PLACED_REASON }]);
  });

  it('not found BEFORE expiry (or within the slack, or without an expiry) stays pending: no action, not clean', () => {
    for (const expiresAfter of [NOW + 1000, NOW - 1000, undefined]) {
      const a = order(1, { state: 'submitting', oid: undefined, ...(expiresAfter !== undefined ? { expiresAfter } : {}) });
      const { actions, report } = reconcile(localOf([a]), venueOf({ statuses: [[a.cloid, NOT_FOUND]] }), RUN);
      expect(actions).toEqual([]);
      expect(report.clean).toBe(false);
      expect(report.pending).toHaveLength(1);
      expect(report.pending[0]!.cloid).toBe(a.cloid);
    }
  });

  it('no status answer, or an unrecognised one, is pending too', () => {
    const a = order(1, { state: 'unknown', oid: undefined, expiresAfter: NOW - 60_000 });
    const b = order(2, { state: 'unknown', oid: undefined, expiresAfter: NOW - 60_000 });
    const { actions, report } = reconcile(localOf([a, b]), venueOf({ statuses: [[b.cloid, found(9, 'other', '0.1', '0.1', 'weird')]] }), RUN);
    expect(actions).toEqual([]);
    expect(report.pending.map((p) => p.why)).toEqual(['no orderStatus answer', 'unrecognised orderStatus weird']);
  });

  it('orders gone from the book are resolved by their status: filled, cancelled (with the filled part), rejected', () => {
    const filled = order(1, { state: 'resting' });
    const cancelled = order(2, { state: 'partially_filled', filledSz: dec('0.02'), coin: 'ETH' });
    const rejected = order(3, { state: 'unknown', oid: undefined, coin: 'SOL', expiresAfter: NOW + 5000 });
    const cancelling = order(4, { state: 'cancelling', coin: 'XRP' });
    const venue = venueOf({
      statuses: [
        [filled.cloid, found(1001, 'filled', '0', '0.1')],
        [cancelled.cloid, found(1002, 'canceled', '0.07', '0.1', 'marginCanceled')],
        [rejected.cloid, found(1003, 'rejected', '0.1', '0.1', 'perpMarginRejected')],
        [cancelling.cloid, NOT_FOUND],
      ],
    });
    const { actions } = expectIdempotent(localOf([filled, cancelled, rejected, cancelling]), venue, RUN);
    expect(actions.map((x) => x.type === 'resolveOrder' && [x.state, x.filledSz.toFixed()])).toEqual([
      ['filled', '0.1'],
      ['cancelled', '0.03'],
      ['rejected', '0'],
      ['cancelled', '0'],
    ]);
  });

  it('the book wins over a status for an order on it; only orders off the book are queried', () => {
    const a = order(1, { state: 'resting' });
    const b = order(2, { state: 'unknown', oid: undefined, expiresAfter: NOW + 5000 });
    const c = order(3, { state: 'filled', filledSz: dec('0.1') });
    const book = [bookOf(a)];
    expect(cloidsToQuery(localOf([a, b, c]), book)).toEqual([b.cloid]);
    const { actions } = reconcile(localOf([a]), venueOf({ openOrders: book, statuses: [[a.cloid, found(1001, 'filled', '0', '0.1')]] }), RUN);
    expect(actions).toEqual([]);
  });

  it('a committed intent never sent is reported, not resolved', () => {
    const a = order(1, { state: 'intent', oid: undefined });
    const { actions, report } = reconcile(localOf([a]), venueOf(), BOOT);
    expect(actions).toEqual([]);
    expect(report.notSubmitted).toEqual([a.cloid]);
    expect(report.clean).toBe(true);
  });
});

describe('applyFill', () => {
  it('applies missed fills once, dedups by (tid, oid), and books them into the position', () => {
    const local = localOf([], [['BTC', { szi: dec('0.1') }]], [{ tid: 1, oid: 1001 }]);
    // tid 2 appears twice (listed twice); tid 3 shares tid 2's number but is the other order's side of the trade.
    const venue = venueOf({
      fills: [fill(1), fill(2, { sz: dec('0.05') }), fill(2, { sz: dec('0.05') }), fill(2, { oid: 2002, side: 'sell', sz: dec('0.05') })],
      positions: [['BTC', '0.1']],
      openOrders: [onBook({ oid: 9, reduceOnly: true, isTrigger: true, side: 'sell', triggerPx: dec('60000'), sz: dec('0.1') })],
      marks: new Map([['BTC', dec('65000')]]),
    });
    const { actions, report } = expectIdempotent(local, venue, RUN);
    expect(actions.filter((a) => a.type === 'applyFill').map((a) => a.type === 'applyFill' && `${a.fill.tid}:${a.fill.oid}`)).toEqual(['2:1001', '2:2002']);
    // 0.1 + 0.05 − 0.05 = 0.1: the fills explain everything, no position adoption.
    expect(types(actions)).not.toContain('adoptPosition');
    expect(report.clean).toBe(true);
  });
});

describe('adoptPosition', () => {
  it('adopts the exchange’s position where ours differs (after missed fills), flat included', () => {
    const local = localOf([], [['BTC', { szi: dec('0.1') }], ['ETH', { szi: dec('-2') }]]);
    const venue = venueOf({ positions: [['BTC', '0.3'], ['SOL', '5']], fills: [fill(1, { sz: dec('0.1') })] });
    const { actions, report } = expectIdempotent(local, venue, RUN);
    const adopted = actions.flatMap((a) => (a.type === 'adoptPosition' ? [[a.coin, a.from.toFixed(), a.to.toFixed()]] : []));
    expect(adopted).toEqual([
      ['BTC', '0.2', '0.3'],
      ['ETH', '-2', '0'],
      ['SOL', '0', '5'],
    ]);
    expect(report.clean).toBe(false);
    expect(report.lines.some((l) => l.includes('position BTC') && l.includes('adopted from the exchange'))).toBe(true);
  });
});

describe('adoptOrder / cancelOrder of orders we lost track of', () => {
  it('a reduce-only order of ours that closes the venue position is adopted (DB terminal or missing)', () => {
    const stop = stopOrder(1, { state: 'cancelled' });
    const venue = venueOf({
      openOrders: [bookOf(stop), onBook({ oid: 77, cloid: cloid(2), side: 'sell', reduceOnly: true, isTrigger: true, triggerPx: dec('70000') })],
      positions: [['BTC', '0.1']],
      marks: new Map([['BTC', dec('65000')]]),
    });
    const { actions } = expectIdempotent(localOf([stop], [['BTC', { szi: dec('0.1') }]]), venue, RUN);
    expect(actions.map((a) => a.type === 'adoptOrder' && [a.cloid, a.orderKind, a.state])).toEqual([
      // in oid order
      [cloid(2), 'take_profit', 'resting'],
      [stop.cloid, 'stop_loss', 'resting'],
    ]);
  });

  it('an entry of ours we lost track of is cancelled; a reduce-only one with nothing to reduce too', () => {
    const lost = order(1, { state: 'filled', filledSz: dec('0.1') });
    const venue = venueOf({
      openOrders: [bookOf(lost), onBook({ oid: 88, cloid: cloid(5) }), onBook({ oid: 89, cloid: cloid(6), side: 'buy', reduceOnly: true, isTrigger: true, triggerPx: dec('1') })],
      positions: [['BTC', '0.1']], // a long: a reduce-only BUY reduces nothing
    });
    const local = localOf([lost], [['BTC', { szi: dec('0.1') }]]);
    const { actions } = expectIdempotent(local, venue, RUN);
    const cancels = actions.flatMap((a) => (a.type === 'cancelOrder' ? [[a.cloid, a.reason]] : []));
    expect(cancels).toEqual([
      // in oid order
      [cloid(5), 'lost_entry'],
      [cloid(6), 'orphan_protective'],
      [lost.cloid, 'lost_entry'],
    ]);
  });
});

describe('cancelOrder of orders we should not have', () => {
  it('at boot: a working entry on a flat market and protection with no position are cancelled', () => {
    const entry = order(1);
    const tp = order(2, { kind: 'take_profit', side: 'sell', reduceOnly: true, coin: 'ETH', trigger: { triggerPx: dec('4000'), tpsl: 'tp', isMarket: true } });
    const venue = venueOf({ openOrders: [bookOf(entry), bookOf(tp)] });
    const boot = expectIdempotent(localOf([entry, tp]), venue, BOOT);
    expect(boot.actions.map((a) => a.type === 'cancelOrder' && a.reason)).toEqual(['stale_entry', 'orphan_protective']);
    // While running, live actors own them: nothing to do.
    expect(reconcile(localOf([entry, tp]), venue, RUN).actions).toEqual([]);
  });

  it('cancelEntries (Emergency) cancels every working entry of ours, not the protection', () => {
    const entry = order(1, { state: 'partially_filled', filledSz: dec('0.05') });
    const stop = stopOrder(2, { sz: dec('0.05') });
    const venue = venueOf({ openOrders: [bookOf(entry), bookOf(stop)], positions: [['BTC', '0.05']] });
    const { actions } = expectIdempotent(localOf([entry, stop], [['BTC', { szi: dec('0.05') }]]), venue, { ...RUN, cancelEntries: true });
    expect(actions.map((a) => a.type === 'cancelOrder' && [a.cloid, a.reason])).toEqual([[entry.cloid, 'entries_cancelled']]);
  });

  it('a duplicate working entry on the same coin and side is cancelled, the first committed stays', () => {
    const a = order(1);
    const b = order(2);
    const c = order(3, { side: 'sell' });
    const venue = venueOf({ openOrders: [bookOf(a), bookOf(b), bookOf(c)] });
    const { actions } = expectIdempotent(localOf([a, b, c]), venue, RUN);
    expect(actions.map((x) => x.type === 'cancelOrder' && [x.cloid, x.reason])).toEqual([[b.cloid, 'duplicate_entry']]);
  });

  it('an order we are already cancelling is not cancelled again', () => {
    const a = order(1, { state: 'cancelling' });
    expect(reconcile(localOf([a]), venueOf({ openOrders: [bookOf(a)] }), { ...BOOT, cancelEntries: true }).actions).toEqual([]);
  });
});

describe('reportExternal', () => {
  it('orders with no cloid or a foreign prefix are reported and never touched, whatever the options', () => {
    const manual = onBook({ oid: 1 });
    const foreign = onBook({ oid: 2, cloid: cloid(1, '12345678') });
    const odd = onBook({ oid: 3, cloid: '0xnot-a-cloid' });
    const venue = venueOf({ openOrders: [manual, foreign, odd] });
    const { actions, report } = reconcile(localOf(), venue, { ...BOOT, cancelEntries: true });
    expect(actions).toEqual([
      { type: 'reportExternal', venueOrder: manual },
      { type: 'reportExternal', venueOrder: foreign },
      { type: 'reportExternal', venueOrder: odd },
    ]);
    expect(report.clean).toBe(true);
    expect(report.counts.reportExternal).toBe(3);
    expect(report.lines[0]).toContain('external order left alone: oid 1 (no cloid)');
  });
});

describe('protectPosition', () => {
  it('a venue position without a covering reduce-only stop asks for protection', () => {
    const venue = venueOf({ positions: [['BTC', '-0.2']] });
    const { actions } = expectIdempotent(localOf([], [['BTC', { szi: dec('-0.2') }]]), venue, RUN);
    expect(actions.map((a) => a.type === 'protectPosition' && [a.coin, a.szi.toFixed()])).toEqual([['BTC', '-0.2']]);
  });

  it('a stop too small, on the wrong side, a take profit, or one being cancelled does not cover', () => {
    const small = stopOrder(1, { sz: dec('0.05') });
    const tp = order(2, { kind: 'take_profit', side: 'sell', reduceOnly: true, trigger: { triggerPx: dec('70000'), tpsl: 'tp', isMarket: true } });
    const going = stopOrder(3, { state: 'cancelling' });
    const venue = venueOf({ openOrders: [bookOf(small), bookOf(tp), bookOf(going)], positions: [['BTC', '0.1']] });
    const { actions } = expectIdempotent(localOf([small, tp, going], [['BTC', { szi: dec('0.1') }]]), venue, RUN);
    expect(types(actions)).toEqual(['protectPosition']);
  });

  it('covered by our stop on the book, by an operator’s stop (told apart by the mark), or by a stop of ours still on its way', () => {
    const stop = stopOrder(1);
    const local = localOf([stop], [['BTC', { szi: dec('0.1') }]]);
    expect(reconcile(local, venueOf({ openOrders: [bookOf(stop)], positions: [['BTC', '0.1']] }), RUN).actions).toEqual([]);

    const manualStop = onBook({ oid: 5, side: 'sell', reduceOnly: true, isTrigger: true, triggerPx: dec('60000') });
    const venue = venueOf({ openOrders: [manualStop], positions: [['BTC', '0.1']], marks: new Map([['BTC', dec('65000')]]) });
    expect(types(reconcile(localOf([], [['BTC', { szi: dec('0.1') }]]), venue, RUN).actions)).toEqual(['reportExternal']);

    const sending = stopOrder(2, { state: 'submitting', oid: undefined, expiresAfter: NOW + 3000 });
    const r = reconcile(localOf([sending], [['BTC', { szi: dec('0.1') }]]), venueOf({ positions: [['BTC', '0.1']], statuses: [[sending.cloid, NOT_FOUND]] }), RUN);
    expect(r.actions).toEqual([]);
    expect(r.report.pending).toHaveLength(1);
  });

  it('a stop we lose in this run (proved never placed) no longer covers', () => {
    const lostStop = stopOrder(1, { state: 'unknown', oid: undefined, expiresAfter: NOW - 60_000 });
    const venue = venueOf({ positions: [['BTC', '0.1']], statuses: [[lostStop.cloid, NOT_FOUND]] });
    const { actions } = expectIdempotent(localOf([lostStop], [['BTC', { szi: dec('0.1') }]]), venue, RUN);
    expect(types(actions)).toEqual(['resolveOrder', 'protectPosition']);
  });
});

describe('report', () => {
  it('counts per kind, a summary and one line per action', () => {
    const a = order(1, { state: 'unknown', oid: undefined, expiresAfter: NOW - 60_000 });
    const venue = venueOf({ statuses: [[a.cloid, NOT_FOUND]], openOrders: [onBook({ oid: 3 })], positions: [['ETH', '1']] });
    const { actions, report } = reconcile(localOf([a]), venue, BOOT);
    expect(report.counts).toEqual({ resolveOrder: 1, applyFill: 0, adoptPosition: 1, adoptOrder: 0, cancelOrder: 0, protectPosition: 1, reportExternal: 1 });
    expect(report.summary).toBe('not clean: 1 resolveOrder, 1 adoptPosition, 1 protectPosition, 1 reportExternal');
    expect(report.lines).toHaveLength(actions.length);
    expect(report.at).toBe(NOW);
    expect(report.phase).toBe('boot');
  });
});
