/**
 * Model-based tests of machines/mode.machine.ts.
 *
 * 1. `xstate/graph`: shortest paths from a fresh boot reach every state of the machine.
 * 2. A fast-check model run (seeded): random health facts, acks and clock advances on a
 *    SimulatedClock against an independent oracle written as the invariant in the machine's header
 *    ("outside Emergency, the mode at t is the worst level L such that a measured condition of
 *    level ≥ L was active at some time in (t − H, t]; Emergency holds while a latch does, and only
 *    a clean ack clears latches"). After every step: the mode equals the oracle's, the emitted
 *    `mode.changed` events form an unbroken chain with one event per change, every refused ack is
 *    reported once. Across all runs: every transition of the machine (eventless ones included) is
 *    taken at least once, read from the `@xstate.microstep` inspection events.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock, type AnyTransitionDefinition } from 'xstate';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { modeMachine, ModeEmitted, ModeEvents, modeOf, parseModeConfig, type ModeChanged, type ModeConfig, type ModeEvent } from '../../machines/mode.machine.ts';
import { MODES, type Mode } from '../../src/domain/types.ts';

const T0 = 1_700_000_000_000;
const STEP = 1_000;
const parsed = parseModeConfig({ hysteresisMs: 10_000 });
if (!parsed.ok) throw new Error(parsed.error);
const CONFIG: ModeConfig = parsed.config;
const H = CONFIG.hysteresisMs;

// ---------------------------------------------------------------------------------------------
// The oracle
// ---------------------------------------------------------------------------------------------

const SEV: Record<Mode, number> = { Normal: 0, Degraded: 1, Critical: 2, Emergency: 3 };
type Level = 1 | 2;

class Oracle {
  /** Measured conditions: key → severity (1 Degraded, 2 Critical). */
  readonly #measured = new Map<string, number>();
  readonly #latches = new Set<string>();
  /** Per level: the last time a measured condition at or above it was active (undefined: never). */
  readonly #lastActive: Record<Level, number | undefined> = { 1: undefined, 2: undefined };
  #drawdownAcked = false;
  #drawdownPct = 0;

  constructor(restored: Mode | undefined, now: number) {
    if (restored === 'Emergency') this.#latches.add('restored');
    if (restored === 'Degraded' || restored === 'Critical' || restored === 'Emergency') this.#lastActive[1] = now;
    if (restored === 'Critical' || restored === 'Emergency') this.#lastActive[2] = now;
  }

  #levelActive(l: Level): boolean {
    return [...this.#measured.values()].some((s) => s >= l);
  }

  #set(key: string, sev: number | undefined, t: number): void {
    for (const l of [1, 2] as const) if (this.#levelActive(l)) this.#lastActive[l] = t;
    if (sev === undefined) this.#measured.delete(key);
    else this.#measured.set(key, sev);
  }

  apply(e: ModeEvent): void {
    const t = e.at;
    switch (e.type) {
      case ModeEvents.WS_DOWN:
        return this.#set('ws', 1, t);
      case ModeEvents.WS_UP:
        return this.#set('ws', undefined, t);
      case ModeEvents.BREAKER_OPEN:
        return this.#set(`b.${e.endpoint}`, e.endpoint === 'exchange' ? 2 : 1, t);
      case ModeEvents.BREAKER_CLOSED:
        return this.#set(`b.${e.endpoint}`, undefined, t);
      case ModeEvents.FEED_STALE:
        return this.#set('feed', e.stale ? 2 : undefined, t);
      case ModeEvents.DB_WRITE_ERROR:
        return this.#set('db', 2, t);
      case ModeEvents.DB_OK:
        return this.#set('db', undefined, t);
      case ModeEvents.EVENT_LOOP_DELAY:
        return this.#set('loop', e.ms >= CONFIG.eventLoopDelayMs ? 1 : undefined, t);
      case ModeEvents.RECONCILIATION:
        return this.#set('rec', e.clean ? undefined : 2, t);
      case ModeEvents.DRAWDOWN: {
        const d = CONFIG.drawdownPct;
        this.#drawdownPct = e.pct;
        this.#set('dd', e.pct >= d.critical ? 2 : e.pct >= d.degraded ? 1 : undefined, t);
        if (e.pct < d.emergency) this.#drawdownAcked = false;
        else if (!this.#drawdownAcked) this.#latches.add('dd');
        return;
      }
      case ModeEvents.DAILY_LOSS_BREACHED:
      case ModeEvents.INVARIANT_BROKEN:
      case ModeEvents.RUNAWAY_ORDER_RATE:
      case ModeEvents.POSITION_MISMATCH_UNRESOLVED:
      case ModeEvents.KILL:
        this.#latches.add(e.type);
        return;
      case ModeEvents.ACK:
        if (!e.reconciliationClean || this.#latches.size === 0) return;
        this.#latches.clear();
        this.#drawdownAcked = this.#drawdownPct >= CONFIG.drawdownPct.emergency;
        this.#set('rec', undefined, t);
        return;
    }
  }

  inEmergency(): boolean {
    return this.#latches.size > 0;
  }

  mode(t: number): Mode {
    if (this.#latches.size > 0) return 'Emergency';
    const recent = (l: Level) => this.#levelActive(l) || (this.#lastActive[l] !== undefined && this.#lastActive[l]! > t - H);
    return recent(2) ? 'Critical' : recent(1) ? 'Degraded' : 'Normal';
  }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

type Fact = ModeEvent extends infer E ? (E extends { at: number } ? Omit<E, 'at'> : never) : never;
type Cmd = { readonly k: 'fact'; readonly fact: Fact } | { readonly k: 'advance'; readonly steps: number };

const factArb: fc.Arbitrary<Fact> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Fact>({ type: ModeEvents.WS_DOWN }, { type: ModeEvents.WS_UP }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constantFrom(ModeEvents.BREAKER_OPEN, ModeEvents.BREAKER_CLOSED), endpoint: fc.constantFrom('info' as const, 'exchange' as const, 'ws' as const) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant(ModeEvents.FEED_STALE), stale: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constantFrom<Fact>({ type: ModeEvents.DB_WRITE_ERROR }, { type: ModeEvents.DB_OK }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant(ModeEvents.EVENT_LOOP_DELAY), ms: fc.constantFrom(5, 100, 250, 2_000) }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant(ModeEvents.DRAWDOWN), pct: fc.constantFrom(0, 4, 5, 7, 10, 12, 15, 20) }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant(ModeEvents.RECONCILIATION), clean: fc.boolean() }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<Fact>(
      { type: ModeEvents.DAILY_LOSS_BREACHED },
      { type: ModeEvents.INVARIANT_BROKEN, detail: 'x' },
      { type: ModeEvents.RUNAWAY_ORDER_RATE },
      { type: ModeEvents.POSITION_MISMATCH_UNRESOLVED },
      { type: ModeEvents.KILL, by: 'op' },
    ),
  },
  { weight: 3, arbitrary: fc.record({ type: fc.constant(ModeEvents.ACK), by: fc.constant('op'), reconciliationClean: fc.boolean() }) },
);

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 3, arbitrary: fact() },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('advance' as const), steps: fc.integer({ min: 0, max: 25 }) }) },
);
function fact(): fc.Arbitrary<Cmd> {
  return factArb.map((f) => ({ k: 'fact' as const, fact: f }));
}

