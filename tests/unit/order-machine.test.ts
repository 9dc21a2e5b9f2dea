import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import type { PlaceResult } from '../../src/domain/types.ts';
import { classifyVenueStatus, NEVER_PLACED, OrderClockError, orderMachine, type PlaceOrderInput } from '../../machines/order.machine.ts';
import { CLOID, found, makeIntent, NOT_FOUND, startOrder, T0 } from './order-machine-harness.ts';

describe('order machine: submit', () => {
  it('stays in intent until the actor runs, then sends on a zero-delay timer', () => {
    const clock = new SimulatedClock();
    clock.set(T0);
    let sent = 0;
    const machine = orderMachine.provide({ actors: { placeOrder: fromPromise<PlaceResult, PlaceOrderInput>(() => (sent++, new Promise<PlaceResult>(() => undefined))) } });
    const actor = createActor(machine, { input: { intent: makeIntent() }, clock });
    const seen: string[] = [];
    actor.on('order.state', (e) => seen.push(e.state));
    actor.start();
    expect(seen).toEqual(['intent']);
    expect(sent).toBe(0);
    clock.increment(0);
    expect(seen).toEqual(['intent', 'submitting']);
    expect(sent).toBe(1);
    actor.stop();
  });

  it('emits intent then submitting before placeOrder runs, with expiresAfter = now + expiresAfterMs', async () => {
    const h = startOrder();
    expect(h.states()).toEqual(['intent', 'submitting']);
    expect(h.state()).toBe('submitting');
    expect(h.calls.place).toHaveLength(1);
    expect(h.calls.place[0]!.expiresAfter).toBe(T0 + 5_000);
    expect(h.calls.place[0]!.intent.cloid).toBe(CLOID);
    expect(h.lastState()).toMatchObject({ cloid: CLOID, state: 'submitting', expiresAfter: T0 + 5_000 });
    // Write before act: the submitting state (with its expiry) reached the listener before the send.
    expect(h.emittedBeforePlace).toEqual([['intent', 'submitting']]);
  });

  it('resting → partially_filled → filled by fills; filledSz and avgPx from distinct fills', async () => {
    const h = startOrder();
    await h.place({ kind: 'resting', oid: 42 });
    expect(h.state()).toBe('resting');
    expect(h.lastState()).toMatchObject({ state: 'resting', oid: 42 });
    h.fill(1, '0.4', '65000');
    expect(h.state()).toBe('partially_filled');
    h.fill(2, '0.6', '65100');
    expect(h.state()).toBe('filled');
    expect(h.actor.getSnapshot().status).toBe('done');
    const last = h.lastState();
    expect(last.filledSz.eq('1')).toBe(true);
    expect(last.avgPx!.eq('65060')).toBe(true); // (0.4·65000 + 0.6·65100) / 1
    expect(h.states()).toEqual(['intent', 'submitting', 'resting', 'partially_filled', 'filled']);
    expect(h.emitted.filter((e) => e.type === 'order.fill').map((e) => (e.type === 'order.fill' ? e.fill.tid : 0))).toEqual([1, 2]);
  });

  it('a duplicate tid changes nothing and emits nothing', async () => {
    const h = startOrder();
    await h.place({ kind: 'resting', oid: 42 });
    h.fill(7, '0.4');
    const before = h.emitted.length;
    h.fill(7, '0.4');
    expect(h.emitted.length).toBe(before);
    expect(h.ctx().filledSz.eq('0.4')).toBe(true);
    expect(h.ctx().fills).toHaveLength(1);
    expect(h.state()).toBe('partially_filled');
  });

  it('a fill that arrives before the place answer is kept; the answer then lands in partially_filled', async () => {
    const h = startOrder();
    h.fill(1, '0.25');
    expect(h.state()).toBe('submitting');
    await h.place({ kind: 'resting', oid: 42 });
    expect(h.state()).toBe('partially_filled');
    expect(h.ctx().filledSz.eq('0.25')).toBe(true);
  });

  it('placed filled immediately → filled with the venue avgPx; later fills do not double count', async () => {
    const h = startOrder({ intent: makeIntent({ tif: 'Ioc' }) });
    await h.place({ kind: 'filled', oid: 9, totalSz: dec('1'), avgPx: dec('65010') });
    expect(h.state()).toBe('filled');
    expect(h.lastState()).toMatchObject({ state: 'filled', oid: 9 });
    expect(h.lastState().avgPx!.eq('65010')).toBe(true);
  });

  it('an Ioc partially filled at placement is done: cancelled with the filled size', async () => {
    const h = startOrder({ intent: makeIntent({ tif: 'Ioc' }) });
    await h.place({ kind: 'filled', oid: 9, totalSz: dec('0.3'), avgPx: dec('65010') });
    expect(h.state()).toBe('cancelled');
    expect(h.lastState().filledSz.eq('0.3')).toBe(true);
  });

  it('a Gtc partially filled at placement rests as partially_filled', async () => {
    const h = startOrder();
    await h.place({ kind: 'filled', oid: 9, totalSz: dec('0.3'), avgPx: dec('65010') });
    expect(h.state()).toBe('partially_filled');
    h.fill(11, '0.3'); // the same 0.3, now with its tid: no double count
    expect(h.ctx().filledSz.eq('0.3')).toBe(true);
    h.fill(12, '0.7');
    expect(h.state()).toBe('filled');
  });

  it('rejected → rejected with the venue error', async () => {
    const h = startOrder();
    await h.place({ kind: 'rejected', error: 'Order must have minimum value of $10.' });
    expect(h.state()).toBe('rejected');
    expect(h.lastState()).toMatchObject({ state: 'rejected', error: 'Order must have minimum value of $10.' });
    expect(h.calls.place).toHaveLength(1);
  });

  it('a trigger order waits (resting) until triggered, then fills', async () => {
    const h = startOrder({ intent: makeIntent({ side: 'sell', reduceOnly: true, kind: 'stop_loss', trigger: { triggerPx: dec('64000'), tpsl: 'sl', isMarket: true } }) });
    await h.place({ kind: 'waiting', oid: 50 });
    expect(h.state()).toBe('resting');
    expect(h.ctx().triggered).toBe(false);
    h.update('triggered', '1', '1', 50);
    expect(h.state()).toBe('resting');
    expect(h.ctx().triggered).toBe(true);
    h.fill(3, '1', '63990');
    expect(h.state()).toBe('filled');
  });

  it('venue updates: filled / canceled / rejected end the order; open keeps it', async () => {
    for (const [raw, end] of [['filled', 'filled'], ['canceled', 'cancelled'], ['marginCanceled', 'cancelled'], ['reduceOnlyRejected', 'rejected']] as const) {
      const h = startOrder();
      await h.place({ kind: 'resting', oid: 42 });
      h.update('open', '1', '1', 42);
      expect(h.state()).toBe('resting');
      h.update(raw, raw === 'filled' ? '0' : '1', '1', 42);
      expect(h.state()).toBe(end);
    }
  });

  it('a canceled update after a partial fill ends cancelled with the partial size', async () => {
    const h = startOrder();
    await h.place({ kind: 'resting', oid: 42 });
    h.fill(1, '0.4');
    h.update('canceled', '0.6', '1', 42);
    expect(h.state()).toBe('cancelled');
    expect(h.lastState().filledSz.eq('0.4')).toBe(true);
  });
});

