/**
 * The in-process watchdog: it turns liveness and resource samples into verdicts.
 *
 * Inputs (each stamped with `at` from the injected clock): a heartbeat from every supervised actor,
 * event-loop delay, the age of the market feed on each path (WebSocket and REST polling), the
 * latency and outcome of database writes, and the process's memory (RSS). Outputs (XState `emit`):
 *  - `watchdog.actorStalled` / `watchdog.restartActor` when an actor misses its heartbeats (the
 *    supervisor fails that child, and its restart policy takes over), `watchdog.actorRecovered`
 *    when a stalled actor beats again;
 *  - health FACTS in exactly the shape machines/mode.machine.ts accepts (`health.eventLoopDelay`,
 *    `health.feedStale`, `health.dbWriteError`, `health.dbOk`): the supervisor forwards them to the
 *    mode actor unchanged (`isModeFact` tells them apart);
 *  - `watchdog.deadManHealth` for the dead-man keeper (src/ops/watchdog-deadman.ts): unhealthy while
 *    a critical actor is stalled, so the keeper stops renewing and the venue cancels our orders
 *    unless the actor comes back within the horizon;
 *  - `watchdog.memory` when RSS crosses its threshold (an alert; no mode condition exists for it).
 *
 * Invariants:
 *  - An actor that has been silent for `missedHeartbeats × heartbeatIntervalMs` (default two
 *    intervals) is reported stalled at that moment exactly, by a per-actor timer on XState's clock
 *    that every heartbeat re-arms: detection never waits for a polling tick. After asking for a
 *    restart, the watchdog waits `restartGraceMs` of further silence before asking again.
 *  - Facts are edge-triggered: each is emitted only when its verdict changes (the first high
 *    event-loop sample, the first stale verdict, the first failed write, ...), so the mode machine
 *    and the black box see transitions, not a stream of samples. The boot state is "healthy", the
 *    state the mode machine assumes for a condition it has not been told about.
 *  - Non-finite or negative samples are ignored (they are a bug in the sampler, not a fact).
 *  - Pure: no I/O; the only timers are the heartbeat deadlines on XState's clock.
 */
import { enqueueActions, setup } from 'xstate';
import type { SnapshotFrom } from 'xstate';
import { z } from 'zod';
import { ModeEvents, type ModeEvent } from './mode.machine.ts';

// ---------------------------------------------------------------------------------------------
// Switchboard strings
// ---------------------------------------------------------------------------------------------

/** Events the watchdog accepts. Every one carries `at` (ms, injected clock). */
export const WatchdogEvents = {
  HEARTBEAT: 'watchdog.heartbeat',
  /** The supervisor stopped an actor on purpose (shutdown): stop watching it until it beats again. */
  UNWATCH: 'watchdog.unwatch',
  EVENT_LOOP_DELAY: 'watchdog.eventLoopDelay',
  FEED_AGE: 'watchdog.feedAge',
  DB_WRITE: 'watchdog.dbWrite',
  MEMORY: 'watchdog.memory',
} as const;

/** Emitted (XState `emit`); listen with `actor.on`. Mode facts use the mode machine's own strings. */
export const WatchdogEmitted = {
  ACTOR_STALLED: 'watchdog.actorStalled',
  RESTART_ACTOR: 'watchdog.restartActor',
  ACTOR_RECOVERED: 'watchdog.actorRecovered',
  DEAD_MAN_HEALTH: 'watchdog.deadManHealth',
  MEMORY: 'watchdog.memoryHigh',
  EVENT_LOOP_DELAY: ModeEvents.EVENT_LOOP_DELAY,
  FEED_STALE: ModeEvents.FEED_STALE,
  DB_WRITE_ERROR: ModeEvents.DB_WRITE_ERROR,
  DB_OK: ModeEvents.DB_OK,
} as const;

/** The internal deadline event (raised with a delay per actor). */
const DEADLINE = 'watchdog.deadline';

export const FEED_PATHS = ['ws', 'rest'] as const;
export type FeedPath = (typeof FEED_PATHS)[number];

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

