/**
 * The order manager end to end against the real simulator over loopback, the real Hyperliquid
 * adapter and a real SQLite file: the full protected round trip, unknown outcomes resolved by
 * cloid (lost response, outage, restart), a rejected order, and fill deduplication between the
 * WebSocket and the REST backstop.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Decimal, dec, roundPrice } from '../../src/domain/decimal.ts';
import { roundTripFromFills } from '../../src/domain/pnl.ts';
import { TERMINAL_ORDER_STATES, type Cloid, type Direction, type Fill } from '../../src/domain/types.ts';
import type { OrderRecord } from '../../src/store/index.ts';
import { NEVER_PLACED } from '../../machines/order.machine.ts';
import { TEST_ORDER_CONFIG, approvedEntry, planRoundTrip, startOrderManagerRig, stepToBlock, type OrderManagerRig, type RoundTripPlan } from '../helpers/order-manager-rig.ts';

let rig: OrderManagerRig;
const SZ = dec('0.002');

beforeEach(async (ctx) => {
  rig = await startOrderManagerRig(ctx.task.name.replace(/\W+/g, '-').slice(0, 24));
  rig.om.start();
});
afterEach(async () => {
  await rig.close();
});

const btc = () => rig.instruments.get('BTC')!;
const mid = () => new Decimal(rig.sim.exchange.allMids()['BTC']!);
const order = (cloid: Cloid) => rig.store.orders.byCloid(cloid)!;
const stateOf = (cloid: Cloid) => rig.store.orders.byCloid(cloid)?.state;
const placesOf = (cloid: Cloid) => rig.calls.filter((c) => c.op === 'place' && c.phase === 'start' && c.cloid === cloid).length;
const callIndex = (op: 'place' | 'cancel', phase: 'start' | 'end', cloid: Cloid) => rig.calls.findIndex((c) => c.op === op && c.phase === phase && c.cloid === cloid);

/** An entry around the current mark with a 2 % stop and a 4 % target (these tests do not move the market far). */
function simpleEntry(direction: Direction = 'long') {
  const m = mid();
  const s = direction === 'long' ? 1 : -1;
  return approvedEntry(btc(), {
    direction,
    sz: SZ,
    refPx: m,
    stopPx: roundPrice(m.times(1 - 0.02 * s), 5),
    takeProfitPx: roundPrice(m.times(1 + 0.04 * s), 5),
    time: rig.now(),
  });
}

function entryFor(plan: RoundTripPlan) {
  return approvedEntry(btc(), { direction: plan.direction, sz: SZ, refPx: plan.entryPx, stopPx: plan.stopPx, takeProfitPx: plan.takeProfitPx, time: rig.now() });
}

/** Waits until the entry is filled and its stop and two take-profits rest; returns them by kind. */
async function protectedEntry(cloid: Cloid, size = SZ) {
  return rig.waitFor(
    () => {
      const pos = rig.store.positions.get('BTC');
      if (stateOf(cloid) !== 'filled' || !pos || pos.stage !== 'open' || !pos.szi.abs().eq(size)) return undefined;
      const kids = rig.store.orders.children(cloid);
      if (kids.length !== 3 || !kids.every((k) => k.state === 'resting')) return undefined;
      const byKind = (k: OrderRecord['kind']) => kids.find((o) => o.kind === k)!;
      return { pos, kids, stop: byKind('stop_loss'), tp1: byKind('take_profit_1'), tp2: byKind('take_profit') };
    },
    { what: `entry ${cloid} filled and protected` },
  );
}

/** The stop on the losing side of the entry price, TP1 beyond it, TP2 further still. */
function expectSaneProtection(p: Awaited<ReturnType<typeof protectedEntry>>): void {
  const long = p.pos.szi.isPositive();
  const ladder = [p.stop, p.tp1, p.tp2].map((o) => o.trigger!.triggerPx);
  const prices = long ? [ladder[0]!, p.pos.entryPx, ladder[1]!, ladder[2]!] : [ladder[2]!, ladder[1]!, p.pos.entryPx, ladder[0]!];
  for (let i = 1; i < prices.length; i++) expect(prices[i]!.gt(prices[i - 1]!), `protection ladder ${prices.map((x) => x.toFixed()).join(' < ')}`).toBe(true);
}

