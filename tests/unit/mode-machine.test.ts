/**
 * The operating-mode machine on a SimulatedClock: each trigger drives its mode, hysteresis on the
 * way up (reset when a condition returns), Emergency left only by an ack after a clean
 * reconciliation, restored mode on restart, one `mode.changed` per transition; effectsOf and the
 * config schema.
 */
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import {
  DEFAULT_MODE_CONFIG,
  effectsOf,
  modeMachine,
  ModeEmitted,
  ModeEvents,
  modeOf,
  parseModeConfig,
  type ModeAckRefused,
  type ModeChanged,
  type ModeEvent,
  type ModeInput,
} from '../../machines/mode.machine.ts';
import type { Mode } from '../../src/domain/types.ts';

const T0 = 1_700_000_000_000;
const H = DEFAULT_MODE_CONFIG.hysteresisMs;

type Fact = ModeEvent extends infer E ? (E extends { at: number } ? Omit<E, 'at'> : never) : never;

function start(input: Partial<ModeInput> = {}) {
  const clock = new SimulatedClock();
  clock.set(T0);
  const actor = createActor(modeMachine, { clock, input: { now: T0, ...input } });
  const changes: ModeChanged[] = [];
  const refusals: ModeAckRefused[] = [];
  actor.on(ModeEmitted.CHANGED, (e) => changes.push(e));
  actor.on(ModeEmitted.ACK_REFUSED, (e) => refusals.push(e));
  actor.start();
  // The supervisor stamps every fact with the injected clock's time.
  const send = (e: Fact) => actor.send({ ...e, at: clock.now() } as ModeEvent);
  const mode = (): Mode => modeOf(actor.getSnapshot());
  const path = () => changes.map((c) => `${c.from}→${c.to}`);
  return { actor, clock, changes, refusals, send, mode, path };
}

describe('mode machine: triggers', () => {
  it('boots Normal and announces nothing', () => {
    const m = start();
    expect(m.mode()).toBe('Normal');
    expect(m.actor.getSnapshot().value).toBe('Normal');
    expect(m.changes).toEqual([]);
  });

  const cases: [string, Fact, Mode][] = [
    ['WebSocket down', { type: ModeEvents.WS_DOWN }, 'Degraded'],
    ['info breaker open', { type: ModeEvents.BREAKER_OPEN, endpoint: 'info' }, 'Degraded'],
    ['ws breaker open', { type: ModeEvents.BREAKER_OPEN, endpoint: 'ws' }, 'Degraded'],
    ['event-loop delay high', { type: ModeEvents.EVENT_LOOP_DELAY, ms: 400 }, 'Degraded'],
    ['drawdown 5 %', { type: ModeEvents.DRAWDOWN, pct: 5 }, 'Degraded'],
    ['order breaker open', { type: ModeEvents.BREAKER_OPEN, endpoint: 'exchange' }, 'Critical'],
    ['feed stale on both paths', { type: ModeEvents.FEED_STALE, stale: true }, 'Critical'],
    ['DB write errors', { type: ModeEvents.DB_WRITE_ERROR, detail: 'SQLITE_FULL' }, 'Critical'],
    ['drawdown 10 %', { type: ModeEvents.DRAWDOWN, pct: 10 }, 'Critical'],
    ['reconciliation unresolved', { type: ModeEvents.RECONCILIATION, clean: false, summary: '1 pending' }, 'Critical'],
    ['kill switch', { type: ModeEvents.KILL, by: 'cli' }, 'Emergency'],
    ['drawdown 15 %', { type: ModeEvents.DRAWDOWN, pct: 15 }, 'Emergency'],
    ['daily loss limit', { type: ModeEvents.DAILY_LOSS_BREACHED, detail: '-3.1 %' }, 'Emergency'],
    ['invariant broken', { type: ModeEvents.INVARIANT_BROKEN, detail: 'two stops' }, 'Emergency'],
    ['runaway order rate', { type: ModeEvents.RUNAWAY_ORDER_RATE }, 'Emergency'],
    ['unresolvable position mismatch', { type: ModeEvents.POSITION_MISMATCH_UNRESOLVED, detail: 'BTC' }, 'Emergency'],
  ];
  for (const [name, fact, expected] of cases) {
    it(`${name} → ${expected}, at once, announced once with its reason and time`, () => {
      const m = start();
      m.clock.increment(1234);
      m.send(fact);
      expect(m.mode()).toBe(expected);
      expect(m.changes).toHaveLength(1);
      expect(m.changes[0]).toMatchObject({ type: 'mode.changed', from: 'Normal', to: expected, at: T0 + 1234 });
      expect(m.changes[0]!.reason.length).toBeGreaterThan(0);
      expect(m.changes[0]!.conditions[0]!.level).toBe(expected);
    });
  }

  it('facts below the thresholds and "all clear" facts change nothing', () => {
    const m = start();
    m.send({ type: ModeEvents.EVENT_LOOP_DELAY, ms: 10 });
    m.send({ type: ModeEvents.DRAWDOWN, pct: 4.99 });
    m.send({ type: ModeEvents.WS_UP });
    m.send({ type: ModeEvents.FEED_STALE, stale: false });
    m.send({ type: ModeEvents.RECONCILIATION, clean: true });
    m.send({ type: ModeEvents.DB_OK });
    m.send({ type: ModeEvents.BREAKER_CLOSED, endpoint: 'exchange' });
    m.send({ type: ModeEvents.DRAWDOWN, pct: Number.NaN });
    expect(m.mode()).toBe('Normal');
    expect(m.changes).toEqual([]);
  });

  it('going down is immediate through every level, and the worst condition wins', () => {
    const m = start();
    m.send({ type: ModeEvents.WS_DOWN });
    m.send({ type: ModeEvents.FEED_STALE, stale: true });
    m.send({ type: ModeEvents.WS_DOWN }); // a repeat: no change
    m.send({ type: ModeEvents.KILL, by: 'op' });
    m.send({ type: ModeEvents.BREAKER_OPEN, endpoint: 'exchange' });
    expect(m.path()).toEqual(['Normal→Degraded', 'Degraded→Critical', 'Critical→Emergency']);
    expect(m.changes[1]!.reason).toBe('market feed stale on both paths');
    expect(m.changes[2]!.reason).toBe('kill switch by op');
  });

  it('which breakers are order endpoints is configuration', () => {
    const parsed = parseModeConfig({ orderEndpoints: ['exchange', 'ws'] });
    if (!parsed.ok) throw new Error(parsed.error);
    const m = start({ config: parsed.config });
    m.send({ type: ModeEvents.BREAKER_OPEN, endpoint: 'ws' });
    expect(m.mode()).toBe('Critical');
  });
});

