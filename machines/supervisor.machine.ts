/**
 * The supervisor: keel's root machine. Boot is recovery — one path for a cold start and a crash
 * restart (the `boot` actor runs config → migrate → load state → reconcile); then it runs the
 * children, each in its own region with its `systemId`, restarts a failed child after a backoff
 * that doubles, and escalates when a child fails `maxRestarts` times within `restartWindowMs`.
 * On STOP it drains (no new orders, in-flight orders resolved, state flushed) and finishes.
 *
 * Pure: children, boot and drain are actors provided by supervisor/wiring.ts; time comes from
 * XState's clock (delays), so tests run it on a SimulatedClock.
 *
 * Accepted events: `supervisor.stop` in any non-final state; `supervisor.escalate` from running.
 */
import { assign, enqueueActions, fromPromise, setup, type ActorRefFrom } from 'xstate';

export const CHILDREN = ['marketFeed', 'strategy', 'risk', 'orderManager'] as const;
export type ChildId = (typeof CHILDREN)[number];

export const SupervisorEvents = {
  STOP: 'supervisor.stop',
  ESCALATE: 'supervisor.escalate',
} as const;

export type SupervisorEvent =
  | { type: typeof SupervisorEvents.STOP; reason: string }
  | { type: typeof SupervisorEvents.ESCALATE; reason: string }
  | { type: 'supervisor.forgetFailure'; id: ChildId };

export interface SupervisorConfig {
  readonly baseBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly maxRestarts: number;
  readonly restartWindowMs: number;
}

export const DEFAULT_SUPERVISOR_CONFIG: SupervisorConfig = { baseBackoffMs: 500, maxBackoffMs: 30_000, maxRestarts: 5, restartWindowMs: 60_000 };

interface ChildRecord {
  /** Failures inside the sliding window (each is forgotten `restartWindowMs` after it happened). */
  readonly failures: number;
  readonly lastError?: string;
  readonly restarts: number;
}

export interface SupervisorContext {
  readonly config: SupervisorConfig;
  readonly children: Readonly<Record<ChildId, ChildRecord>>;
  readonly bootError?: string;
  readonly escalation?: string;
  readonly stopReason?: string;
  readonly bootedAt?: number;
}

/**
 * Child actors are long-lived: their promise settles only when they fail (reject) or, wrongly,
 * exit (resolve); both count as a failure. Stopping the region aborts them (their `signal`).
 */
const child = fromPromise<void, { childId: ChildId }>(() => new Promise<void>(() => {}));

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function backoffFor(ctx: SupervisorContext, id: ChildId): number {
  const n = Math.max(0, ctx.children[id].failures - 1);
  return Math.min(ctx.config.maxBackoffMs, ctx.config.baseBackoffMs * 2 ** n);
}

function childRegion<const Id extends ChildId>(id: Id) {
  return {
    initial: 'up',
    states: {
      up: {
        invoke: {
          src: id,
          id,
          systemId: id,
          input: { childId: id },
          onError: [
            { guard: { type: 'tooManyFailures', params: { id } }, target: '#supervisor.escalated', actions: { type: 'recordFailure', params: { id } } },
            { target: 'backoff', actions: { type: 'recordFailure', params: { id } } },
          ],
          onDone: [
            { guard: { type: 'tooManyFailures', params: { id } }, target: '#supervisor.escalated', actions: { type: 'recordFailure', params: { id } } },
            { target: 'backoff', actions: { type: 'recordFailure', params: { id } } },
          ],
        },
      },
      backoff: {
        after: { [`backoff_${id}`]: { target: 'up', actions: { type: 'countRestart', params: { id } } } },
      },
    },
  } as const;
}

