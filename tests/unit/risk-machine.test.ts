/** The trading gate machine: transitions, emitted gateChanged events, the day-roll timer on a SimulatedClock, restore. */
import { describe, expect, it } from 'vitest';
import { SimulatedClock, createActor } from 'xstate';
import { RiskEmitted, RiskEvents, gateOf, riskGateMachine, type PersistedRiskGate, type RiskGateChanged, type RiskGateEvent, type RiskGateInput } from '../../machines/risk.machine.ts';

const T0 = Date.UTC(2024, 4, 1, 20, 0, 0); // 20:00 UTC: four hours before the day rolls
const MIDNIGHT = Date.UTC(2024, 4, 2);

function start(input: Partial<RiskGateInput> = {}) {
  const clock = new SimulatedClock();
  clock.set(input.now ?? T0);
  const actor = createActor(riskGateMachine, { clock, input: { now: T0, ...input } });
  const emitted: RiskGateChanged[] = [];
  actor.on(RiskEmitted.GATE_CHANGED, (e) => emitted.push(e));
  actor.start();
  // Every event carries the time of the injected clock, as the supervisor will stamp it.
  const send = (e: Omit<RiskGateEvent, 'at'> & Record<string, unknown>) => actor.send({ ...e, at: clock.now() } as RiskGateEvent);
  const state = () => actor.getSnapshot().context.state;
  const value = () => actor.getSnapshot().value;
  return { actor, clock, emitted, send, state, value, gate: () => gateOf(actor.getSnapshot()) };
}

