/**
 * The trading gate: `active` (entries allowed) / `reducing` (exits and protection only) /
 * `halted` (no entries; the supervisor cancels working entries). Pure: no I/O; the only timer is
 * the UTC-midnight day roll, on XState's clock. Every change of (gate, sub-state) emits
 * `risk.gateChanged` carrying a `PersistedRiskGate`, which the supervisor persists, logs and alerts,
 * and passes back as `input.restore` on boot so the gate survives a restart.
 *
 * Invariants:
 * - leaving `halted` always takes an operator command (RESUME or RESET); nothing automatic does;
 * - after a daily-loss breach, entries wait for BOTH the UTC day roll and an operator RESUME/RESET
 *   (in either order); RESET cannot skip the day roll;
 * - `reducing` holds two independent reasons, the operator's pause and the mode's (Critical)
 *   reduce; it returns to `active` only when both are cleared.
 *
 * Events each state accepts (anything else is ignored, as XState does). "→ active" below reads
 * "→ reducing instead while the mode's reduce hold is on":
 * | state                         | accepts |
 * |-------------------------------|---------|
 * | active                        | PAUSE, REDUCE → reducing · HALT, ORDER_RATE_EXCEEDED → halted.manual · DAILY_LOSS_BREACHED → halted.dailyLoss |
 * | reducing                      | PAUSE, REDUCE (add a hold) · RESUME/RESET, REDUCE_CLEARED (drop the operator's / the mode's hold; → active when none is left) · HALT, ORDER_RATE_EXCEEDED, DAILY_LOSS_BREACHED as in active |
 * | halted.* (all)                | PAUSE, REDUCE, REDUCE_CLEARED only update the holds |
 * | halted.manual                 | RESET → active, or → halted.dailyLossResumeQueued while a daily-loss latch holds · DAILY_LOSS_BREACHED (latches) · DAY_ROLLED (clears the latch) |
 * | halted.dailyLoss              | DAY_ROLLED or the UTC-midnight timer → halted.awaitingResume · RESUME, RESET → halted.dailyLossResumeQueued · HALT, ORDER_RATE_EXCEEDED → halted.manual |
 * | halted.dailyLossResumeQueued  | DAY_ROLLED or the UTC-midnight timer → active · HALT, ORDER_RATE_EXCEEDED → halted.manual |
 * | halted.awaitingResume         | RESUME, RESET → active · DAILY_LOSS_BREACHED → halted.dailyLoss · HALT, ORDER_RATE_EXCEEDED → halted.manual |
 *
 * RESUME and RESET both release the operator's pause; the mode's reduce hold only goes with
 * REDUCE_CLEARED (the mode is the authority on it). RESET differs from RESUME in leaving
 * halted.manual (kill switch, runaway guard), which RESUME cannot.
 */
import { assign, enqueueActions, setup } from 'xstate';
import type { SnapshotFrom } from 'xstate';
import { nextUtcMidnight } from '../src/domain/risk.ts';
import type { TradingGate } from '../src/domain/types.ts';

export const RiskEvents = {
  /** Operator: no new entries (exits and protection continue). */
  PAUSE: 'risk.pause',
  /** Operator: undo PAUSE; after a daily-loss halt, the operator's half of the way out. */
  RESUME: 'risk.resume',
  /** Mode (Critical): reduce-only until REDUCE_CLEARED. */
  REDUCE: 'risk.reduce',
  REDUCE_CLEARED: 'risk.reduceCleared',
  /** Kill switch, Emergency mode, broken invariant: halt until an operator RESET. */
  HALT: 'risk.halt',
  /** Operator override out of any halt (not past an un-rolled daily-loss breach). */
  RESET: 'risk.reset',
  DAILY_LOSS_BREACHED: 'risk.dailyLossBreached',
  /** The UTC day rolled (the machine also schedules it itself while it waits for it). */
  DAY_ROLLED: 'risk.dayRolled',
  /** The runaway guard (`checkOrderRate`) tripped. */
  ORDER_RATE_EXCEEDED: 'risk.orderRateExceeded',
} as const;

/** Emitted (XState `emit`) on every change of gate or halted sub-state; listen with `actor.on`. */
export const RiskEmitted = { GATE_CHANGED: 'risk.gateChanged' } as const;

export const RISK_GATE_STATES = ['active', 'reducing', 'halted.manual', 'halted.dailyLoss', 'halted.dailyLossResumeQueued', 'halted.awaitingResume'] as const;
export type RiskGateState = (typeof RISK_GATE_STATES)[number];

/** What the supervisor persists and hands back on boot. */
export interface PersistedRiskGate {
  readonly state: RiskGateState;
  readonly reason: string;
  readonly since: number;
  readonly operatorPause: boolean;
  readonly modeReduce: boolean;
  readonly dailyLossLatched: boolean;
  /** When the latched daily loss clears (next UTC midnight after the breach). */
  readonly dayRollAt: number | undefined;
}