function sumSz(fills: readonly Fill[]): Decimal {
  return fills.reduce((a, f) => a.plus(f.sz), dec(0));
}

function expectEveryOrderLineHasCloid(): void {
  const orderLines = rig.logs.filter((l) => /^(order |entry |sending order|resuming|protecting|stop moved|fill$|trade closed)/.test(l.msg));
  expect(orderLines.length).toBeGreaterThan(0);
  for (const l of orderLines) expect(l.cloid, `log line "${l.msg}" carries its cloid`).toMatch(/^0x[0-9a-f]{32}$/);
}

describe('order manager against the simulator', () => {
  it('round trip: entry, protection, TP1, stop to break-even (place, then cancel), TP2, flat with PnL', async () => {
    const inst = btc();
    const plan = planRoundTrip(rig.sim, inst, SZ);
    const long = plan.direction === 'long';
    stepToBlock(rig.sim, plan.entryBlock);
    const entry = rig.om.submitEntry(entryFor(plan))!;
    expect(entry).toMatch(/^0x[0-9a-f]{32}$/);

    // ── stage 1: entry filled at the book's best level, protection resting on the venue ──
    const p = await protectedEntry(entry);
    expect(order(entry).avgPx!.eq(plan.entryPx)).toBe(true);
    expect(p.pos.szi.eq(long ? SZ : SZ.neg())).toBe(true);
    expect(p.pos.entryPx.eq(plan.entryPx)).toBe(true);
    expect(sumSz(rig.store.fills.byCloid(entry)).eq(SZ)).toBe(true);
    const closing = long ? 'sell' : 'buy';
    for (const k of p.kids) {
      expect(k).toMatchObject({ reduceOnly: true, side: closing, parentCloid: entry });
      expect(k.trigger?.isMarket).toBe(true);
    }
    expect(p.stop.sz.eq(SZ) && p.stop.trigger!.tpsl === 'sl' && p.stop.trigger!.triggerPx.eq(plan.stopTrigger)).toBe(true);
    expect(p.tp1.trigger!.tpsl === 'tp' && p.tp1.trigger!.triggerPx.eq(plan.tp1Trigger)).toBe(true);
    expect(p.tp2.trigger!.tpsl === 'tp' && p.tp2.trigger!.triggerPx.eq(plan.tp2Trigger)).toBe(true);
    expect(p.tp1.sz.plus(p.tp2.sz).eq(SZ)).toBe(true);
    expect(p.pos.stopCloid).toBe(p.stop.cloid);
    expect(p.pos.tpCloids).toEqual([p.tp1.cloid, p.tp2.cloid]);
    let state = await rig.simState();
    const mine = state.openOrders.filter((o) => o.user === rig.user);
    expect(mine.map((o) => o.cloid).sort()).toEqual([p.stop.cloid, p.tp1.cloid, p.tp2.cloid].sort());
    for (const o of mine) {
      const ours = order(o.cloid!);
      // A trigger order is acknowledged without an oid; the manager records it from the order update.
      expect(ours.oid).toBe(o.oid);
      expect(o).toMatchObject({ reduceOnly: true, isTrigger: true, side: long ? 'A' : 'B', tpsl: ours.trigger!.tpsl });
      expect(dec(o.origSz).eq(ours.sz) && dec(o.triggerPx!).eq(ours.trigger!.triggerPx)).toBe(true);
    }
    const venuePos = () => state.accounts.find((a) => a.address === rig.user)?.positions.find((x) => x.coin === 'BTC');
    expect(dec(venuePos()!.szi).eq(p.pos.szi)).toBe(true);

    // ── stage 2: TP1 fires; a break-even stop is placed, THEN the old stop is cancelled ──
    stepToBlock(rig.sim, plan.tp1Block - 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(stateOf(p.tp1.cloid)).toBe('resting');
    stepToBlock(rig.sim, plan.tp1Block);
    const be = await rig.waitFor(
      () => {
        const pos = rig.store.positions.get('BTC');
        if (stateOf(p.tp1.cloid) !== 'filled' || !pos || pos.stage !== 'tp1_done' || pos.stopCloid === p.stop.cloid || !pos.stopCloid) return undefined;
        if (stateOf(pos.stopCloid) !== 'resting' || stateOf(p.stop.cloid) !== 'cancelled') return undefined;
        return { pos, stop: order(pos.stopCloid) };
      },
      { what: 'TP1 filled, stop moved to break-even' },
    );
    expect(be.pos.szi.abs().eq(SZ.minus(p.tp1.sz))).toBe(true);
    expect(be.stop).toMatchObject({ kind: 'stop_loss', reduceOnly: true, side: closing, parentCloid: entry });
    expect(be.stop.trigger!.tpsl).toBe('sl');
    expect(be.stop.trigger!.triggerPx.eq(plan.breakEven)).toBe(true);
    expect(be.stop.sz.eq(be.pos.szi.abs())).toBe(true);
    // Place before cancel: the venue acknowledged the new stop (its answer or its order update)
    // before the old stop's cancel went out.
    expect(callIndex('place', 'start', be.stop.cloid)).toBeGreaterThanOrEqual(0);
    expect(callIndex('cancel', 'start', p.stop.cloid)).toBeGreaterThan(callIndex('place', 'start', be.stop.cloid));
    const logIndex = (msg: string, cloid: Cloid) => rig.logs.findIndex((l) => l.msg === msg && l.cloid === cloid);
    expect(logIndex('order resting', be.stop.cloid)).toBeGreaterThanOrEqual(0);
    expect(logIndex('sending cancel', p.stop.cloid)).toBeGreaterThan(logIndex('order resting', be.stop.cloid));
    state = await rig.simState();
    expect(state.orders.find((o) => o.cloid === p.stop.cloid)!.status).toBe('canceled');
    expect(state.openOrders.filter((o) => o.user === rig.user).map((o) => o.cloid).sort()).toEqual([be.stop.cloid, p.tp2.cloid].sort());
    expect(dec(venuePos()!.szi).eq(be.pos.szi)).toBe(true);

    // ── stage 3: the target fires; flat in the DB and on the venue, everything finished ──
    stepToBlock(rig.sim, plan.tp2Block);
    await rig.waitFor(
      () => (rig.store.positions.get('BTC') === undefined && stateOf(p.tp2.cloid) === 'filled' && rig.store.orders.unresolved().length === 0 ? true : undefined),
      { what: 'TP2 filled, position closed, protection finished' },
    );
    for (const k of rig.store.orders.children(entry)) expect(TERMINAL_ORDER_STATES.has(k.state), `${k.kind} ${k.cloid} is ${k.state}`).toBe(true);
    expect(stateOf(be.stop.cloid)).toBe('cancelled');
    state = await rig.simState();
    expect(state.openOrders.filter((o) => o.user === rig.user)).toEqual([]);
    expect(dec(venuePos()?.szi ?? '0').isZero()).toBe(true);

    // ── PnL: the recorded trades agree with a hand computation from the fills in the DB ──
    const entryFills = rig.store.fills.byCloid(entry);
    const exitFills = [...rig.store.fills.byCloid(p.tp1.cloid), ...rig.store.fills.byCloid(p.tp2.cloid)];
    expect(sumSz(exitFills).eq(SZ)).toBe(true);
    const trades = rig.store.trades.list();
    expect(trades.length).toBe(exitFills.length);
    expect(trades.every((t) => t.direction === plan.direction && t.entryCloid === entry)).toBe(true);
    expect(sumSz(trades.map((t) => ({ ...t, fee: dec(0) }) as unknown as Fill)).eq(SZ)).toBe(true);
    const hand = roundTripFromFills(plan.direction, entryFills, exitFills)!;
    const gross = trades.reduce((a, t) => a.plus(t.grossPnl), dec(0));
    const fees = trades.reduce((a, t) => a.plus(t.fees), dec(0));
    const net = trades.reduce((a, t) => a.plus(t.netPnl), dec(0));
    const allFees = [...entryFills, ...exitFills].reduce((a, f) => a.plus(f.fee), dec(0));
    expect(allFees.gt(0)).toBe(true);
    expect(gross.minus(hand.gross).abs().lt('1e-9')).toBe(true);
    expect(fees.minus(allFees).abs().lt('1e-9')).toBe(true);
    expect(net.minus(hand.net).abs().lt('1e-9')).toBe(true);
    // Both take-profits are wins: TP1 about 1R, TP2 about 2R, less fees.
    expect(hand.gross.gt(0)).toBe(true);

    // ── the backstop replays every fill: nothing changes ──
    await rig.pollFills();
    expect(rig.store.trades.list().length).toBe(trades.length);
    expect(rig.store.positions.get('BTC')).toBeUndefined();
    expectEveryOrderLineHasCloid();
  });

  it('lost response: the entry is unknown, then resolved by orderStatus(cloid), never resent', async () => {
    // Without the user stream the only way out of unknown is the status query.
    await rig.disconnectUserStream();
    await rig.setFaults({ lostResponse: 1 });
    const cloid = rig.om.submitEntry(simpleEntry())!;
    await rig.waitFor(() => (stateOf(cloid) === 'unknown' ? true : undefined), { what: 'unknown' });
    expect(order(cloid).lastError).toMatch(/transport|fetch|socket|terminated/i);
    // The request executed: the venue holds the order although we never heard back.
    expect((await rig.ordersOnVenue(cloid)).length).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(stateOf(cloid)).toBe('unknown');

    await rig.setFaults({});
    const rec = await rig.waitFor(() => (TERMINAL_ORDER_STATES.has(order(cloid).state) ? order(cloid) : undefined), { what: 'resolved' });
    expect(rec.state).toBe('filled');
    expect(rec.filledSz.eq(SZ)).toBe(true);
    expect(placesOf(cloid)).toBe(1);
    const onVenue = await rig.ordersOnVenue(cloid);
    expect(onVenue.length).toBe(1);
    expect(onVenue[0]!.status).toBe('filled');
    expect(onVenue[0]!.oid).toBe(rec.oid);

    // The fills arrive once the stream is back; only then is the entry price known and protected.
    await rig.connectUserStream();
    const p = await protectedEntry(cloid);
    expect(p.pos.entryPx.eq(rec.avgPx ?? p.pos.entryPx)).toBe(true);
    expectSaneProtection(p);
    expect((await rig.ordersOnVenue(cloid)).length).toBe(1);
    expectEveryOrderLineHasCloid();
  });

  it('never placed: an outage makes the entry unknown; after expiresAfter + margin it is proven never placed', async () => {
    await rig.setFaults({ outage: 1 });
    const cloid = rig.om.submitEntry(simpleEntry('short'))!;
    await rig.waitFor(() => (stateOf(cloid) === 'unknown' ? true : undefined), { what: 'unknown' });
    const expiresAfter = order(cloid).expiresAfter!;
    expect(expiresAfter).toBeGreaterThan(rig.now());
    // A graceful stop would wait for it: an unknown order is in flight.
    expect(await rig.om.drain(300)).toBe(false);
    await rig.setFaults({});
    // The venue answers "not found" now, but before the expiry that proves nothing.
    await rig.waitFor(() => (rig.logs.some((l) => l.msg === 'order unknown' && l.cloid === cloid) ? true : undefined));
    await new Promise((r) => setTimeout(r, 400));
    expect(stateOf(cloid)).toBe('unknown');
    expect(rig.store.positions.get('BTC')).toBeDefined();

    rig.sim.step(expiresAfter - rig.now() + TEST_ORDER_CONFIG.expiryMarginMs + 200);
    const rec = await rig.waitFor(() => (stateOf(cloid) === 'rejected' ? order(cloid) : undefined), { what: 'proven never placed' });
    expect(rec.lastError).toBe(NEVER_PLACED);
    expect(rec.filledSz.isZero()).toBe(true);
    expect(placesOf(cloid)).toBe(1);
    expect(await rig.ordersOnVenue(cloid)).toEqual([]);
    // The planned position of an entry that never happened is gone.
    expect(rig.store.positions.get('BTC')).toBeUndefined();
    expect(rig.store.orders.unresolved()).toEqual([]);
    expect(await rig.om.drain(1_000)).toBe(true);
    expectEveryOrderLineHasCloid();
  });

  it("rejected: the venue's reason is recorded, no position row is left, nothing on the venue", async () => {
    await rig.setFaults({ reject: 1 });
    const cloid = rig.om.submitEntry(simpleEntry())!;
    const rec = await rig.waitFor(() => (stateOf(cloid) === 'rejected' ? order(cloid) : undefined), { what: 'rejected' });
    expect(rec.lastError).toMatch(/^(Insufficient margin to place order\.|Order price cannot be more than 80% away from the reference price|Order could not immediately match against any resting orders\.)$/);
    expect(rec.filledSz.isZero()).toBe(true);
    expect(rig.store.positions.get('BTC')).toBeUndefined();
    expect(rig.store.orders.children(cloid)).toEqual([]);
    expect(await rig.ordersOnVenue(cloid)).toEqual([]);
    expect(placesOf(cloid)).toBe(1);
    expect(rig.logs.some((l) => l.msg === 'order rejected' && l.cloid === cloid && l.error === rec.lastError)).toBe(true);
    expectEveryOrderLineHasCloid();
  });

  it('restart: a new order manager on the reopened store resumes the unknown entry and resolves it without a duplicate', async () => {
    await rig.disconnectUserStream();
    await rig.setFaults({ lostResponse: 1 });
    const cloid = rig.om.submitEntry(simpleEntry())!;
    await rig.waitFor(() => (stateOf(cloid) === 'unknown' ? true : undefined), { what: 'unknown' });

    // Crash: the manager stops mid-flight, the store file is reopened, a new manager boots.
    await rig.restart();
    expect(rig.logs.some((l) => l.msg === 'resuming unresolved order' && l.cloid === cloid && l.state === 'unknown')).toBe(true);
    expect(stateOf(cloid)).toBe('unknown');
    await rig.setFaults({});
    await rig.waitFor(() => (stateOf(cloid) === 'filled' ? true : undefined), { what: 'resolved after restart' });
    // Missed fills come back with the stream's snapshot (and the REST backstop).
    await rig.connectUserStream();
    await rig.pollFills();
    const p = await protectedEntry(cloid);
    expectSaneProtection(p);
    expect(placesOf(cloid)).toBe(1);
    expect((await rig.ordersOnVenue(cloid)).length).toBe(1);
    const state = await rig.simState();
    const venuePos = state.accounts.find((a) => a.address === rig.user)!.positions.find((x) => x.coin === 'BTC')!;
    expect(dec(venuePos.szi).eq(p.pos.szi)).toBe(true);
    expect(state.openOrders.filter((o) => o.user === rig.user).length).toBe(3);
    expectEveryOrderLineHasCloid();
  });

  it('fill dedup: fills delivered by the WebSocket and again by the REST backstop are applied once', async () => {
    const seen: Fill[] = [];
    rig.bus.on('fills', (f) => {
      // A long step of the manual clock can idle the socket out: the reconnect's snapshot is the stream too.
      if (f.source !== 'rest') seen.push(...f.fills);
    });
    const plan = planRoundTrip(rig.sim, btc(), SZ);
    stepToBlock(rig.sim, plan.entryBlock);
    const entry = rig.om.submitEntry(entryFor(plan))!;
    const p = await protectedEntry(entry);
    expectSaneProtection(p);
    stepToBlock(rig.sim, plan.tp1Block);
    const be = await rig.waitFor(() => {
      const pos = rig.store.positions.get('BTC');
      return pos?.stage === 'tp1_done' && stateOf(pos.stopCloid!) === 'resting' && stateOf(p.stop.cloid) === 'cancelled' ? pos : undefined;
    });
    const snapshot = () => ({
      szi: rig.store.positions.get('BTC')?.szi.toFixed(),
      entryPx: rig.store.positions.get('BTC')?.entryPx.toFixed(),
      fills: rig.store.fills.since(0).length,
      trades: rig.store.trades.list().map((t) => `${t.exitFill?.tid}:${t.netPnl.toFixed()}`),
      orders: rig.store.orders.recent(1_000).length,
    });
    const before = snapshot();
    expect(seen.some((f) => f.cloid === entry) && seen.some((f) => f.cloid === p.tp1.cloid)).toBe(true);
    expect(before.trades.length).toBeGreaterThan(0);
    expect(await rig.pollFills(0)).toBe(before.fills);
    rig.bus.publish('fills', { fills: [...seen], source: 'ws' });
    rig.bus.publish('fills', { fills: [...seen].reverse(), source: 'snapshot' });
    await rig.pollFills();
    await new Promise((r) => setTimeout(r, 200));
    expect(snapshot()).toEqual(before);
    // A replayed TP1 fill does not move the stop a second time.
    expect(rig.store.positions.get('BTC')!.stopCloid).toBe(be.stopCloid);
    expect(rig.store.orders.children(entry).filter((o) => o.kind === 'stop_loss').length).toBe(2);
  });

  it('restart with a protected position: the resumed protective actors carry on through TP1 and the break-even move', async () => {
    const plan = planRoundTrip(rig.sim, btc(), SZ);
    stepToBlock(rig.sim, plan.entryBlock);
    const entry = rig.om.submitEntry(entryFor(plan))!;
    const p = await protectedEntry(entry);
    await rig.waitFor(() => (p.kids.every((k) => order(k.cloid).oid !== undefined) ? true : undefined), { what: 'trigger oids recorded' });

    await rig.restart();
    for (const k of p.kids) expect(rig.logs.some((l) => l.msg === 'resuming unresolved order' && l.cloid === k.cloid && l.state === 'resting')).toBe(true);
    expect(rig.om.liveOrders).toBe(3);
    stepToBlock(rig.sim, plan.tp1Block);
    const pos = await rig.waitFor(
      () => {
        const x = rig.store.positions.get('BTC');
        return x?.stage === 'tp1_done' && stateOf(x.stopCloid!) === 'resting' && stateOf(p.stop.cloid) === 'cancelled' && stateOf(p.tp1.cloid) === 'filled' ? x : undefined;
      },
      { what: 'TP1 and break-even after the restart' },
    );
    expect(order(pos.stopCloid!).trigger!.triggerPx.eq(plan.breakEven)).toBe(true);
    const open = (await rig.simState()).openOrders.filter((o) => o.user === rig.user).map((o) => o.cloid);
    expect(open.sort()).toEqual([pos.stopCloid, p.tp2.cloid].sort());
    expectEveryOrderLineHasCloid();
  });

  it('a break-even stop the venue rejects leaves the old stop in charge (never without a stop)', async () => {
    const plan = planRoundTrip(rig.sim, btc(), SZ);
    stepToBlock(rig.sim, plan.entryBlock);
    const entry = rig.om.submitEntry(entryFor(plan))!;
    const p = await protectedEntry(entry);
    // Triggers fire inside the engine, not through an order action: TP1 still fills.
    await rig.setFaults({ reject: 1 });
    stepToBlock(rig.sim, plan.tp1Block);
    const replacement = await rig.waitFor(
      () => rig.store.orders.children(entry).find((o) => o.kind === 'stop_loss' && o.cloid !== p.stop.cloid && o.state === 'rejected'),
      { what: 'the break-even stop rejected' },
    );
    await rig.waitFor(() => (rig.store.positions.get('BTC')?.stopCloid === p.stop.cloid ? true : undefined), { what: 'old stop back in charge' });
    await new Promise((r) => setTimeout(r, 200));
    const pos = rig.store.positions.get('BTC')!;
    expect(pos.stage).toBe('tp1_done');
    expect(pos.szi.abs().eq(SZ.minus(p.tp1.sz))).toBe(true);
    expect(stateOf(p.stop.cloid)).toBe('resting');
    expect(callIndex('cancel', 'start', p.stop.cloid)).toBe(-1);
    const open = (await rig.simState()).openOrders.filter((o) => o.user === rig.user).map((o) => o.cloid);
    expect(open.sort()).toEqual([p.stop.cloid, p.tp2.cloid].sort());
    expect(rig.logs.some((l) => l.msg === 'replacement stop rejected: the previous stop stays in place' && l.cloid === replacement.cloid && l.keeps === p.stop.cloid)).toBe(true);
  });
});