describe('mode machine: hysteresis on the way up', () => {
  it('WebSocket down → Degraded → up → Normal only after the hysteresis period', () => {
    const m = start();
    m.send({ type: ModeEvents.WS_DOWN });
    m.clock.increment(10_000);
    m.send({ type: ModeEvents.WS_UP });
    m.clock.increment(H - 1);
    expect(m.mode()).toBe('Degraded');
    m.clock.increment(1);
    expect(m.mode()).toBe('Normal');
    expect(m.changes.map((c) => [c.from, c.to, c.at])).toEqual([
      ['Normal', 'Degraded', T0],
      ['Degraded', 'Normal', T0 + 10_000 + H],
    ]);
    expect(m.changes[1]!.reason).toBe(`conditions worse than Normal clear for ${H} ms`);
  });

  it('a condition that returns during the wait resets it (the timer is cancelled, not merely ignored)', () => {
    const m = start();
    m.send({ type: ModeEvents.BREAKER_OPEN, endpoint: 'info' });
    m.send({ type: ModeEvents.BREAKER_CLOSED, endpoint: 'info' });
    m.clock.increment(H - 5000);
    m.send({ type: ModeEvents.EVENT_LOOP_DELAY, ms: 1000 }); // back, as another Degraded condition
    m.clock.increment(1000);
    m.send({ type: ModeEvents.EVENT_LOOP_DELAY, ms: 5 });
    m.clock.increment(H - 1);
    expect(m.mode()).toBe('Degraded');
    m.clock.increment(1);
    expect(m.mode()).toBe('Normal');
    expect(m.changes.at(-1)!.at).toBe(T0 + H - 5000 + 1000 + H);
    expect(m.path()).toEqual(['Normal→Degraded', 'Degraded→Normal']);
  });

  it('Critical steps up to Degraded while a Degraded condition remains, then to Normal after its own wait', () => {
    const m = start();
    m.send({ type: ModeEvents.WS_DOWN });
    m.send({ type: ModeEvents.BREAKER_OPEN, endpoint: 'exchange' });
    m.clock.increment(5000);
    m.send({ type: ModeEvents.BREAKER_CLOSED, endpoint: 'exchange' });
    m.clock.increment(H);
    expect(m.mode()).toBe('Degraded');
    expect(m.changes.at(-1)!.reason).toBe(`conditions worse than Degraded clear for ${H} ms (still: wsDown)`);
    m.send({ type: ModeEvents.WS_UP });
    m.clock.increment(H);
    expect(m.path()).toEqual(['Normal→Degraded', 'Degraded→Critical', 'Critical→Degraded', 'Degraded→Normal']);
  });

  it('Critical goes straight to Normal when everything has been clear long enough', () => {
    const m = start();
    m.send({ type: ModeEvents.WS_DOWN });
    m.send({ type: ModeEvents.DB_WRITE_ERROR });
    m.send({ type: ModeEvents.WS_UP });
    m.clock.increment(1000);
    m.send({ type: ModeEvents.DB_OK });
    m.clock.increment(H);
    expect(m.path()).toEqual(['Normal→Degraded', 'Degraded→Critical', 'Critical→Normal']);
  });

  it('a Degraded condition that cleared recently keeps Critical’s step up at Degraded', () => {
    const m = start();
    m.send({ type: ModeEvents.DB_WRITE_ERROR });
    m.clock.increment(1000);
    m.send({ type: ModeEvents.DB_OK });
    m.clock.increment(H - 2000);
    m.send({ type: ModeEvents.WS_DOWN });
    m.clock.increment(1000);
    m.send({ type: ModeEvents.WS_UP });
    m.clock.increment(1000); // Critical's wait is over; the WebSocket cleared 1 s ago
    expect(m.mode()).toBe('Degraded');
    m.clock.increment(H - 1000);
    expect(m.mode()).toBe('Normal');
  });

  it('a drawdown improving from Critical to Degraded levels steps up only after the wait', () => {
    const m = start();
    m.send({ type: ModeEvents.DRAWDOWN, pct: 12 });
    m.send({ type: ModeEvents.DRAWDOWN, pct: 7 });
    expect(m.mode()).toBe('Critical');
    m.clock.increment(H);
    expect(m.mode()).toBe('Degraded');
    m.send({ type: ModeEvents.DRAWDOWN, pct: 1 });
    m.clock.increment(H);
    expect(m.mode()).toBe('Normal');
  });
});

