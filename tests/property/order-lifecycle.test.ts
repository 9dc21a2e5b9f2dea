/**
 * Model-based property test of machines/order.machine.ts.
 *
 * A small model of the venue holds the truth about one cloid (did the order land, its status, the
 * fills so far) and answers the machine's fake actors from it, in random interleavings with fills
 * (duplicate tids included), venue updates, cancels and clock advances. The model lets an order
 * land only up to its `expiresAfter`, as the venue does, and decides lazily, so the race between a
 * lost send and a status query is explored.
 *
 * Invariants after every step:
 * - placeOrder runs at most once (never after a resume that recorded a submit attempt), only after
 *   `submitting` reached the listener, and no `submitting` is ever emitted after `unknown`;
 * - filledSz never decreases, never exceeds intent.sz, and equals the sum of the distinct-tid fills;
 * - an unresolved cloid (submitting / unknown / cancelling) always has a running actor or a timer;
 * - "never placed" is only concluded for an order that indeed never landed.
 * After the run the venue turns responsive and truthful: every cloid then reaches a final state, or
 * rests acknowledged by the venue with no cancel pending.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dec, ZERO } from '../../src/domain/decimal.ts';
import type { Decimal } from '../../src/domain/decimal.ts';
import type { OrderState, VenueOrderStatus } from '../../src/domain/types.ts';
import { NEVER_PLACED, type OrderFill, type OrderResume } from '../../machines/order.machine.ts';
import { flush, makeIntent, startOrder, T0 } from '../unit/order-machine-harness.ts';

type Step =
  | { readonly k: 'place'; readonly outcome: 'resting' | 'waiting' | 'filled' | 'rejected' | 'unknown' | 'throw'; readonly landed: boolean }
  | { readonly k: 'query'; readonly landed: boolean; readonly venueCancels: boolean; readonly fails: boolean }
  | { readonly k: 'cancelResult'; readonly outcome: 'ack' | 'lost' | 'throw'; readonly applied: boolean }
  | { readonly k: 'fill'; readonly tid: number; readonly sz: string }
  | { readonly k: 'update'; readonly triggered: boolean }
  | { readonly k: 'cancel' }
  | { readonly k: 'advance'; readonly ms: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ k: fc.constant('place' as const), outcome: fc.constantFrom('resting', 'waiting', 'filled', 'rejected', 'unknown', 'throw' as const), landed: fc.boolean() }),
  fc.record({ k: fc.constant('query' as const), landed: fc.boolean(), venueCancels: fc.boolean(), fails: fc.boolean() }),
  fc.record({ k: fc.constant('cancelResult' as const), outcome: fc.constantFrom('ack', 'lost', 'throw' as const), applied: fc.boolean() }),
  fc.record({ k: fc.constant('fill' as const), tid: fc.integer({ min: 1, max: 6 }), sz: fc.constantFrom('0.1', '0.25', '0.5', '1') }),
  fc.record({ k: fc.constant('update' as const), triggered: fc.boolean() }),
  fc.constant({ k: 'cancel' as const }),
  fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(0, 100, 999, 1_000, 3_000, 6_000) }),
);

const resumeArb: fc.Arbitrary<{ state: OrderState; fills: number; expired: boolean | undefined } | undefined> = fc.option(
  fc.record({
    state: fc.constantFrom<OrderState>('intent', 'submitting', 'unknown', 'resting', 'partially_filled', 'cancelling'),
    fills: fc.integer({ min: 0, max: 2 }),
    expired: fc.option(fc.boolean(), { nil: undefined }),
  }),
  { nil: undefined, freq: 2 }, // half the runs start fresh
);

type VenueStatus = 'live' | 'filled' | 'canceled';

async function run(resumeSpec: { state: OrderState; fills: number; expired: boolean | undefined } | undefined, steps: readonly Step[]): Promise<void> {
  const intent = makeIntent({ sz: dec('1') });
  // The venue model.
  const venue = { exists: undefined as boolean | undefined, status: 'live' as VenueStatus, fills: new Map<number, Decimal>(), cancelRequested: false };
  const filledTruth = () => [...venue.fills.values()].reduce((a, b) => a.plus(b), ZERO);

  let resume: OrderResume | undefined;
  if (resumeSpec) {
    const acknowledged = resumeSpec.state === 'resting' || resumeSpec.state === 'partially_filled' || resumeSpec.state === 'cancelling';
    const n = acknowledged ? Math.max(resumeSpec.fills, resumeSpec.state === 'partially_filled' ? 1 : 0) : 0;
    const fills: OrderFill[] = Array.from({ length: n }, (_, i) => ({ tid: 100 + i, sz: dec('0.2'), px: dec('65000'), fee: dec('0.1'), time: T0 - 1 }));
    for (const f of fills) venue.fills.set(f.tid, f.sz);
    if (acknowledged) venue.exists = true;
    const expiresAfter = resumeSpec.expired === undefined ? undefined : resumeSpec.expired ? T0 - 60_000 : T0 + 1_000;
    resume = { state: resumeSpec.state, oid: acknowledged ? 42 : undefined, filledSz: filledTruth().toFixed(), fills, ...(expiresAfter !== undefined ? { expiresAfter } : {}) } as OrderResume;
    if (resumeSpec.state === 'cancelling') venue.cancelRequested = true;
  }
  const h = startOrder({ intent, ...(resume ? { resume } : {}) });
  const maxPlaces = resume === undefined || resume.state === 'intent' ? 1 : 0;

  const active = () => h.actor.getSnapshot().status === 'active';
  const unsettled = <T extends { settled: boolean }>(xs: readonly T[]) => [...xs].reverse().find((d) => !d.settled);
  // The venue refuses the order after expiresAfter: until then, an undecided order may still land.
  const expiry = () => h.calls.place[0]?.expiresAfter ?? h.ctx().expiresAfter ?? Number.POSITIVE_INFINITY;
  const decide = (landed: boolean) => {
    if (venue.exists === undefined && h.clock.now() > expiry()) venue.exists = landed;
  };
  const truth = (): VenueOrderStatus => {
    if (venue.exists !== true) return { found: false };
    const status = venue.status === 'live' ? 'open' : venue.status;
    return { found: true, oid: 42, status, rawStatus: status, sz: intent.sz.minus(filledTruth()), origSz: intent.sz, statusTimestamp: h.clock.now() };
  };

  let lastFilled = h.ctx().filledSz;
  const resumedFillSz = resume?.fills?.reduce((a, f) => a.plus(f.sz), ZERO) ?? ZERO;
  const check = (where: string) => {
    const snap = h.actor.getSnapshot();
    const ctx = snap.context;
    expect(h.calls.place.length, where).toBeLessThanOrEqual(maxPlaces);
    // Write before act: the manager had been told `submitting` when the send started.
    for (const seen of h.emittedBeforePlace) expect(seen[seen.length - 1], where).toBe('submitting');
    const states = h.states();
    const firstUnknown = states.indexOf('unknown');
    if (firstUnknown >= 0) expect(states.slice(firstUnknown), where).not.toContain('submitting');
    expect(ctx.filledSz.gte(lastFilled), `${where}: filledSz decreased`).toBe(true);
    expect(ctx.filledSz.lte(intent.sz), where).toBe(true);
    lastFilled = ctx.filledSz;
    const emittedFills = h.emitted.flatMap((e) => (e.type === 'order.fill' ? [e.fill] : []));
    expect(new Set(emittedFills.map((f) => f.tid)).size, `${where}: a tid emitted twice`).toBe(emittedFills.length);
    const accepted = emittedFills.reduce((a, f) => a.plus(f.sz), resumedFillSz);
    expect(ctx.filledSz.toFixed(), `${where}: filledSz vs distinct fills`).toBe(accepted.toFixed());
    if (snap.status === 'active') {
      const state = h.state();
      if (state === 'submitting' || state === 'unknown' || state === 'cancelling') {
        const running = Object.keys(snap.children).length > 0;
        const timers = Object.values(h.actor.system.getSnapshot()._scheduledEvents).some((e) => e.source === h.actor);
        expect(running || timers, `${where}: ${state} with nothing pending`).toBe(true);
      } else {
        expect(['resting', 'partially_filled'], where).toContain(state);
      }
    } else if (h.state() === 'rejected' && ctx.error === NEVER_PLACED) {
      expect(venue.exists, `${where}: declared never placed, but it landed`).toBe(false);
    }
  };
  check('start');

  for (const [i, step] of steps.entries()) {
    const where = `step ${i} ${JSON.stringify(step)}`;
    switch (step.k) {
      case 'place': {
        const d = unsettled(h.pending.place);
        if (!d) break;
        let outcome = step.outcome;
        if (venue.exists === true && outcome === 'rejected') outcome = 'resting';
        if (venue.exists === false && (outcome === 'resting' || outcome === 'waiting' || outcome === 'filled')) outcome = 'rejected';
        if (outcome === 'filled' && filledTruth().isZero()) outcome = 'resting';
        if (outcome === 'resting' || outcome === 'waiting' || outcome === 'filled') venue.exists = true;
        if (outcome === 'rejected') venue.exists = false;
        if ((outcome === 'unknown' || outcome === 'throw') && venue.exists === undefined) venue.exists = step.landed;
        if (outcome === 'throw') d.reject(new Error('ECONNRESET'));
        else
          d.resolve(
            outcome === 'resting'
              ? { kind: 'resting', oid: 42 }
              : outcome === 'waiting'
                ? { kind: 'waiting', oid: 42 }
                : outcome === 'filled'
                  ? { kind: 'filled', oid: 42, totalSz: filledTruth(), avgPx: dec('65000') }
                  : outcome === 'rejected'
                    ? { kind: 'rejected', error: 'Insufficient margin' }
                    : { kind: 'unknown', cause: 'lost' },
          );
        await flush();
        break;
      }
      case 'query': {
        const d = unsettled(h.pending.query);
        if (!d) break;
        if (step.fails) {
          d.reject(new Error('503'));
        } else {
          decide(step.landed);
          if (step.venueCancels && venue.exists === true && venue.status === 'live') venue.status = 'canceled';
          d.resolve(truth());
        }
        await flush();
        break;
      }
      case 'cancelResult': {
        const d = unsettled(h.pending.cancel);
        if (!d) break;
        const live = venue.exists === true && venue.status === 'live';
        if (step.outcome === 'ack') {
          if (live) venue.status = 'canceled';
          d.resolve(live ? { kind: 'cancelled' } : { kind: 'not_found', error: 'Order was never placed, already canceled, or filled.' });
        } else {
          if (live && step.applied) venue.status = 'canceled';
          if (step.outcome === 'lost') d.resolve({ kind: 'unknown', cause: 'lost' });
          else d.reject(new Error('ECONNRESET'));
        }
        await flush();
        break;
      }
      case 'fill': {
        if (!active() || venue.exists === false) break;
        const known = venue.fills.get(step.tid);
        if (known !== undefined) {
          h.fill(step.tid, known); // a duplicate delivery
        } else {
          const remaining = intent.sz.minus(filledTruth());
          if (venue.status !== 'live' || remaining.isZero()) break;
          // An undecided order can only fill if it landed, i.e. before its expiry.
          if (venue.exists === undefined && h.clock.now() > expiry()) break;
          venue.exists = true;
          const sz = dec(step.sz).gt(remaining) ? remaining : dec(step.sz);
          venue.fills.set(step.tid, sz);
          if (filledTruth().eq(intent.sz)) venue.status = 'filled';
          h.fill(step.tid, sz);
        }
        break;
      }
      case 'update': {
        if (!active() || venue.exists !== true) break;
        const raw = venue.status === 'live' ? (step.triggered ? 'triggered' : 'open') : venue.status;
        h.update(raw, intent.sz.minus(filledTruth()), intent.sz, 42);
        break;
      }
      case 'cancel':
        if (!active()) break;
        venue.cancelRequested = true;
        h.cancel();
        break;
      case 'advance':
        await h.advance(step.ms);
        break;
    }
    check(where);
  }

  // The venue turns responsive and truthful: every cloid must now resolve.
  for (let round = 0; round < 60 && active(); round++) {
    const place = unsettled(h.pending.place);
    if (place) {
      if (venue.exists === undefined) venue.exists = true;
      place.resolve(venue.exists ? { kind: 'resting', oid: 42 } : { kind: 'rejected', error: 'Insufficient margin' });
    }
    const query = unsettled(h.pending.query);
    if (query) {
      decide(false);
      query.resolve(truth());
    }
    const cancel = unsettled(h.pending.cancel);
    if (cancel) {
      const live = venue.exists === true && venue.status === 'live';
      if (live) venue.status = 'canceled';
      cancel.resolve(live ? { kind: 'cancelled' } : { kind: 'not_found', error: 'gone' });
    }
    await flush();
    check(`drain ${round}`);
    const state = h.state();
    if ((state === 'resting' || state === 'partially_filled') && !venue.cancelRequested) break;
    await h.advance(1_000);
  }
  const end = h.state();
  if (venue.cancelRequested) expect(h.actor.getSnapshot().status, `cancel requested, ended ${end}`).toBe('done');
  else expect(['filled', 'cancelled', 'rejected', 'resting', 'partially_filled']).toContain(end);
  h.actor.stop();
}

describe('order lifecycle (model-based)', () => {
  it('never submits twice, never loses a cloid, counts fills exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(resumeArb, fc.array(stepArb, { maxLength: 40 }), async (resume, steps) => {
        await run(resume, steps);
      }),
      { numRuns: 400, seed: 20240611 },
    );
  });
});