describe('risk gate machine', () => {
  it('boots active and announces nothing', () => {
    const m = start();
    expect(m.value()).toBe('active');
    expect(m.gate()).toBe('active');
    expect(m.emitted).toEqual([]);
  });

  it('operator pause → reducing → resume → active, each change emitted with from/to/reason/time', () => {
    const m = start();
    m.send({ type: RiskEvents.PAUSE, by: 'cli' });
    expect(m.gate()).toBe('reducing');
    m.clock.increment(5000);
    m.send({ type: RiskEvents.RESUME, by: 'cli' });
    expect(m.gate()).toBe('active');
    expect(m.emitted.map((e) => [e.from, e.to, e.reason, e.at])).toEqual([
      ['active', 'reducing', 'paused by cli', T0],
      ['reducing', 'active', 'resumed by cli', T0 + 5000],
    ]);
    expect(m.actor.getSnapshot().context).toMatchObject({ reason: 'resumed by cli', since: T0 + 5000 });
  });

  it('reducing keeps the operator’s and the mode’s holds apart', () => {
    const m = start();
    m.send({ type: RiskEvents.REDUCE, reason: 'Critical: order breaker open' });
    m.send({ type: RiskEvents.PAUSE });
    m.send({ type: RiskEvents.RESUME });
    expect(m.gate()).toBe('reducing'); // the mode still holds
    m.send({ type: RiskEvents.REDUCE_CLEARED });
    expect(m.gate()).toBe('active');
    expect(m.emitted.map((e) => e.to)).toEqual(['reducing', 'active']);
  });

  it('operator halt: RESUME is ignored, RESET leaves', () => {
    const m = start();
    m.send({ type: RiskEvents.HALT, reason: 'kill switch', by: 'operator' });
    expect(m.value()).toEqual({ halted: 'manual' });
    m.send({ type: RiskEvents.RESUME });
    m.send({ type: RiskEvents.DAY_ROLLED });
    expect(m.gate()).toBe('halted');
    m.send({ type: RiskEvents.RESET, by: 'operator' });
    expect(m.gate()).toBe('active');
    expect(m.emitted.map((e) => e.reason)).toEqual(['halted by operator: kill switch', 'reset by operator']);
  });

  it('the runaway guard halts from active and from reducing', () => {
    for (const pre of [[], [{ type: RiskEvents.PAUSE }]] as const) {
      const m = start();
      for (const e of pre) m.send(e);
      m.send({ type: RiskEvents.ORDER_RATE_EXCEEDED, count: 21, limit: 20 });
      expect(m.state()).toBe('halted.manual');
      expect(m.emitted.at(-1)?.reason).toBe('order rate: 21 orders in 60 s, limit 20');
    }
  });

  it('daily loss: halted until UTC midnight (SimulatedClock) AND an operator resume', () => {
    const m = start();
    m.send({ type: RiskEvents.DAILY_LOSS_BREACHED, detail: 'PnL -300 ≤ -300' });
    expect(m.state()).toBe('halted.dailyLoss');
    expect(m.actor.getSnapshot().context.dayRollAt).toBe(MIDNIGHT);
    m.clock.increment(MIDNIGHT - T0 - 1);
    expect(m.state()).toBe('halted.dailyLoss');
    m.clock.increment(1);
    expect(m.state()).toBe('halted.awaitingResume');
    const rolled = m.emitted.at(-1);
    expect(rolled).toMatchObject({ from: 'halted', to: 'halted', toState: 'halted.awaitingResume', at: MIDNIGHT, reason: 'day rolled (UTC midnight)' });
    expect(rolled?.persisted).toMatchObject({ dailyLossLatched: false, dayRollAt: undefined });
    m.clock.increment(3_600_000);
    m.send({ type: RiskEvents.RESUME });
    expect(m.gate()).toBe('active');
    expect(m.actor.getSnapshot().context.since).toBe(MIDNIGHT + 3_600_000);
  });

  it('daily loss: a resume before the roll is queued and takes effect at midnight', () => {
    const m = start();
    m.send({ type: RiskEvents.DAILY_LOSS_BREACHED });
    m.clock.increment(1000);
    m.send({ type: RiskEvents.RESUME });
    expect(m.state()).toBe('halted.dailyLossResumeQueued');
    m.clock.increment(MIDNIGHT - T0 - 1001);
    expect(m.gate()).toBe('halted');
    m.clock.increment(1);
    expect(m.gate()).toBe('active');
    expect(m.emitted.at(-1)).toMatchObject({ from: 'halted', to: 'active', at: MIDNIGHT });
  });

  it('daily loss: an explicit DAY_ROLLED works before the timer; the timer does not fire twice', () => {
    const m = start();
    m.send({ type: RiskEvents.DAILY_LOSS_BREACHED });
    m.clock.set(MIDNIGHT - 10); // the supervisor may see the roll a little early by its own clock
    m.send({ type: RiskEvents.DAY_ROLLED });
    expect(m.state()).toBe('halted.awaitingResume');
    const n = m.emitted.length;
    m.clock.increment(1_000_000);
    expect(m.state()).toBe('halted.awaitingResume');
    expect(m.emitted.length).toBe(n);
  });

  it('RESET cannot skip the day roll: a kill during a daily-loss halt still waits for midnight', () => {
    const m = start();
    m.send({ type: RiskEvents.DAILY_LOSS_BREACHED });
    m.send({ type: RiskEvents.HALT, reason: 'kill switch' });
    m.send({ type: RiskEvents.RESET });
    expect(m.state()).toBe('halted.dailyLossResumeQueued');
    m.clock.increment(MIDNIGHT - T0);
    expect(m.gate()).toBe('active');
  });

  it('a mode reduce received while halted is remembered: leaving the halt lands in reducing', () => {
    const m = start();
    m.send({ type: RiskEvents.HALT, reason: 'invariant' });
    m.send({ type: RiskEvents.REDUCE, reason: 'Critical' });
    m.send({ type: RiskEvents.RESET });
    expect(m.gate()).toBe('reducing');
    m.send({ type: RiskEvents.REDUCE_CLEARED });
    expect(m.gate()).toBe('active');
  });

  it('ignores events a state does not accept, without announcing', () => {
    const m = start();
    m.send({ type: RiskEvents.RESUME });
    m.send({ type: RiskEvents.DAY_ROLLED });
    m.send({ type: RiskEvents.REDUCE_CLEARED });
    m.send({ type: RiskEvents.RESET });
    expect(m.gate()).toBe('active');
    expect(m.emitted).toEqual([]);
  });

  it('restores from the persisted record, re-arming the day roll from the boot time', () => {
    const first = start();
    first.send({ type: RiskEvents.DAILY_LOSS_BREACHED });
    const saved = first.emitted.at(-1)?.persisted as PersistedRiskGate;
    first.actor.stop();

    const bootAt = T0 + 3 * 3_600_000; // restarted at 23:00
    const m = start({ now: bootAt, restore: saved });
    expect(m.state()).toBe('halted.dailyLoss');
    expect(m.emitted).toEqual([]);
    m.clock.increment(3_600_000 - 1);
    expect(m.state()).toBe('halted.dailyLoss');
    m.clock.increment(1);
    expect(m.state()).toBe('halted.awaitingResume');
  });

  it('a restore after midnight rolls the day at once (on the clock), then waits for the operator', () => {
    const saved: PersistedRiskGate = { state: 'halted.dailyLoss', reason: 'daily loss limit breached', since: T0, operatorPause: false, modeReduce: false, dailyLossLatched: true, dayRollAt: MIDNIGHT };
    const m = start({ now: MIDNIGHT + 5_000, restore: saved });
    m.clock.increment(0);
    expect(m.state()).toBe('halted.awaitingResume');
    m.send({ type: RiskEvents.RESUME });
    expect(m.gate()).toBe('active');
  });

  it('restores reducing with its holds', () => {
    const saved: PersistedRiskGate = { state: 'reducing', reason: 'paused', since: T0, operatorPause: true, modeReduce: true, dailyLossLatched: false, dayRollAt: undefined };
    const m = start({ restore: saved });
    expect(m.gate()).toBe('reducing');
    m.send({ type: RiskEvents.RESUME });
    expect(m.gate()).toBe('reducing');
    m.send({ type: RiskEvents.REDUCE_CLEARED });
    expect(m.gate()).toBe('active');
  });
});