export const WatchdogConfigSchema = z.strictObject({
  /** How often every watched actor beats. */
  heartbeatIntervalMs: z.number().int().positive().max(600_000).default(1_000),
  /** Intervals of silence after which an actor is stalled (the acceptance: two). */
  missedHeartbeats: z.number().int().min(1).max(100).default(2),
  /** Actors watched from boot (an actor that never beats is stalled too). Others join on their first beat. */
  actors: z.array(z.string().min(1)).default([]),
  /** Ask the supervisor to restart a stalled actor. */
  restartOnStall: z.boolean().default(true),
  /** Further silence after a restart request before the watchdog asks again. */
  restartGraceMs: z.number().int().positive().max(3_600_000).default(10_000),
  /** Actors whose stall makes the dead-man keeper stop renewing. */
  criticalActors: z.array(z.string().min(1)).default(['orderManager']),
  /** Event-loop delay at or above which the fact is "high". Pass the mode machine's `eventLoopDelayMs`. */
  eventLoopDelayMs: z.number().positive().max(60_000).default(250),
  /** No message on EITHER feed path for this long → feed stale (the mode machine's Critical condition). */
  feedStaleMs: z.number().int().positive().max(3_600_000).default(15_000),
  /** A database write slower than this counts as a write error. */
  dbWriteSlowMs: z.number().positive().max(600_000).default(2_000),
  /** Consecutive good writes after an error before `health.dbOk`. */
  dbOkAfter: z.number().int().min(1).max(1_000).default(3),
  /** RSS at or above which memory is high; it is low again below 90 % of it. */
  rssHighBytes: z.number().int().positive().default(1_536 * 1024 * 1024),
});

export type WatchdogConfig = z.infer<typeof WatchdogConfigSchema>;
export type WatchdogConfigInput = z.input<typeof WatchdogConfigSchema>;