describe('mode machine: Emergency is sticky', () => {
  it('kill → Emergency; clearing every other fact and waiting changes nothing', () => {
    const m = start();
    m.send({ type: ModeEvents.KILL, by: 'op' });
    m.send({ type: ModeEvents.RECONCILIATION, clean: true });
    m.clock.increment(10 * H);
    expect(m.mode()).toBe('Emergency');
    expect(m.changes).toHaveLength(1);
  });

  it('an ack without a clean reconciliation is refused and reported; with one it leaves', () => {
    const m = start();
    m.send({ type: ModeEvents.INVARIANT_BROKEN, detail: 'filledSz > sz' });
    m.clock.increment(1000);
    m.send({ type: ModeEvents.ACK, by: 'alice', reconciliationClean: false });
    expect(m.mode()).toBe('Emergency');
    expect(m.refusals).toEqual([{ type: 'mode.ackRefused', by: 'alice', mode: 'Emergency', reason: 'reconciliation not clean: run `keel reconcile` until it is', at: T0 + 1000 }]);
    m.send({ type: ModeEvents.ACK, by: 'alice', reconciliationClean: true });
    expect(m.mode()).toBe('Normal');
    expect(m.changes.at(-1)).toMatchObject({ from: 'Emergency', to: 'Normal', reason: 'operator ack by alice after a clean reconciliation', at: T0 + 1000 });
  });

  it('the ack leaves to the mode the remaining conditions imply (hysteresis included)', () => {
    const m = start();
    m.send({ type: ModeEvents.WS_DOWN });
    m.send({ type: ModeEvents.KILL, by: 'op' });
    m.send({ type: ModeEvents.ACK, by: 'op', reconciliationClean: true });
    expect(m.mode()).toBe('Degraded');

    const n = start();
    n.send({ type: ModeEvents.FEED_STALE, stale: true });
    n.send({ type: ModeEvents.RUNAWAY_ORDER_RATE });
    n.clock.increment(1000);
    n.send({ type: ModeEvents.FEED_STALE, stale: false });
    n.send({ type: ModeEvents.ACK, by: 'op', reconciliationClean: true });
    expect(n.mode()).toBe('Critical'); // the feed came back 0 s ago
    n.clock.increment(H);
    expect(n.mode()).toBe('Normal');
    expect(n.path()).toEqual(['Normal→Critical', 'Critical→Emergency', 'Emergency→Critical', 'Critical→Normal']);
  });

  it('an accepted ack also clears an unresolved reconciliation (the ack carries a clean one)', () => {
    const m = start();
    m.send({ type: ModeEvents.RECONCILIATION, clean: false });
    m.send({ type: ModeEvents.POSITION_MISMATCH_UNRESOLVED, detail: 'ETH' });
    m.send({ type: ModeEvents.ACK, by: 'op', reconciliationClean: true });
    expect(m.mode()).toBe('Critical');
    m.clock.increment(H);
    expect(m.mode()).toBe('Normal');
  });

  it('an ack outside Emergency is refused and changes nothing', () => {
    const m = start();
    m.send({ type: ModeEvents.WS_DOWN });
    m.send({ type: ModeEvents.ACK, by: 'op', reconciliationClean: true });
    expect(m.mode()).toBe('Degraded');
    expect(m.refusals.map((r) => r.reason)).toEqual(['not in Emergency (mode is Degraded)']);
  });

  it('a drawdown past the emergency tier counts as Critical after the ack, until it falls below the tier and breaches again', () => {
    const m = start();
    m.send({ type: ModeEvents.DRAWDOWN, pct: 16 });
    m.send({ type: ModeEvents.ACK, by: 'op', reconciliationClean: true });
    expect(m.mode()).toBe('Critical');
    m.send({ type: ModeEvents.DRAWDOWN, pct: 17 });
    expect(m.mode()).toBe('Critical');
    m.send({ type: ModeEvents.DRAWDOWN, pct: 14 });
    m.send({ type: ModeEvents.DRAWDOWN, pct: 15 });
    expect(m.mode()).toBe('Emergency');
  });
});