export type RiskGateEvent =
  | { type: typeof RiskEvents.PAUSE; at: number; by?: string; reason?: string }
  | { type: typeof RiskEvents.RESUME; at: number; by?: string }
  | { type: typeof RiskEvents.REDUCE; at: number; reason: string }
  | { type: typeof RiskEvents.REDUCE_CLEARED; at: number; reason?: string }
  | { type: typeof RiskEvents.HALT; at: number; reason: string; by?: string }
  | { type: typeof RiskEvents.RESET; at: number; by?: string }
  | { type: typeof RiskEvents.DAILY_LOSS_BREACHED; at: number; detail?: string }
  | { type: typeof RiskEvents.DAY_ROLLED; at: number }
  | { type: typeof RiskEvents.ORDER_RATE_EXCEEDED; at: number; count: number; limit: number };

export interface RiskGateChanged {
  type: typeof RiskEmitted.GATE_CHANGED;
  from: TradingGate;
  to: TradingGate;
  fromState: RiskGateState;
  toState: RiskGateState;
  reason: string;
  at: number;
  persisted: PersistedRiskGate;
}

export interface RiskGateInput {
  /** Clock time at boot (ms): the base for the day-roll timer of a restored daily-loss halt. */
  readonly now: number;
  readonly restore?: PersistedRiskGate;
}

export interface RiskGateContext extends PersistedRiskGate {
  /** Latest time seen (event `at`, boot `now`): delays are computed from it, never from Date.now(). */
  readonly lastSeenAt: number;
}

export function gateOfState(state: RiskGateState): TradingGate {
  return state === 'active' ? 'active' : state === 'reducing' ? 'reducing' : 'halted';
}

/** Any event the machine can see, its own delayed ones included. */
type SeenEvent = RiskGateEvent | { type: string; at?: number };

function reasonOf(event: SeenEvent): string {
  const e = event as Partial<Record<'reason' | 'by' | 'detail' | 'count' | 'limit', unknown>> & { type: string };
  const by = typeof e.by === 'string' ? ` by ${e.by}` : '';
  switch (event.type) {
    case RiskEvents.PAUSE:
      return typeof e.reason === 'string' ? `paused${by}: ${e.reason}` : `paused${by}`;
    case RiskEvents.RESUME:
      return `resumed${by}`;
    case RiskEvents.REDUCE:
      return `reduce-only: ${String(e.reason)}`;
    case RiskEvents.REDUCE_CLEARED:
      return typeof e.reason === 'string' ? `reduce-only cleared: ${e.reason}` : 'reduce-only cleared';
    case RiskEvents.HALT:
      return `halted${by}: ${String(e.reason)}`;
    case RiskEvents.RESET:
      return `reset${by}`;
    case RiskEvents.DAILY_LOSS_BREACHED:
      return typeof e.detail === 'string' ? `daily loss limit: ${e.detail}` : 'daily loss limit breached';
    case RiskEvents.DAY_ROLLED:
      return 'day rolled (UTC)';
    case RiskEvents.ORDER_RATE_EXCEEDED:
      return `order rate: ${String(e.count)} orders in 60 s, limit ${String(e.limit)}`;
    default:
      return event.type.startsWith('xstate.after') ? 'day rolled (UTC midnight)' : event.type;
  }
}

function timeOf(event: SeenEvent, context: RiskGateContext): number {
  if (typeof event.at === 'number') return event.at;
  // The day-roll timer: it fires at dayRollAt on the machine's clock.
  if (event.type.startsWith('xstate.after') && context.dayRollAt !== undefined) return Math.max(context.lastSeenAt, context.dayRollAt);
  return context.lastSeenAt;
}

function persisted(c: RiskGateContext): PersistedRiskGate {
  return { state: c.state, reason: c.reason, since: c.since, operatorPause: c.operatorPause, modeReduce: c.modeReduce, dailyLossLatched: c.dailyLossLatched, dayRollAt: c.dayRollAt };
}

function initialContext(input: RiskGateInput): RiskGateContext {
  const r = input.restore;
  if (r === undefined) {
    return { state: 'active', reason: 'boot', since: input.now, operatorPause: false, modeReduce: false, dailyLossLatched: false, dayRollAt: undefined, lastSeenAt: input.now };
  }
  return { ...r, lastSeenAt: Math.max(input.now, r.since) };
}

function gateChanged(context: RiskGateContext, event: SeenEvent, state: RiskGateState): RiskGateChanged {
  const at = timeOf(event, context);
  const reason = reasonOf(event);
  const next: RiskGateContext = { ...context, state, reason, since: at };
  return { type: RiskEmitted.GATE_CHANGED, from: gateOfState(context.state), to: gateOfState(state), fromState: context.state, toState: state, reason, at, persisted: persisted(next) };
}