/** Every transition the machine defines, eventless and delayed ones included. */
function allTransitions(): Set<AnyTransitionDefinition> {
  const out = new Set<AnyTransitionDefinition>();
  for (const node of [modeMachine.root, ...getStateNodes(modeMachine.root)]) {
    for (const ts of node.transitions.values()) for (const t of ts) out.add(t);
    for (const t of node.always ?? []) out.add(t);
  }
  return out;
}

function label(t: AnyTransitionDefinition): string {
  const guard = typeof t.guard === 'object' && t.guard !== null && 'type' in t.guard ? JSON.stringify(t.guard) : String(t.guard ?? '');
  return `${t.source.id} --${t.eventType || 'always'}${guard ? ` [${guard}]` : ''}--> ${t.target?.map((x) => x.id).join(',') ?? '(self)'}`;
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

describe('mode machine: model-based', () => {
  it('xstate/graph: shortest paths from boot reach every state', () => {
    const at = 0;
    const events: ModeEvent[] = [
      { type: ModeEvents.WS_DOWN, at },
      { type: ModeEvents.WS_UP, at },
      { type: ModeEvents.BREAKER_OPEN, endpoint: 'exchange', at },
      { type: ModeEvents.BREAKER_CLOSED, endpoint: 'exchange', at },
      { type: ModeEvents.KILL, by: 'op', at },
      { type: ModeEvents.ACK, by: 'op', reconciliationClean: true, at },
    ];
    // The hysteresis timers, fired as XState's scheduler would.
    const timers = [{ type: 'xstate.after.recoverFromDegraded.mode.Degraded.recovering' }, { type: 'xstate.after.recoverFromCritical.mode.Critical.recovering' }] as unknown as ModeEvent[];
    const paths = getShortestPaths(modeMachine, {
      events: [...events, ...timers],
      input: { now: 0, config: CONFIG },
      serializeState: (s) => JSON.stringify([s.value, Object.keys(s.context.conditions).sort()]),
    });
    const reached = new Set(paths.map((p) => JSON.stringify(p.state.value)));
    const leaves = getStateNodes(modeMachine.root)
      .filter((n) => n.type === 'atomic' && n.key !== 'boot')
      .map((n) => JSON.stringify(n.path.length === 1 ? n.path[0] : { [n.path[0]!]: n.path[1] }));
    expect(leaves.length).toBe(6);
    for (const leaf of leaves) expect(reached, `state ${leaf} not reached`).toContain(leaf);
  });

  it('fast-check model run: the mode always equals the oracle’s, one mode.changed per change, every transition taken', () => {
    const taken = new Set<AnyTransitionDefinition>();
    fc.assert(
      fc.property(fc.option(fc.constantFrom(...MODES), { nil: undefined }), fc.array(cmdArb, { minLength: 1, maxLength: 40 }), (restored, cmds) => {
        const clock = new SimulatedClock();
        clock.set(T0);
        const actor = createActor(modeMachine, {
          clock,
          input: { now: T0, config: CONFIG, ...(restored ? { restored } : {}) },
          inspect: (ev) => {
            if (ev.type === '@xstate.microstep') for (const t of (ev as unknown as { _transitions: AnyTransitionDefinition[] })._transitions) taken.add(t);
          },
        });
        const changes: ModeChanged[] = [];
        let refused = 0;
        actor.on(ModeEmitted.CHANGED, (e) => changes.push(e));
        actor.on(ModeEmitted.ACK_REFUSED, () => (refused += 1));
        actor.start();
        const oracle = new Oracle(restored, T0);
        let last: Mode = restored ?? 'Normal';
        let seen = 0;
        const check = () => {
          const mode = modeOf(actor.getSnapshot());
          expect(mode).toBe(oracle.mode(clock.now()));
          // The new emits chain from the last mode to this one, each a real change, in time order.
          const fresh = changes.slice(seen);
          let from = last;
          for (const c of fresh) {
            expect(c.from).toBe(from);
            expect(c.to).not.toBe(c.from);
            expect(c.at).toBeLessThanOrEqual(clock.now());
            from = c.to;
          }
          expect(from).toBe(mode);
          seen = changes.length;
          last = mode;
        };
        check();
        for (const cmd of cmds) {
          if (cmd.k === 'advance') {
            for (let i = 0; i < cmd.steps; i++) {
              clock.increment(STEP);
              check();
            }
            continue;
          }
          const e = { ...cmd.fact, at: clock.now() } as ModeEvent;
          const refusedBefore = refused;
          const shouldRefuse = e.type === ModeEvents.ACK && (!oracle.inEmergency() || !e.reconciliationClean);
          oracle.apply(e);
          actor.send(e);
          check();
          expect(refused - refusedBefore).toBe(shouldRefuse ? 1 : 0);
        }
        actor.stop();
      }),
      { numRuns: 400, seed: 20240808 },
    );
    const missing = [...allTransitions()].filter((t) => !taken.has(t)).map(label);
    expect(missing).toEqual([]);
  });
});