describe('order machine: venue updates before the place answer', () => {
  it("an 'open' update while submitting proves the order rests; the late place answer is ignored", async () => {
    const h = startOrder();
    h.update('open', '1', '1', 42);
    expect(h.state()).toBe('resting');
    expect(h.ctx().oid).toBe(42);
    await h.place({ kind: 'rejected', error: 'late and wrong' });
    expect(h.state()).toBe('resting');
  });

  it("a 'filled' update while submitting ends the order filled", () => {
    const h = startOrder();
    h.update('filled', '0', '1', 42);
    expect(h.state()).toBe('filled');
    expect(h.lastState().filledSz.eq('1')).toBe(true);
  });

  it('an unrecognised status changes nothing but is reported', async () => {
    const h = startOrder();
    await h.place({ kind: 'resting', oid: 42 });
    h.update('somethingNew', '1', '1', 42);
    expect(h.state()).toBe('resting');
    expect(h.ctx().error).toBe('unrecognised venue status somethingNew');
  });

  it('fills beyond the order size are kept, flagged, and filledSz stays capped', async () => {
    const h = startOrder();
    await h.place({ kind: 'resting', oid: 42 });
    h.fill(1, '0.8');
    h.fill(2, '0.8');
    expect(h.state()).toBe('filled');
    expect(h.lastState().filledSz.eq('1')).toBe(true);
    expect(h.lastState().error).toBe('fills total 1.6 exceed order size 1');
    expect(h.emitted.filter((e) => e.type === 'order.fill')).toHaveLength(2);
  });
});