type Params = { state: RiskGateState };

export const riskGateMachine = setup({
  types: {
    context: {} as RiskGateContext,
    events: {} as RiskGateEvent,
    input: {} as RiskGateInput,
    emitted: {} as RiskGateChanged,
  },
  delays: {
    untilDayRoll: ({ context }) => Math.max(0, (context.dayRollAt ?? context.lastSeenAt) - context.lastSeenAt),
  },
  guards: {
    restoredAs: ({ context }, params: Params) => context.state === params.state,
    onlyOperatorHold: ({ context }) => !context.modeReduce,
    onlyModeHold: ({ context }) => !context.operatorPause,
    /** The mode still asks for reduce-only: an operator's resume or reset lands in `reducing`. */
    modeHolds: ({ context }) => context.modeReduce,
    dailyLossLatched: ({ context }) => context.dailyLossLatched,
  },
  actions: {
    observe: assign({ lastSeenAt: ({ context, event }) => Math.max(context.lastSeenAt, timeOf(event, context)) }),
    holdOperator: assign({ operatorPause: true }),
    releaseOperator: assign({ operatorPause: false }),
    holdMode: assign({ modeReduce: true }),
    releaseMode: assign({ modeReduce: false }),
    latchDailyLoss: assign({
      dailyLossLatched: true,
      dayRollAt: ({ context, event }) => nextUtcMidnight(timeOf(event, context)),
    }),
    clearDailyLoss: assign({ dailyLossLatched: false, dayRollAt: undefined }),
    // A restored boot enters its state without changing it: nothing to announce.
    announce: enqueueActions(({ context, event, enqueue }, params: Params) => {
      if (context.state !== params.state) enqueue.emit(gateChanged(context, event, params.state));
    }),
    settle: assign(({ context, event }, params: Params) => {
      const at = timeOf(event, context);
      return { state: params.state, reason: reasonOf(event), since: at, lastSeenAt: Math.max(context.lastSeenAt, at) };
    }),
  },
}).createMachine({
  id: 'risk',
  context: ({ input }) => initialContext(input),
  initial: 'boot',
  states: {
    boot: {
      always: [
        { guard: { type: 'restoredAs', params: { state: 'reducing' } }, target: 'reducing' },
        { guard: { type: 'restoredAs', params: { state: 'halted.manual' } }, target: 'halted.manual' },
        { guard: { type: 'restoredAs', params: { state: 'halted.dailyLoss' } }, target: 'halted.dailyLoss' },
        { guard: { type: 'restoredAs', params: { state: 'halted.dailyLossResumeQueued' } }, target: 'halted.dailyLossResumeQueued' },
        { guard: { type: 'restoredAs', params: { state: 'halted.awaitingResume' } }, target: 'halted.awaitingResume' },
        { target: 'active' },
      ],
    },
    active: {
      entry: [
        { type: 'announce', params: { state: 'active' } },
        { type: 'settle', params: { state: 'active' } },
      ],
      on: {
        [RiskEvents.PAUSE]: { target: 'reducing', actions: ['observe', 'holdOperator'] },
        [RiskEvents.REDUCE]: { target: 'reducing', actions: ['observe', 'holdMode'] },
        [RiskEvents.HALT]: { target: 'halted.manual', actions: 'observe' },
        [RiskEvents.ORDER_RATE_EXCEEDED]: { target: 'halted.manual', actions: 'observe' },
        [RiskEvents.DAILY_LOSS_BREACHED]: { target: 'halted.dailyLoss', actions: ['observe', 'latchDailyLoss'] },
      },
    },
    reducing: {
      entry: [
        { type: 'announce', params: { state: 'reducing' } },
        { type: 'settle', params: { state: 'reducing' } },
      ],
      on: {
        [RiskEvents.PAUSE]: { actions: ['observe', 'holdOperator'] },
        [RiskEvents.REDUCE]: { actions: ['observe', 'holdMode'] },
        [RiskEvents.RESUME]: [
          { guard: 'onlyOperatorHold', target: 'active', actions: ['observe', 'releaseOperator'] },
          { actions: ['observe', 'releaseOperator'] },
        ],
        [RiskEvents.REDUCE_CLEARED]: [
          { guard: 'onlyModeHold', target: 'active', actions: ['observe', 'releaseMode'] },
          { actions: ['observe', 'releaseMode'] },
        ],
        [RiskEvents.RESET]: [
          { guard: 'onlyOperatorHold', target: 'active', actions: ['observe', 'releaseOperator'] },
          { actions: ['observe', 'releaseOperator'] },
        ],
        [RiskEvents.HALT]: { target: 'halted.manual', actions: 'observe' },
        [RiskEvents.ORDER_RATE_EXCEEDED]: { target: 'halted.manual', actions: 'observe' },
        [RiskEvents.DAILY_LOSS_BREACHED]: { target: 'halted.dailyLoss', actions: ['observe', 'latchDailyLoss'] },
      },
    },
    halted: {
      initial: 'manual',
      // Holds are remembered while halted so leaving the halt lands where the mode says.
      on: {
        [RiskEvents.PAUSE]: { actions: ['observe', 'holdOperator'] },
        [RiskEvents.REDUCE]: { actions: ['observe', 'holdMode'] },
        [RiskEvents.REDUCE_CLEARED]: { actions: ['observe', 'releaseMode'] },
      },
      states: {
        manual: {
          entry: [
            { type: 'announce', params: { state: 'halted.manual' } },
            { type: 'settle', params: { state: 'halted.manual' } },
          ],
          on: {
            [RiskEvents.RESET]: [
              { guard: 'dailyLossLatched', target: 'dailyLossResumeQueued', actions: ['observe', 'releaseOperator'] },
              { guard: 'modeHolds', target: '#risk.reducing', actions: ['observe', 'releaseOperator'] },
              { target: '#risk.active', actions: ['observe', 'releaseOperator'] },
            ],
            [RiskEvents.DAILY_LOSS_BREACHED]: { actions: ['observe', 'latchDailyLoss'] },
            [RiskEvents.DAY_ROLLED]: { actions: ['observe', 'clearDailyLoss'] },
          },
        },
        dailyLoss: {
          entry: [
            { type: 'announce', params: { state: 'halted.dailyLoss' } },
            { type: 'settle', params: { state: 'halted.dailyLoss' } },
          ],
          after: { untilDayRoll: { target: 'awaitingResume', actions: ['observe', 'clearDailyLoss'] } },
          on: {
            [RiskEvents.DAY_ROLLED]: { target: 'awaitingResume', actions: ['observe', 'clearDailyLoss'] },
            [RiskEvents.RESUME]: { target: 'dailyLossResumeQueued', actions: ['observe', 'releaseOperator'] },
            [RiskEvents.RESET]: { target: 'dailyLossResumeQueued', actions: ['observe', 'releaseOperator'] },
            [RiskEvents.HALT]: { target: 'manual', actions: 'observe' },
            [RiskEvents.ORDER_RATE_EXCEEDED]: { target: 'manual', actions: 'observe' },
          },
        },
        dailyLossResumeQueued: {
          entry: [
            { type: 'announce', params: { state: 'halted.dailyLossResumeQueued' } },
            { type: 'settle', params: { state: 'halted.dailyLossResumeQueued' } },
          ],
          after: {
            untilDayRoll: [
              { guard: 'modeHolds', target: '#risk.reducing', actions: ['observe', 'clearDailyLoss'] },
              { target: '#risk.active', actions: ['observe', 'clearDailyLoss'] },
            ],
          },
          on: {
            [RiskEvents.DAY_ROLLED]: [
              { guard: 'modeHolds', target: '#risk.reducing', actions: ['observe', 'clearDailyLoss'] },
              { target: '#risk.active', actions: ['observe', 'clearDailyLoss'] },
            ],
            [RiskEvents.HALT]: { target: 'manual', actions: 'observe' },
            [RiskEvents.ORDER_RATE_EXCEEDED]: { target: 'manual', actions: 'observe' },
          },
        },
        awaitingResume: {
          entry: [
            { type: 'announce', params: { state: 'halted.awaitingResume' } },
            { type: 'settle', params: { state: 'halted.awaitingResume' } },
          ],
          on: {
            [RiskEvents.RESUME]: [
              { guard: 'modeHolds', target: '#risk.reducing', actions: ['observe', 'releaseOperator'] },
              { target: '#risk.active', actions: ['observe', 'releaseOperator'] },
            ],
            [RiskEvents.RESET]: [
              { guard: 'modeHolds', target: '#risk.reducing', actions: ['observe', 'releaseOperator'] },
              { target: '#risk.active', actions: ['observe', 'releaseOperator'] },
            ],
            [RiskEvents.DAILY_LOSS_BREACHED]: { target: 'dailyLoss', actions: ['observe', 'latchDailyLoss'] },
            [RiskEvents.HALT]: { target: 'manual', actions: 'observe' },
            [RiskEvents.ORDER_RATE_EXCEEDED]: { target: 'manual', actions: 'observe' },
          },
        },
      },
    },
  },
});

export type RiskGateSnapshot = SnapshotFrom<typeof riskGateMachine>;

/** The gate a snapshot stands for (what `evaluateSignal` takes as `ctx.gate`). */
export function gateOf(snapshot: RiskGateSnapshot): TradingGate {
  return gateOfState(snapshot.context.state);
}