export function parseWatchdogConfig(input: unknown): { ok: true; config: WatchdogConfig } | { ok: false; error: string } {
  const r = WatchdogConfigSchema.safeParse(input ?? {});
  if (r.success) return { ok: true, config: r.data };
  return { ok: false, error: r.error.issues.map((i) => `watchdog.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

export const DEFAULT_WATCHDOG_CONFIG: WatchdogConfig = Object.freeze(WatchdogConfigSchema.parse({}));

// ---------------------------------------------------------------------------------------------
// Events, context, emitted
// ---------------------------------------------------------------------------------------------

type At = { at: number };
export type WatchdogEvent =
  | ({ type: typeof WatchdogEvents.HEARTBEAT; actor: string } & At)
  | ({ type: typeof WatchdogEvents.UNWATCH; actor: string } & At)
  /** `ms`: the window's p99 (what the mode threshold compares); `maxMs` for the log. */
  | ({ type: typeof WatchdogEvents.EVENT_LOOP_DELAY; ms: number; maxMs?: number } & At)
  /** When each path last delivered a message (null: never since boot). One event for both paths, so the verdict never sees half a sample. */
  | ({ type: typeof WatchdogEvents.FEED_AGE; ws: number | null; rest: number | null } & At)
  | ({ type: typeof WatchdogEvents.DB_WRITE; ok: boolean; latencyMs: number; detail?: string } & At)
  | ({ type: typeof WatchdogEvents.MEMORY; rssBytes: number } & At);

type DeadlineEvent = { type: typeof DEADLINE; actor: string; dueAt: number };

export interface ActorWatch {
  readonly lastHeartbeatAt: number;
  readonly status: 'alive' | 'stalled';
  /** Stall verdicts since the last heartbeat (1 after the first; more while restarts do not help). */
  readonly stalls: number;
}

export interface WatchdogContext {
  readonly config: WatchdogConfig;
  readonly bootAt: number;
  readonly actors: Readonly<Record<string, ActorWatch>>;
  readonly eventLoopHigh: boolean;
  readonly feed: Readonly<Record<FeedPath, number | null>>;
  /** Whether any feed sample arrived (no verdict before). */
  readonly feedSampled: boolean;
  readonly feedStale: boolean;
  readonly dbError: boolean;
  readonly dbGoodStreak: number;
  readonly memoryHigh: boolean;
  readonly deadManHealthy: boolean;
}

export interface WatchdogInput {
  readonly config?: WatchdogConfig;
  /** Clock time at boot (ms). */
  readonly now: number;
}

export interface ActorStalled {
  type: typeof WatchdogEmitted.ACTOR_STALLED;
  actor: string;
  silentForMs: number;
  lastHeartbeatAt: number;
  /** 1 for the first verdict; more when a restart did not bring it back. */
  stalls: number;
  at: number;
}
export interface RestartActor {
  type: typeof WatchdogEmitted.RESTART_ACTOR;
  actor: string;
  at: number;
}
export interface ActorRecovered {
  type: typeof WatchdogEmitted.ACTOR_RECOVERED;
  actor: string;
  silentForMs: number;
  at: number;
}
export interface DeadManHealth {
  type: typeof WatchdogEmitted.DEAD_MAN_HEALTH;
  healthy: boolean;
  reason: string;
  at: number;
}
export interface MemoryHigh {
  type: typeof WatchdogEmitted.MEMORY;
  high: boolean;
  rssBytes: number;
  thresholdBytes: number;
  at: number;
}
type ModeFactOf<T extends ModeEvent['type']> = Extract<ModeEvent, { type: T }>;
/** The health facts the watchdog emits: members of the mode machine's own event union. */
export type WatchdogModeFact =
  | ModeFactOf<typeof ModeEvents.EVENT_LOOP_DELAY>
  | ModeFactOf<typeof ModeEvents.FEED_STALE>
  | ModeFactOf<typeof ModeEvents.DB_WRITE_ERROR>
  | ModeFactOf<typeof ModeEvents.DB_OK>;

export type WatchdogEmittedEvent = ActorStalled | RestartActor | ActorRecovered | DeadManHealth | MemoryHigh | WatchdogModeFact;

const MODE_FACT_TYPES: ReadonlySet<string> = new Set([ModeEvents.EVENT_LOOP_DELAY, ModeEvents.FEED_STALE, ModeEvents.DB_WRITE_ERROR, ModeEvents.DB_OK]);

/** Whether an emitted event is a mode fact, to forward to the mode actor unchanged. */
export function isModeFact(e: { type: string }): e is WatchdogModeFact {
  return MODE_FACT_TYPES.has(e.type);
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

const finite = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n);
const sample = (n: unknown): n is number => finite(n) && n >= 0;

/** Silence after which an actor is stalled. */
export function stallAfterMs(config: WatchdogConfig): number {
  return config.missedHeartbeats * config.heartbeatIntervalMs;
}

const deadlineId = (actor: string) => `watchdog.deadline.${actor}`;

function initialContext(input: WatchdogInput): WatchdogContext {
  const config = input.config ?? DEFAULT_WATCHDOG_CONFIG;
  const actors: Record<string, ActorWatch> = {};
  // Boot counts as a heartbeat: an actor gets the same two intervals to show up.
  for (const a of config.actors) actors[a] = { lastHeartbeatAt: input.now, status: 'alive', stalls: 0 };
  return {
    config,
    bootAt: input.now,
    actors,
    eventLoopHigh: false,
    feed: { ws: null, rest: null },
    feedSampled: false,
    feedStale: false,
    dbError: false,
    dbGoodStreak: 0,
    memoryHigh: false,
    deadManHealthy: true,
  };
}

/** Stale when neither path has delivered for `feedStaleMs` at time t (boot counts as the last message). */
export function feedStaleAt(ctx: Pick<WatchdogContext, 'feed' | 'bootAt' | 'config'>, t: number): boolean {
  return FEED_PATHS.every((p) => t - (ctx.feed[p] ?? ctx.bootAt) >= ctx.config.feedStaleMs);
}

function stalledCritical(ctx: Pick<WatchdogContext, 'actors' | 'config'>): string[] {
  return ctx.config.criticalActors.filter((a) => ctx.actors[a]?.status === 'stalled');
}

/** The dead-man verdict's change between two contexts, if any. */
function deadManChange(before: Pick<WatchdogContext, 'deadManHealthy'>, after: Pick<WatchdogContext, 'actors' | 'config'>, at: number): DeadManHealth | undefined {
  const stalled = stalledCritical(after);
  const healthy = stalled.length === 0;
  if (healthy === before.deadManHealthy) return undefined;
  return { type: WatchdogEmitted.DEAD_MAN_HEALTH, healthy, reason: healthy ? 'critical actors beating again' : `critical actor stalled: ${stalled.join(', ')}`, at };
}

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

export const watchdogMachine = setup({
  types: {
    context: {} as WatchdogContext,
    events: {} as WatchdogEvent | DeadlineEvent,
    input: {} as WatchdogInput,
    emitted: {} as WatchdogEmittedEvent,
  },
  actions: {
    /** Arms the boot deadline of every actor configured. */
    armAll: enqueueActions(({ context, enqueue }) => {
      const d = stallAfterMs(context.config);
      for (const actor of Object.keys(context.actors)) enqueue.raise({ type: DEADLINE, actor, dueAt: context.bootAt + d }, { delay: d, id: deadlineId(actor) });
    }),
    heartbeat: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== WatchdogEvents.HEARTBEAT || !finite(event.at)) return;
      const prev = context.actors[event.actor];
      const at = Math.max(event.at, prev?.lastHeartbeatAt ?? event.at);
      const next = { ...context, actors: { ...context.actors, [event.actor]: { lastHeartbeatAt: at, status: 'alive', stalls: 0 } as ActorWatch } };
      enqueue.assign({ actors: next.actors });
      if (prev?.status === 'stalled') enqueue.emit({ type: WatchdogEmitted.ACTOR_RECOVERED, actor: event.actor, silentForMs: at - prev.lastHeartbeatAt, at });
      const d = stallAfterMs(context.config);
      enqueue.cancel(deadlineId(event.actor));
      enqueue.raise({ type: DEADLINE, actor: event.actor, dueAt: at + d }, { delay: d, id: deadlineId(event.actor) });
      const dm = deadManChange(context, next, at);
      if (dm) {
        enqueue.assign({ deadManHealthy: dm.healthy });
        enqueue.emit(dm);
      }
    }),
    unwatch: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== WatchdogEvents.UNWATCH || context.actors[event.actor] === undefined) return;
      const { [event.actor]: _gone, ...rest } = context.actors;
      enqueue.cancel(deadlineId(event.actor));
      enqueue.assign({ actors: rest });
      const dm = deadManChange(context, { ...context, actors: rest }, finite(event.at) ? event.at : context.bootAt);
      if (dm) {
        enqueue.assign({ deadManHealthy: dm.healthy });
        enqueue.emit(dm);
      }
    }),
    deadline: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== DEADLINE) return;
      const w = context.actors[event.actor];
      // A late timer of an actor that beat or was unwatched meanwhile: nothing to say.
      if (w === undefined || event.dueAt - w.lastHeartbeatAt < stallAfterMs(context.config)) return;
      const stalls = w.stalls + 1;
      const actors = { ...context.actors, [event.actor]: { ...w, status: 'stalled', stalls } as ActorWatch };
      enqueue.assign({ actors });
      enqueue.emit({ type: WatchdogEmitted.ACTOR_STALLED, actor: event.actor, silentForMs: event.dueAt - w.lastHeartbeatAt, lastHeartbeatAt: w.lastHeartbeatAt, stalls, at: event.dueAt });
      if (context.config.restartOnStall) enqueue.emit({ type: WatchdogEmitted.RESTART_ACTOR, actor: event.actor, at: event.dueAt });
      const g = context.config.restartGraceMs;
      enqueue.raise({ type: DEADLINE, actor: event.actor, dueAt: event.dueAt + g }, { delay: g, id: deadlineId(event.actor) });
      const dm = deadManChange(context, { ...context, actors }, event.dueAt);
      if (dm) {
        enqueue.assign({ deadManHealthy: dm.healthy });
        enqueue.emit(dm);
      }
    }),
    eventLoop: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== WatchdogEvents.EVENT_LOOP_DELAY || !sample(event.ms) || !finite(event.at)) return;
      const high = event.ms >= context.config.eventLoopDelayMs;
      if (high === context.eventLoopHigh) return;
      enqueue.assign({ eventLoopHigh: high });
      enqueue.emit({ type: ModeEvents.EVENT_LOOP_DELAY, ms: event.ms, at: event.at });
    }),
    feedAge: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== WatchdogEvents.FEED_AGE || !finite(event.at) || !FEED_PATHS.every((p) => event[p] === null || finite(event[p]))) return;
      const later = (prev: number | null, seen: number | null) => (seen === null ? prev : Math.max(prev ?? seen, seen));
      const feed = { ws: later(context.feed.ws, event.ws), rest: later(context.feed.rest, event.rest) };
      const stale = feedStaleAt({ ...context, feed }, event.at);
      enqueue.assign({ feed, feedSampled: true, feedStale: stale });
      if (stale !== context.feedStale) enqueue.emit({ type: ModeEvents.FEED_STALE, stale, at: event.at });
    }),
    dbWrite: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== WatchdogEvents.DB_WRITE || !sample(event.latencyMs) || !finite(event.at)) return;
      const slow = event.latencyMs >= context.config.dbWriteSlowMs;
      if (!event.ok || slow) {
        enqueue.assign({ dbError: true, dbGoodStreak: 0 });
        if (!context.dbError) {
          const detail = !event.ok ? (event.detail ?? 'write failed') : `write took ${Math.round(event.latencyMs)} ms ≥ ${context.config.dbWriteSlowMs} ms`;
          enqueue.emit({ type: ModeEvents.DB_WRITE_ERROR, detail, at: event.at });
        }
        return;
      }
      if (!context.dbError) return;
      const streak = context.dbGoodStreak + 1;
      if (streak < context.config.dbOkAfter) {
        enqueue.assign({ dbGoodStreak: streak });
        return;
      }
      enqueue.assign({ dbError: false, dbGoodStreak: 0 });
      enqueue.emit({ type: ModeEvents.DB_OK, at: event.at });
    }),
    memory: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== WatchdogEvents.MEMORY || !sample(event.rssBytes) || !finite(event.at)) return;
      const limit = context.config.rssHighBytes;
      const high = context.memoryHigh ? event.rssBytes >= limit * 0.9 : event.rssBytes >= limit;
      if (high === context.memoryHigh) return;
      enqueue.assign({ memoryHigh: high });
      enqueue.emit({ type: WatchdogEmitted.MEMORY, high, rssBytes: event.rssBytes, thresholdBytes: limit, at: event.at });
    }),
  },
}).createMachine({
  id: 'watchdog',
  context: ({ input }) => initialContext(input),
  entry: 'armAll',
  on: {
    [WatchdogEvents.HEARTBEAT]: { actions: 'heartbeat' },
    [WatchdogEvents.UNWATCH]: { actions: 'unwatch' },
    [WatchdogEvents.EVENT_LOOP_DELAY]: { actions: 'eventLoop' },
    [WatchdogEvents.FEED_AGE]: { actions: 'feedAge' },
    [WatchdogEvents.DB_WRITE]: { actions: 'dbWrite' },
    [WatchdogEvents.MEMORY]: { actions: 'memory' },
    [DEADLINE]: { actions: 'deadline' },
  },
});

export type WatchdogSnapshot = SnapshotFrom<typeof watchdogMachine>;

/** The actors currently stalled (for `/status`). */
export function stalledActors(snapshot: WatchdogSnapshot): string[] {
  return Object.entries(snapshot.context.actors)
    .filter(([, w]) => w.status === 'stalled')
    .map(([a]) => a)
    .sort();
}