describe('order machine: unknown outcomes', () => {
  it('lost response → unknown → orderStatus finds it resting; placeOrder never runs again', async () => {
    const h = startOrder();
    await h.place({ kind: 'unknown', cause: 'timeout' });
    expect(h.state()).toBe('unknown');
    expect(h.lastState()).toMatchObject({ state: 'unknown', error: 'timeout' });
    expect(h.calls.query).toEqual([{ cloid: CLOID, coin: 'BTC' }]);
    await h.query(found('open', '1', '1', 77));
    expect(h.state()).toBe('resting');
    expect(h.ctx().oid).toBe(77);
    expect(h.lastState()).toEqual(expect.objectContaining({ state: 'resting', oid: 77 }));
    expect(h.lastState().error).toBeUndefined(); // the venue's clear answer supersedes 'timeout'
    expect(h.calls.place).toHaveLength(1);
  });

  it('the submit timeout makes the outcome unknown and stops listening to placeOrder', async () => {
    const h = startOrder({ config: { submitTimeoutMs: 3_000 } });
    await h.advance(2_999);
    expect(h.state()).toBe('submitting');
    await h.advance(1);
    expect(h.state()).toBe('unknown');
    expect(h.lastState().error).toBe('placeOrder timed out');
    await h.place({ kind: 'resting', oid: 1 }); // the late answer is ignored: only the venue's status decides
    expect(h.state()).toBe('unknown');
  });

  it('placeOrder throwing is unknown, never failed', async () => {
    const h = startOrder();
    await h.placeFails(new Error('ECONNRESET'));
    expect(h.state()).toBe('unknown');
    expect(h.lastState().error).toContain('ECONNRESET');
  });

  it('not found before expiry keeps polling; not found from a query started after expiry + margin → rejected', async () => {
    const h = startOrder(); // expiresAfter = T0 + 5000, margin 2000, poll 1000
    await h.place({ kind: 'unknown', cause: 'lost' });
    let polls = 1;
    while (h.clock.now() <= T0 + 7_000) {
      await h.query(NOT_FOUND);
      expect(h.state()).toBe('unknown');
      await h.advance(1_000);
      polls++;
      expect(h.calls.query).toHaveLength(polls);
    }
    // This query started at T0 + 8000 > expiresAfter + margin.
    await h.query(NOT_FOUND);
    expect(h.state()).toBe('rejected');
    expect(h.lastState().error).toBe(NEVER_PLACED);
    expect(h.calls.place).toHaveLength(1);
  });

  it('a query started before expiry that answers after it proves nothing', async () => {
    const h = startOrder();
    await h.place({ kind: 'unknown', cause: 'lost' });
    await h.advance(10_000); // the answer is slow: the query was issued at T0
    await h.query(NOT_FOUND);
    expect(h.state()).toBe('unknown');
    await h.advance(1_000);
    await h.query(NOT_FOUND);
    expect(h.state()).toBe('rejected');
  });

  it('a failed status query retries after the poll interval', async () => {
    const h = startOrder();
    await h.place({ kind: 'unknown', cause: 'lost' });
    h.pending.query[0]!.reject(new Error('503'));
    await h.advance(0);
    expect(h.state()).toBe('unknown');
    expect(h.ctx().error).toContain('503');
    await h.advance(1_000);
    expect(h.calls.query).toHaveLength(2);
    await h.query(found('filled', '0', '1'));
    expect(h.state()).toBe('filled');
  });

  it('a fill while unknown proves the order exists', async () => {
    const h = startOrder();
    await h.place({ kind: 'unknown', cause: 'lost' });
    h.fill(5, '0.5');
    expect(h.state()).toBe('partially_filled');
  });

  it('a cancel requested while unknown is carried out once the order is found live', async () => {
    const h = startOrder();
    await h.place({ kind: 'unknown', cause: 'lost' });
    h.cancel();
    expect(h.state()).toBe('unknown');
    await h.query(found('open', '1', '1', 77));
    expect(h.state()).toBe('cancelling');
    expect(h.calls.cancel).toHaveLength(1);
    expect(h.calls.cancel[0]).toMatchObject({ cloid: CLOID, coin: 'BTC', oid: 77 });
  });

  it('a cancel requested while unknown is moot when the order proves never placed', async () => {
    const h = startOrder({ config: { expiresAfterMs: 1_000, expiryMarginMs: 0, statusPollMs: 500 } });
    await h.place({ kind: 'unknown', cause: 'lost' });
    h.cancel();
    await h.query(NOT_FOUND);
    await h.advance(500);
    await h.query(NOT_FOUND);
    await h.advance(500);
    await h.query(NOT_FOUND); // started exactly at expiresAfter: not yet proof
    expect(h.state()).toBe('unknown');
    await h.advance(500);
    await h.query(NOT_FOUND);
    expect(h.state()).toBe('rejected');
    expect(h.calls.cancel).toHaveLength(0);
  });
});