describe('mode machine: restart', () => {
  for (const restored of ['Degraded', 'Critical'] as const) {
    it(`restored ${restored}: boots in it silently, steps up after the hysteresis period if nothing is wrong`, () => {
      const m = start({ restored });
      expect(m.mode()).toBe(restored);
      expect(m.changes).toEqual([]);
      m.clock.increment(H - 1);
      expect(m.mode()).toBe(restored);
      m.clock.increment(1);
      expect(m.mode()).toBe('Normal');
      expect(m.changes).toHaveLength(1);
      expect(m.changes[0]).toMatchObject({ from: restored, to: 'Normal', at: T0 + H });
    });
  }

  it('restored Critical with its condition still present stays Critical', () => {
    const m = start({ restored: 'Critical' });
    m.send({ type: ModeEvents.BREAKER_OPEN, endpoint: 'exchange' });
    m.clock.increment(5 * H);
    expect(m.mode()).toBe('Critical');
    expect(m.changes).toEqual([]);
  });

  it('restored Emergency stays until an ack after a clean reconciliation', () => {
    const m = start({ restored: 'Emergency' });
    expect(m.mode()).toBe('Emergency');
    m.clock.increment(5 * H);
    m.send({ type: ModeEvents.ACK, by: 'op', reconciliationClean: false });
    expect(m.mode()).toBe('Emergency');
    m.send({ type: ModeEvents.ACK, by: 'op', reconciliationClean: true });
    expect(m.mode()).toBe('Normal');
    expect(m.path()).toEqual(['Emergency→Normal']);
  });
});

describe('effectsOf', () => {
  it('follows architecture.md’s table', () => {
    expect(effectsOf('Normal')).toEqual({ sizeMultiplier: 1, allowNewEntries: true, allowNewMarkets: true, reduceOnly: false, cancelEntries: false, alertSeverity: 'info' });
    expect(effectsOf('Degraded')).toEqual({ sizeMultiplier: 0.5, allowNewEntries: true, allowNewMarkets: false, reduceOnly: false, cancelEntries: false, alertSeverity: 'warning' });
    expect(effectsOf('Critical')).toEqual({ sizeMultiplier: 0, allowNewEntries: false, allowNewMarkets: false, reduceOnly: true, cancelEntries: false, alertSeverity: 'critical' });
    expect(effectsOf('Emergency')).toEqual({ sizeMultiplier: 0, allowNewEntries: false, allowNewMarkets: false, reduceOnly: true, cancelEntries: true, alertSeverity: 'critical' });
    expect(effectsOf('Degraded', { degradedSizeMultiplier: 0.25 }).sizeMultiplier).toBe(0.25);
  });
});

describe('parseModeConfig', () => {
  it('defaults: 5 / 10 / 15 %, 30 s hysteresis, the exchange endpoint carries orders', () => {
    expect(DEFAULT_MODE_CONFIG).toEqual({ drawdownPct: { degraded: 5, critical: 10, emergency: 15 }, eventLoopDelayMs: 250, hysteresisMs: 30_000, orderEndpoints: ['exchange'] });
  });

  it('bad input is a clear error value naming the key', () => {
    expect(parseModeConfig({ drawdownPct: { degraded: 12 } })).toEqual({ ok: false, error: 'mode.drawdownPct: drawdown tiers must increase: degraded < critical < emergency' });
    const typo = parseModeConfig({ hysteresisMS: 1 });
    expect(typo.ok).toBe(false);
    expect(!typo.ok && typo.error).toContain('hysteresisMS');
    const neg = parseModeConfig({ hysteresisMs: -1 });
    expect(!neg.ok && neg.error).toContain('mode.hysteresisMs');
    expect(parseModeConfig({ orderEndpoints: ['exchange', 'fax'] }).ok).toBe(false);
  });
});