export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    input: {} as { config?: Partial<SupervisorConfig> },
    events: {} as SupervisorEvent,
  },
  actors: {
    boot: fromPromise<{ bootedAt: number }, void>(async () => ({ bootedAt: 0 })),
    drain: fromPromise<void, { reason: string }>(async () => {}),
    marketFeed: child,
    strategy: child,
    risk: child,
    orderManager: child,
  },
  guards: {
    tooManyFailures: ({ context }, params: { id: ChildId }) => context.children[params.id].failures + 1 >= context.config.maxRestarts,
  },
  actions: {
    recordFailure: enqueueActions(({ context, event, enqueue }, params: { id: ChildId }) => {
      const rec = context.children[params.id];
      const err = 'error' in (event as object) ? (event as unknown as { error?: unknown }).error : new Error(`${params.id} exited`);
      enqueue.assign({ children: { ...context.children, [params.id]: { ...rec, failures: rec.failures + 1, lastError: errorText(err) } } });
      // The window slides on XState's clock: the failure is forgotten when it expires.
      enqueue.raise({ type: 'supervisor.forgetFailure', id: params.id }, { delay: context.config.restartWindowMs });
    }),
    forgetFailure: assign(({ context, event }) => {
      if (event.type !== 'supervisor.forgetFailure') return {};
      const rec = context.children[event.id];
      return { children: { ...context.children, [event.id]: { ...rec, failures: Math.max(0, rec.failures - 1) } } };
    }),
    countRestart: assign(({ context }, params: { id: ChildId }) => ({
      children: { ...context.children, [params.id]: { ...context.children[params.id], restarts: context.children[params.id].restarts + 1 } },
    })),
    setBooted: assign(({ event }) => ({ bootedAt: (event as unknown as { output: { bootedAt: number } }).output.bootedAt })),
    setBootError: assign(({ event }) => ({ bootError: errorText((event as unknown as { error: unknown }).error) })),
    setEscalation: assign(({ event }) => ({ escalation: event.type === SupervisorEvents.ESCALATE ? event.reason : 'child failed too often' })),
    setStopReason: assign(({ event }) => ({ stopReason: event.type === SupervisorEvents.STOP ? event.reason : 'stop' })),
  },
  delays: {
    backoff_marketFeed: ({ context }) => backoffFor(context, 'marketFeed'),
    backoff_strategy: ({ context }) => backoffFor(context, 'strategy'),
    backoff_risk: ({ context }) => backoffFor(context, 'risk'),
    backoff_orderManager: ({ context }) => backoffFor(context, 'orderManager'),
  },
}).createMachine({
  id: 'supervisor',
  context: ({ input }) => ({
    config: { ...DEFAULT_SUPERVISOR_CONFIG, ...input.config },
    children: Object.fromEntries(CHILDREN.map((c) => [c, { failures: 0, restarts: 0 }])) as unknown as Record<ChildId, ChildRecord>,
  }),
  initial: 'booting',
  on: {
    'supervisor.forgetFailure': { actions: 'forgetFailure' },
  },
  states: {
    booting: {
      on: { [SupervisorEvents.STOP]: { target: 'stopping', actions: 'setStopReason' } },
      invoke: {
        src: 'boot',
        onDone: { target: 'running', actions: 'setBooted' },
        onError: { target: 'failed', actions: 'setBootError' },
      },
    },
    running: {
      type: 'parallel',
      on: {
        [SupervisorEvents.ESCALATE]: { target: 'escalated', actions: 'setEscalation' },
        [SupervisorEvents.STOP]: { target: 'stopping', actions: 'setStopReason' },
      },
      states: {
        marketFeed: childRegion('marketFeed'),
        strategy: childRegion('strategy'),
        risk: childRegion('risk'),
        orderManager: childRegion('orderManager'),
      },
    },
    escalated: {
      on: { [SupervisorEvents.STOP]: { target: 'stopping', actions: 'setStopReason' } },
      // Children are stopped by leaving `running`; the wiring halts trading and alerts, and an
      // operator (or the process manager) decides what comes next. STOP still drains.
    },
    stopping: {
      invoke: {
        src: 'drain',
        input: ({ context }) => ({ reason: context.stopReason ?? 'stop' }),
        onDone: 'stopped',
        onError: 'stopped',
      },
    },
    stopped: { type: 'final' },
    failed: { type: 'final' },
  },
});

export type SupervisorActor = ActorRefFrom<typeof supervisorMachine>;