describe('order machine: cancel', () => {
  async function resting() {
    const h = startOrder();
    await h.place({ kind: 'resting', oid: 42 });
    return h;
  }

  it('resting → cancelling → cancelled', async () => {
    const h = await resting();
    h.cancel();
    expect(h.state()).toBe('cancelling');
    expect(h.calls.cancel[0]!.expiresAfter).toBe(T0 + 5_000);
    await h.cancelResult({ kind: 'cancelled' });
    expect(h.state()).toBe('cancelled');
    expect(h.states().slice(-2)).toEqual(['cancelling', 'cancelled']);
  });

  it('partially_filled → cancelled keeps the filled size', async () => {
    const h = await resting();
    h.fill(1, '0.4');
    h.cancel();
    await h.cancelResult({ kind: 'cancelled' });
    expect(h.state()).toBe('cancelled');
    expect(h.lastState().filledSz.eq('0.4')).toBe(true);
  });

  it('not_found → status says filled → filled', async () => {
    const h = await resting();
    h.cancel();
    await h.cancelResult({ kind: 'not_found', error: 'Order was never placed, already canceled, or filled.' });
    expect(h.state()).toBe('cancelling');
    expect(h.calls.query).toHaveLength(1);
    await h.query(found('filled', '0', '1'));
    expect(h.state()).toBe('filled');
    expect(h.lastState().filledSz.eq('1')).toBe(true);
  });

  it('unknown → status still open → the cancel is retried after a pause → cancelled', async () => {
    const h = await resting();
    h.cancel();
    await h.cancelResult({ kind: 'unknown', cause: 'timeout' });
    await h.query(found('open', '1', '1'));
    expect(h.state()).toBe('cancelling');
    expect(h.calls.cancel).toHaveLength(1);
    await h.advance(1_000);
    expect(h.calls.cancel).toHaveLength(2);
    await h.cancelResult({ kind: 'cancelled' });
    expect(h.state()).toBe('cancelled');
  });

  it('unknown → status canceled → cancelled', async () => {
    const h = await resting();
    h.cancel();
    await h.cancelResult({ kind: 'unknown', cause: 'timeout' });
    await h.query(found('canceled', '1', '1'));
    expect(h.state()).toBe('cancelled');
  });

  it('a fill completing the order while cancelling → filled', async () => {
    const h = await resting();
    h.cancel();
    h.fill(1, '1');
    expect(h.state()).toBe('filled');
  });

  it('a partial fill while cancelling stays cancelling', async () => {
    const h = await resting();
    h.cancel();
    h.fill(1, '0.5');
    expect(h.state()).toBe('cancelling');
    await h.cancelResult({ kind: 'cancelled' });
    expect(h.lastState()).toMatchObject({ state: 'cancelled' });
    expect(h.lastState().filledSz.eq('0.5')).toBe(true);
  });

  it('a cancel requested while submitting runs after the order rests', async () => {
    const h = startOrder();
    h.cancel();
    await h.place({ kind: 'resting', oid: 42 });
    expect(h.state()).toBe('cancelling');
  });
});

