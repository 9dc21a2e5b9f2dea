/**
 * The trading gate under random event streams and clock jumps: the snapshot and its context agree,
 * every state change is announced exactly once with the right from/to, nothing but an operator
 * command (or the queued day roll after one) leaves `halted`, a daily-loss halt never reopens
 * before UTC midnight, and restoring from any announced record lands in the same state.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SimulatedClock, createActor } from 'xstate';
import { RiskEmitted, RiskEvents, gateOfState, riskGateMachine, type RiskGateChanged, type RiskGateEvent, type RiskGateState } from '../../machines/risk.machine.ts';
import { nextUtcMidnight } from '../../src/domain/risk.ts';

const T0 = Date.UTC(2024, 4, 1, 18, 0, 0);

const stepArb = fc.oneof(
  fc.record({ kind: fc.constant('event' as const), type: fc.constantFrom(...Object.values(RiskEvents)) }),
  fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 4 * 3_600_000 }) }),
);

function eventOf(type: (typeof RiskEvents)[keyof typeof RiskEvents], at: number): RiskGateEvent {
  switch (type) {
    case RiskEvents.HALT:
      return { type, at, reason: 'prop' };
    case RiskEvents.REDUCE:
      return { type, at, reason: 'prop' };
    case RiskEvents.ORDER_RATE_EXCEEDED:
      return { type, at, count: 30, limit: 20 };
    default:
      return { type, at } as RiskGateEvent;
  }
}

const stateValue = (v: unknown): RiskGateState => (typeof v === 'string' ? v : `halted.${(v as { halted: string }).halted}`) as RiskGateState;

describe('risk gate properties', () => {
  it('keeps its invariants under any event stream', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 40 }), (steps) => {
        const clock = new SimulatedClock();
        clock.set(T0);
        const actor = createActor(riskGateMachine, { clock, input: { now: T0 } });
        const emitted: RiskGateChanged[] = [];
        actor.on(RiskEmitted.GATE_CHANGED, (e) => emitted.push(e));
        actor.start();
        let prev: RiskGateState = 'active';
        let haltedUntil: number | undefined; // after a daily-loss breach: not out of `halted` before this
        for (const step of steps) {
          const before = emitted.length;
          if (step.kind === 'tick') clock.increment(step.ms);
          else {
            if (step.type === RiskEvents.DAILY_LOSS_BREACHED && prev !== 'halted.dailyLoss' && prev !== 'halted.dailyLossResumeQueued') haltedUntil = nextUtcMidnight(clock.now());
            if (step.type === RiskEvents.DAY_ROLLED) haltedUntil = undefined;
            actor.send(eventOf(step.type, clock.now()));
          }
          const snap = actor.getSnapshot();
          const now = stateValue(snap.value);
          expect(snap.context.state).toBe(now);
          const news = emitted.slice(before);
          if (now === prev) expect(news).toEqual([]);
          else {
            // One announcement per state entered; the chain starts at prev and ends at now.
            expect(news.length).toBeGreaterThanOrEqual(1);
            expect(news[0]?.fromState).toBe(prev);
            expect(news.at(-1)?.toState).toBe(now);
            for (const e of news) expect([e.from, e.to]).toEqual([gateOfState(e.fromState), gateOfState(e.toState)]);
          }
          if (gateOfState(prev) === 'halted' && gateOfState(now) !== 'halted') {
            const operator = step.kind === 'event' && (step.type === RiskEvents.RESET || step.type === RiskEvents.RESUME);
            const queuedRoll = prev === 'halted.dailyLossResumeQueued' && (step.kind === 'tick' || step.type === RiskEvents.DAY_ROLLED);
            expect(operator || queuedRoll).toBe(true);
          }
          if (haltedUntil !== undefined && gateOfState(now) !== 'halted') {
            expect(clock.now()).toBeGreaterThanOrEqual(haltedUntil);
            haltedUntil = undefined;
          }
          // Restoring from the last announcement reproduces the state.
          const last = emitted.at(-1);
          if (last !== undefined && now === last.toState) {
            const restored = createActor(riskGateMachine, { clock: new SimulatedClock(), input: { now: clock.now(), restore: last.persisted } }).start();
            expect(restored.getSnapshot().context.state).toBe(now);
            restored.stop();
          }
          prev = now;
        }
        actor.stop();
      }),
      { seed: 424242, numRuns: 600 },
    );
  });
});