describe('order machine: resume after a restart', () => {
  it("'submitting' resumes as unknown (the send may have happened): no placeOrder", async () => {
    const h = startOrder({ resume: { state: 'submitting', filledSz: '0', expiresAfter: T0 - 10_000 } });
    expect(h.state()).toBe('unknown');
    expect(h.calls.place).toHaveLength(0);
    expect(h.states()).toEqual(['unknown']);
    await h.query(NOT_FOUND); // expiry long past: proof
    expect(h.state()).toBe('rejected');
  });

  it("'unknown' without a persisted expiry assumes the latest possible one", async () => {
    const h = startOrder({ resume: { state: 'unknown', filledSz: '0' } });
    expect(h.ctx().expiresAfter).toBe(T0 + 5_000);
    await h.query(NOT_FOUND);
    expect(h.state()).toBe('unknown');
  });

  it("'intent' with no submit attempt recorded goes to submitting", async () => {
    const h = startOrder({ resume: { state: 'intent', filledSz: '0' } });
    expect(h.state()).toBe('submitting');
    expect(h.calls.place).toHaveLength(1);
  });

  it("'partially_filled' resumes with its fills: a replayed tid is ignored, a new one completes it", async () => {
    const fills = [{ tid: 1, sz: dec('0.4'), px: dec('65000'), fee: dec('0.1'), time: T0 - 1 }];
    const h = startOrder({ resume: { state: 'partially_filled', oid: 42, filledSz: '0.4', fills } });
    expect(h.state()).toBe('partially_filled');
    expect(h.lastState()).toMatchObject({ state: 'partially_filled', oid: 42 });
    h.fill(1, '0.4'); // the REST backstop replays it after the restart
    expect(h.ctx().filledSz.eq('0.4')).toBe(true);
    h.fill(9, '0.6', '65100');
    expect(h.state()).toBe('filled');
    expect(h.lastState().avgPx!.eq('65060')).toBe(true);
  });

  it('without persisted fills the resumed size is a lower bound (never double counted)', async () => {
    const h = startOrder({ resume: { state: 'partially_filled', oid: 42, filledSz: '0.4' } });
    h.fill(1, '0.4'); // the same 0.4, replayed
    expect(h.ctx().filledSz.eq('0.4')).toBe(true);
    expect(h.state()).toBe('partially_filled');
  });

  it("'cancelling' resumes by sending the cancel again", async () => {
    const h = startOrder({ resume: { state: 'cancelling', oid: 42, filledSz: '0' } });
    expect(h.state()).toBe('cancelling');
    expect(h.calls.cancel).toHaveLength(1);
  });

  it('a terminal state resumes as done', async () => {
    const h = startOrder({ resume: { state: 'filled', oid: 42, filledSz: '1' } });
    expect(h.actor.getSnapshot().status).toBe('done');
  });
});

describe('order machine: clock', () => {
  it('refuses to run on a clock that cannot tell the time', async () => {
    const machine = orderMachine.provide({ actors: { placeOrder: fromPromise<PlaceResult, PlaceOrderInput>(async () => ({ kind: 'resting', oid: 1 })) } });
    const actor = createActor(machine, { input: { intent: makeIntent() } });
    let failure: unknown;
    actor.subscribe({ error: (e) => (failure = e) });
    actor.start();
    await new Promise((r) => setTimeout(r, 10)); // the default clock's zero-delay timer
    expect(actor.getSnapshot().status).toBe('error');
    expect(failure).toBeInstanceOf(OrderClockError);
  });
});

describe('order machine: structure', () => {
  /** Every transition target reachable from a state node and its descendants. */
  function targetsOf(node: (typeof orderMachine)['root']): string[] {
    const out: string[] = [];
    const visit = (n: typeof node) => {
      for (const ts of n.transitions.values()) for (const t of ts) for (const target of t.target ?? []) out.push(target.id);
      for (const t of n.always ?? []) for (const target of t.target ?? []) out.push(target.id);
      for (const child of Object.values(n.states)) visit(child);
    };
    visit(node);
    return out;
  }

  it('no transition from unknown (or anywhere but intent) leads to submitting', () => {
    for (const [key, node] of Object.entries(orderMachine.root.states)) {
      const targets = targetsOf(node);
      if (key === 'intent') expect(targets).toContain('order.submitting');
      else expect(targets).not.toContain('order.submitting');
    }
  });

  it('classifies raw venue statuses', () => {
    expect(classifyVenueStatus('open')).toBe('open');
    expect(classifyVenueStatus('scheduledCancel')).toBe('canceled');
    expect(classifyVenueStatus('selfTradeCanceled')).toBe('canceled');
    expect(classifyVenueStatus('perpMarginRejected')).toBe('rejected');
    expect(classifyVenueStatus('weird')).toBe('other');
  });
});
