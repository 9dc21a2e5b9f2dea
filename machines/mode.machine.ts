/**
 * The operating mode: Normal / Degraded / Critical / Emergency (architecture.md, "Operating modes").
 * The supervisor sends health FACTS (`ModeEvents`, each stamped with `at` from the injected clock);
 * the machine keeps the set of active conditions in context and its mode is the worst one's.
 * Pure: no I/O; the only timer is the hysteresis on the way back up, on XState's clock. Every
 * transition emits `mode.changed` (the supervisor persists, records, counts, logs and alerts it);
 * the mode survives a restart through `input.restored`.
 *
 * Invariants:
 * - going DOWN (worse) is immediate: the step that activates a worse condition lands in its mode;
 * - going UP (better) happens only once every condition worse than the target has been clear for
 *   `hysteresisMs` (a delayed transition, cancelled when such a condition comes back): at any time
 *   t the mode outside Emergency is the worst level L such that a condition of level ≥ L was active
 *   at some time in (t − hysteresisMs, t] (the model-based test checks exactly this);
 * - Emergency is sticky: its triggers are latches that only `operator.ack` with
 *   `reconciliationClean: true` clears; it then leaves to the mode the remaining (measured)
 *   conditions imply, their hysteresis included. An ack without a clean reconciliation, or outside
 *   Emergency, changes nothing and emits `mode.ackRefused`;
 * - exactly one `mode.changed` per change of mode; a restored boot announces nothing.
 *
 * Restart: pass the persisted mode as `input.restored` (the database is the truth; a restored
 * Degraded / Critical waits one hysteresis period from boot, a restored Emergency waits for an ack).
 * Do not revive it from a persisted XState snapshot: XState keeps scheduled events outside the
 * machine's snapshot, so a snapshot taken mid-wait would come back without its timer.
 *
 * Condition table (severity per architecture.md; thresholds from `ModeConfig`):
 * | condition          | set by                                   | cleared by                         | level     |
 * |--------------------|------------------------------------------|------------------------------------|-----------|
 * | wsDown             | health.wsDown                            | health.wsUp                        | Degraded  |
 * | breaker.<endpoint> | health.breakerOpen (non-order endpoint)  | health.breakerClosed               | Degraded  |
 * | breaker.<endpoint> | health.breakerOpen (an order endpoint)   | health.breakerClosed               | Critical  |
 * | eventLoop          | health.eventLoopDelay ≥ threshold        | health.eventLoopDelay < threshold  | Degraded  |
 * | drawdown           | health.drawdown ≥ degraded / critical %  | health.drawdown below the tier     | Degraded / Critical |
 * | feedStale          | health.feedStale {stale: true}           | health.feedStale {stale: false}    | Critical  |
 * | dbWrite            | health.dbWriteError                      | health.dbOk                        | Critical  |
 * | reconciliation     | health.reconciliation {clean: false}     | {clean: true}, or an accepted ack  | Critical  |
 * | drawdownLimit      | health.drawdown ≥ emergency %            | ack (re-arms once below the tier)  | Emergency |
 * | dailyLoss, invariant, runawayOrderRate, positionMismatch, kill | their event | ack          | Emergency |
 * | restored           | boot with `restored: 'Emergency'`        | ack                                | Emergency |
 *
 * After an accepted ack, a drawdown still at or beyond the emergency tier counts as Critical until
 * it has fallen below the tier once: the operator acknowledged that drawdown, a new breach re-arms.
 */
import { assign, enqueueActions, setup } from 'xstate';
import type { SnapshotFrom } from 'xstate';
import { z } from 'zod';
import { MODES, type Mode } from '../src/domain/types.ts';

// ---------------------------------------------------------------------------------------------
// Switchboard strings
// ---------------------------------------------------------------------------------------------

/** Health facts and operator commands the supervisor sends. Every event carries `at` (ms, injected clock). */
export const ModeEvents = {
  WS_DOWN: 'health.wsDown',
  WS_UP: 'health.wsUp',
  BREAKER_OPEN: 'health.breakerOpen',
  BREAKER_CLOSED: 'health.breakerClosed',
  /** Market data stale on BOTH paths (WebSocket and REST polling). */
  FEED_STALE: 'health.feedStale',
  DB_WRITE_ERROR: 'health.dbWriteError',
  DB_OK: 'health.dbOk',
  EVENT_LOOP_DELAY: 'health.eventLoopDelay',
  DRAWDOWN: 'health.drawdown',
  DAILY_LOSS_BREACHED: 'health.dailyLossBreached',
  RECONCILIATION: 'health.reconciliation',
  INVARIANT_BROKEN: 'health.invariantBroken',
  RUNAWAY_ORDER_RATE: 'health.runawayOrderRate',
  POSITION_MISMATCH_UNRESOLVED: 'health.positionMismatchUnresolved',
  KILL: 'operator.kill',
  ACK: 'operator.ack',
} as const;

/** Emitted (XState `emit`); listen with `actor.on`. */
export const ModeEmitted = {
  CHANGED: 'mode.changed',
  ACK_REFUSED: 'mode.ackRefused',
} as const;

export const BREAKER_ENDPOINTS = ['info', 'exchange', 'ws'] as const;
export type BreakerEndpoint = (typeof BREAKER_ENDPOINTS)[number];

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/**
 * Mode thresholds. Strict objects: a typo is an error, not a silent default. Parse with
 * `parseModeConfig` for a value-style result naming the bad key.
 */
export const ModeConfigSchema = z.strictObject({
  /** Drawdown tiers in % from the equity peak: Degraded / Critical / Emergency. */
  drawdownPct: z
    .strictObject({
      degraded: z.number().positive().max(100).default(5),
      critical: z.number().positive().max(100).default(10),
      emergency: z.number().positive().max(100).default(15),
    })
    .prefault({})
    .refine((d) => d.degraded < d.critical && d.critical < d.emergency, { message: 'drawdown tiers must increase: degraded < critical < emergency' }),
  /** Event-loop delay (ms, e.g. the p99 of `perf_hooks.monitorEventLoopDelay`) at or above which keel is Degraded. */
  eventLoopDelayMs: z.number().positive().max(60_000).default(250),
  /** How long every worse condition must have been clear before the mode steps back up. */
  hysteresisMs: z.number().int().nonnegative().max(3_600_000).default(30_000),
  /** Breakers whose endpoint carries orders: open → Critical; the others → Degraded. */
  orderEndpoints: z.array(z.enum(BREAKER_ENDPOINTS)).default(['exchange']),
});

export type ModeConfig = z.infer<typeof ModeConfigSchema>;
export type ModeConfigInput = z.input<typeof ModeConfigSchema>;

export function parseModeConfig(input: unknown): { ok: true; config: ModeConfig } | { ok: false; error: string } {
  const r = ModeConfigSchema.safeParse(input ?? {});
  if (r.success) return { ok: true, config: r.data };
  return { ok: false, error: r.error.issues.map((i) => `mode.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

export const DEFAULT_MODE_CONFIG: ModeConfig = Object.freeze(ModeConfigSchema.parse({}));

// ---------------------------------------------------------------------------------------------
// Effects of a mode (architecture.md's table)
// ---------------------------------------------------------------------------------------------

export type AlertSeverity = 'info' | 'warning' | 'critical';

export interface ModeEffects {
  /** Multiplies position sizes of new entries (0 where entries stop). */
  readonly sizeMultiplier: number;
  readonly allowNewEntries: boolean;
  /** Entries into a market with no position yet. */
  readonly allowNewMarkets: boolean;
  /** Only orders that reduce a position; protective stops are kept. */
  readonly reduceOnly: boolean;
  /** Cancel working entry orders. */
  readonly cancelEntries: boolean;
  /** Severity of the alert for entering the mode. */
  readonly alertSeverity: AlertSeverity;
}

/** What a mode allows. Pure. `degradedSizeMultiplier` defaults to risk's 0.5 (sizes halved). */
export function effectsOf(mode: Mode, opts: { readonly degradedSizeMultiplier?: number } = {}): ModeEffects {
  switch (mode) {
    case 'Normal':
      return { sizeMultiplier: 1, allowNewEntries: true, allowNewMarkets: true, reduceOnly: false, cancelEntries: false, alertSeverity: 'info' };
    case 'Degraded':
      return { sizeMultiplier: opts.degradedSizeMultiplier ?? 0.5, allowNewEntries: true, allowNewMarkets: false, reduceOnly: false, cancelEntries: false, alertSeverity: 'warning' };
    case 'Critical':
      return { sizeMultiplier: 0, allowNewEntries: false, allowNewMarkets: false, reduceOnly: true, cancelEntries: false, alertSeverity: 'critical' };
    case 'Emergency':
      return { sizeMultiplier: 0, allowNewEntries: false, allowNewMarkets: false, reduceOnly: true, cancelEntries: true, alertSeverity: 'critical' };
  }
}

// ---------------------------------------------------------------------------------------------
// Events, context, emitted
// ---------------------------------------------------------------------------------------------

type At = { at: number };
export type ModeEvent =
  | ({ type: typeof ModeEvents.WS_DOWN } & At)
  | ({ type: typeof ModeEvents.WS_UP } & At)
  | ({ type: typeof ModeEvents.BREAKER_OPEN; endpoint: BreakerEndpoint } & At)
  | ({ type: typeof ModeEvents.BREAKER_CLOSED; endpoint: BreakerEndpoint } & At)
  | ({ type: typeof ModeEvents.FEED_STALE; stale: boolean } & At)
  | ({ type: typeof ModeEvents.DB_WRITE_ERROR; detail?: string } & At)
  | ({ type: typeof ModeEvents.DB_OK } & At)
  | ({ type: typeof ModeEvents.EVENT_LOOP_DELAY; ms: number } & At)
  | ({ type: typeof ModeEvents.DRAWDOWN; pct: number } & At)
  | ({ type: typeof ModeEvents.DAILY_LOSS_BREACHED; detail?: string } & At)
  | ({ type: typeof ModeEvents.RECONCILIATION; clean: boolean; summary?: string } & At)
  | ({ type: typeof ModeEvents.INVARIANT_BROKEN; detail: string } & At)
  | ({ type: typeof ModeEvents.RUNAWAY_ORDER_RATE; detail?: string } & At)
  | ({ type: typeof ModeEvents.POSITION_MISMATCH_UNRESOLVED; detail?: string } & At)
  | ({ type: typeof ModeEvents.KILL; by: string } & At)
  | ({ type: typeof ModeEvents.ACK; by: string; reconciliationClean: boolean } & At);

export type ConditionKey =
  | 'wsDown'
  | `breaker.${BreakerEndpoint}`
  | 'eventLoop'
  | 'drawdown'
  | 'feedStale'
  | 'dbWrite'
  | 'reconciliation'
  | 'drawdownLimit'
  | 'dailyLoss'
  | 'invariant'
  | 'runawayOrderRate'
  | 'positionMismatch'
  | 'kill'
  | 'restored';

export type ConditionLevel = Exclude<Mode, 'Normal'>;

export interface ActiveCondition {
  readonly key: ConditionKey;
  readonly level: ConditionLevel;
  readonly reason: string;
  /** When it (last) became active at this level. */
  readonly since: number;
  /** An Emergency trigger: only an accepted ack clears it. */
  readonly latched: boolean;
}

/** The hysteresis levels: when no measured condition at or above the level was last active. */
type Clear = { readonly Degraded: number | null; readonly Critical: number | null };

export interface ModeContext {
  readonly config: ModeConfig;
  /** The mode last announced (the state's, once its entry ran). */
  readonly mode: Mode;
  readonly conditions: Readonly<Partial<Record<ConditionKey, ActiveCondition>>>;
  /** Per level: time since which no measured (non-latched) condition at or above it is active; null while one is. */
  readonly clearSince: Clear;
  readonly drawdownPct: number;
  /** The emergency drawdown tier was acknowledged; it re-arms once the drawdown falls below it. */
  readonly drawdownAcked: boolean;
  /** Latest time seen (event `at`, due time of a fired timer, boot `now`): never Date.now(). */
  readonly lastSeenAt: number;
}

export interface ModeInput {
  readonly config?: ModeConfig;
  /** The persisted mode (store.modes.current()), if any. */
  readonly restored?: Mode;
  /** Clock time at boot (ms). */
  readonly now: number;
}

export interface ModeChanged {
  type: typeof ModeEmitted.CHANGED;
  from: Mode;
  to: Mode;
  reason: string;
  at: number;
  /** The active conditions at the time of the change. */
  conditions: readonly ActiveCondition[];
}

export interface ModeAckRefused {
  type: typeof ModeEmitted.ACK_REFUSED;
  by: string;
  mode: Mode;
  reason: string;
  at: number;
}

export type ModeEmittedEvent = ModeChanged | ModeAckRefused;

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

const SEVERITY: Readonly<Record<Mode, number>> = { Normal: 0, Degraded: 1, Critical: 2, Emergency: 3 };
const HYSTERESIS_LEVELS = ['Critical', 'Degraded'] as const;

export function severityOf(mode: Mode): number {
  return SEVERITY[mode];
}

export function worseOf(a: Mode, b: Mode): Mode {
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

function conditionList(ctx: Pick<ModeContext, 'conditions'>): ActiveCondition[] {
  return Object.values(ctx.conditions)
    .filter((c): c is ActiveCondition => c !== undefined)
    .sort((a, b) => SEVERITY[b.level] - SEVERITY[a.level] || a.key.localeCompare(b.key));
}

/** The mode the active conditions imply (no hysteresis). */
export function impliedMode(ctx: Pick<ModeContext, 'conditions'>): Mode {
  return conditionList(ctx).reduce<Mode>((m, c) => worseOf(m, c.level), 'Normal');
}

/** The mode at time t: the active conditions, plus every level whose conditions cleared less than `hysteresisMs` ago. */
export function settledMode(ctx: Pick<ModeContext, 'conditions' | 'clearSince' | 'config'>, t: number): Mode {
  let m = impliedMode(ctx);
  for (const level of HYSTERESIS_LEVELS) {
    const since = ctx.clearSince[level];
    if (since === null || since + ctx.config.hysteresisMs > t) m = worseOf(m, level);
  }
  return m;
}

/** When `level`'s conditions will have been clear for the hysteresis period. */
function dueAt(ctx: ModeContext, level: 'Degraded' | 'Critical'): number {
  return (ctx.clearSince[level] ?? ctx.lastSeenAt) + ctx.config.hysteresisMs;
}

/** Any event the machine can see, its own delayed ones included. */
type SeenEvent = ModeEvent | { type: string; at?: number };

function timeOf(event: SeenEvent, ctx: ModeContext): number {
  return Math.max(ctx.lastSeenAt, typeof event.at === 'number' && Number.isFinite(event.at) ? event.at : ctx.lastSeenAt);
}

/** Recomputes `clearSince` for a new condition set at time t (latches do not count: ack leaves them). */
function withConditions(ctx: ModeContext, conditions: ModeContext['conditions'], t: number): Pick<ModeContext, 'conditions' | 'clearSince'> {
  const measured = Object.values(conditions).filter((c): c is ActiveCondition => c !== undefined && !c.latched);
  const next = (level: 'Degraded' | 'Critical'): number | null => {
    const active = measured.some((c) => SEVERITY[c.level] >= SEVERITY[level]);
    if (active) return null;
    return ctx.clearSince[level] ?? t;
  };
  return { conditions, clearSince: { Degraded: next('Degraded'), Critical: next('Critical') } };
}

type Change = { readonly set?: readonly Omit<ActiveCondition, 'since'>[]; readonly clear?: readonly ConditionKey[] };

function applyChange(ctx: ModeContext, change: Change, t: number): Pick<ModeContext, 'conditions' | 'clearSince'> {
  const conditions: Partial<Record<ConditionKey, ActiveCondition>> = { ...ctx.conditions };
  for (const key of change.clear ?? []) delete conditions[key];
  for (const c of change.set ?? []) {
    const prev = conditions[c.key];
    // `since` marks the start at this level; a repeat of the same fact keeps it (and a latch keeps its first reason).
    if (prev && prev.level === c.level) conditions[c.key] = prev.latched ? prev : { ...prev, reason: c.reason };
    else conditions[c.key] = { ...c, since: t };
  }
  return withConditions(ctx, conditions, t);
}

const latch = (key: ConditionKey, reason: string): Omit<ActiveCondition, 'since'> => ({ key, level: 'Emergency', reason, latched: true });
const measured = (key: ConditionKey, level: ConditionLevel, reason: string): Omit<ActiveCondition, 'since'> => ({ key, level, reason, latched: false });
const withDetail = (what: string, detail: string | undefined) => (detail ? `${what}: ${detail}` : what);

/** Folds one health fact into context. Pure. */
export function observeFact(ctx: ModeContext, event: ModeEvent): Partial<ModeContext> {
  const t = timeOf(event, ctx);
  const base = { lastSeenAt: t };
  const cfg = ctx.config;
  switch (event.type) {
    case ModeEvents.WS_DOWN:
      return { ...base, ...applyChange(ctx, { set: [measured('wsDown', 'Degraded', 'WebSocket down (REST polling)')] }, t) };
    case ModeEvents.WS_UP:
      return { ...base, ...applyChange(ctx, { clear: ['wsDown'] }, t) };
    case ModeEvents.BREAKER_OPEN: {
      const order = cfg.orderEndpoints.includes(event.endpoint);
      const c = measured(`breaker.${event.endpoint}`, order ? 'Critical' : 'Degraded', `${order ? 'order' : 'non-order'} endpoint breaker open (${event.endpoint})`);
      return { ...base, ...applyChange(ctx, { set: [c] }, t) };
    }
    case ModeEvents.BREAKER_CLOSED:
      return { ...base, ...applyChange(ctx, { clear: [`breaker.${event.endpoint}`] }, t) };
    case ModeEvents.FEED_STALE:
      return { ...base, ...applyChange(ctx, event.stale ? { set: [measured('feedStale', 'Critical', 'market feed stale on both paths')] } : { clear: ['feedStale'] }, t) };
    case ModeEvents.DB_WRITE_ERROR:
      return { ...base, ...applyChange(ctx, { set: [measured('dbWrite', 'Critical', withDetail('database write errors', event.detail))] }, t) };
    case ModeEvents.DB_OK:
      return { ...base, ...applyChange(ctx, { clear: ['dbWrite'] }, t) };
    case ModeEvents.EVENT_LOOP_DELAY: {
      const high = Number.isFinite(event.ms) && event.ms >= cfg.eventLoopDelayMs;
      return { ...base, ...applyChange(ctx, high ? { set: [measured('eventLoop', 'Degraded', `event-loop delay ${event.ms} ms ≥ ${cfg.eventLoopDelayMs} ms`)] } : { clear: ['eventLoop'] }, t) };
    }
    case ModeEvents.DRAWDOWN: {
      // NaN is not a drawdown we can act on: the watchdog's parse should have stopped it; ignore it here.
      if (!Number.isFinite(event.pct)) return base;
      const pct = event.pct;
      const tiers = cfg.drawdownPct;
      const level: ConditionLevel | undefined = pct >= tiers.critical ? 'Critical' : pct >= tiers.degraded ? 'Degraded' : undefined;
      const set: Omit<ActiveCondition, 'since'>[] = [];
      const clear: ConditionKey[] = [];
      if (level) set.push(measured('drawdown', level, `drawdown ${pct} % ≥ ${level === 'Critical' ? tiers.critical : tiers.degraded} %`));
      else clear.push('drawdown');
      const beyond = pct >= tiers.emergency;
      if (beyond && !ctx.drawdownAcked) set.push(latch('drawdownLimit', `drawdown ${pct} % ≥ ${tiers.emergency} %`));
      return { ...base, drawdownPct: pct, drawdownAcked: beyond && ctx.drawdownAcked, ...applyChange(ctx, { set, clear }, t) };
    }
    case ModeEvents.DAILY_LOSS_BREACHED:
      return { ...base, ...applyChange(ctx, { set: [latch('dailyLoss', withDetail('daily loss limit breached', event.detail))] }, t) };
    case ModeEvents.RECONCILIATION:
      return {
        ...base,
        ...applyChange(ctx, event.clean ? { clear: ['reconciliation'] } : { set: [measured('reconciliation', 'Critical', withDetail('reconciliation unresolved', event.summary))] }, t),
      };
    case ModeEvents.INVARIANT_BROKEN:
      return { ...base, ...applyChange(ctx, { set: [latch('invariant', withDetail('invariant broken', event.detail))] }, t) };
    case ModeEvents.RUNAWAY_ORDER_RATE:
      return { ...base, ...applyChange(ctx, { set: [latch('runawayOrderRate', withDetail('runaway order rate', event.detail))] }, t) };
    case ModeEvents.POSITION_MISMATCH_UNRESOLVED:
      return { ...base, ...applyChange(ctx, { set: [latch('positionMismatch', withDetail('unresolvable position mismatch', event.detail))] }, t) };
    case ModeEvents.KILL:
      return { ...base, ...applyChange(ctx, { set: [latch('kill', `kill switch by ${event.by}`)] }, t) };
    case ModeEvents.ACK:
      return base;
  }
}

/** An accepted ack: every latch goes, and the clean reconciliation it carries clears that condition. */
function acknowledge(ctx: ModeContext, t: number): Partial<ModeContext> {
  const latches = conditionList(ctx)
    .filter((c) => c.latched)
    .map((c) => c.key);
  const tiers = ctx.config.drawdownPct;
  return { lastSeenAt: t, drawdownAcked: ctx.drawdownPct >= tiers.emergency, ...applyChange(ctx, { clear: [...latches, 'reconciliation'] }, t) };
}

function describeWorst(ctx: ModeContext, mode: Mode): string {
  const worst = conditionList(ctx).filter((c) => c.level === mode);
  return worst.map((c) => c.reason).join('; ');
}

function reasonFor(ctx: ModeContext, event: SeenEvent, to: Mode): string {
  if (event.type === ModeEvents.ACK) {
    const e = event as Extract<ModeEvent, { type: typeof ModeEvents.ACK }>;
    return `operator ack by ${e.by} after a clean reconciliation`;
  }
  if (SEVERITY[to] > SEVERITY[ctx.mode]) return describeWorst(ctx, to) || to;
  const remaining = conditionList(ctx).map((c) => c.key);
  const clear = `conditions worse than ${to} clear for ${ctx.config.hysteresisMs} ms`;
  return remaining.length ? `${clear} (still: ${remaining.join(', ')})` : clear;
}

function initialContext(input: ModeInput): ModeContext {
  const config = input.config ?? DEFAULT_MODE_CONFIG;
  const restored = input.restored !== undefined && (MODES as readonly string[]).includes(input.restored) ? input.restored : 'Normal';
  // A restored mode recovers like one whose conditions cleared at boot: the facts arrive afresh.
  const long = input.now - config.hysteresisMs;
  const clearSince: Clear = {
    Degraded: SEVERITY[restored] >= SEVERITY.Degraded ? input.now : long,
    Critical: SEVERITY[restored] >= SEVERITY.Critical ? input.now : long,
  };
  const conditions: Partial<Record<ConditionKey, ActiveCondition>> = {};
  if (restored === 'Emergency') conditions.restored = { key: 'restored', level: 'Emergency', reason: 'restored in Emergency at boot (needs an operator ack)', since: input.now, latched: true };
  return { config, mode: restored, conditions, clearSince, drawdownPct: 0, drawdownAcked: false, lastSeenAt: input.now };
}

type ModeParams = { mode: Mode };
type StepParams = { from: 'Degraded' | 'Critical'; mode: Mode };

/** Eventless routes down from `mode` (worst first), then the given tail. */
function down(mode: Mode) {
  return MODES.filter((m) => SEVERITY[m] > SEVERITY[mode])
    .reverse()
    .map((m) => ({ guard: { type: 'impliesAtLeast', params: { mode: m } } as const, target: `#mode.${m}` }));
}

/** Routes out of Emergency once an ack released every latch, to the settled mode. */
function release() {
  return (['Critical', 'Degraded', 'Normal'] as const).map((m) => ({ guard: { type: 'releasedTo', params: { mode: m } } as const, target: `#mode.${m}` }));
}

/** Routes of a hysteresis timer from `from` to the mode settled at its due time. */
function stepUp(from: 'Degraded' | 'Critical') {
  const targets = MODES.filter((m) => SEVERITY[m] < SEVERITY[from]).reverse();
  return targets.map((m) => ({ guard: { type: 'settlesAtDue', params: { from, mode: m } } as const, target: `#mode.${m}`, actions: { type: 'observeDue', params: { from } } as const }));
}

// ---------------------------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------------------------

export const modeMachine = setup({
  types: {
    context: {} as ModeContext,
    events: {} as ModeEvent,
    input: {} as ModeInput,
    emitted: {} as ModeEmittedEvent,
  },
  delays: {
    recoverFromDegraded: ({ context }) => Math.max(0, dueAt(context, 'Degraded') - context.lastSeenAt),
    recoverFromCritical: ({ context }) => Math.max(0, dueAt(context, 'Critical') - context.lastSeenAt),
  },
  guards: {
    restoredAs: ({ context }, params: ModeParams) => context.mode === params.mode,
    impliesAtLeast: ({ context }, params: ModeParams) => SEVERITY[impliedMode(context)] >= SEVERITY[params.mode],
    impliesBelow: ({ context }, params: ModeParams) => SEVERITY[impliedMode(context)] < SEVERITY[params.mode],
    releasedTo: ({ context }, params: ModeParams) => impliedMode(context) !== 'Emergency' && settledMode(context, context.lastSeenAt) === params.mode,
    settlesAtDue: ({ context }, params: StepParams) => {
      const due = Math.max(context.lastSeenAt, dueAt(context, params.from));
      const m = settledMode(context, due);
      // A timer that fires when nothing better is settled (it cannot, but a late clock might) stays put.
      return m === params.mode;
    },
    ackClean: ({ event }) => event.type === ModeEvents.ACK && event.reconciliationClean === true,
  },
  actions: {
    observe: assign(({ context, event }) => observeFact(context, event)),
    observeDue: assign(({ context }, params: { from: 'Degraded' | 'Critical' }) => ({ lastSeenAt: Math.max(context.lastSeenAt, dueAt(context, params.from)) })),
    acknowledge: assign(({ context, event }) => acknowledge(context, timeOf(event, context))),
    refuseAck: enqueueActions(({ context, event, enqueue }) => {
      if (event.type !== ModeEvents.ACK) return;
      const reason = context.mode !== 'Emergency' ? `not in Emergency (mode is ${context.mode})` : 'reconciliation not clean: run `keel reconcile` until it is';
      enqueue.emit({ type: ModeEmitted.ACK_REFUSED, by: event.by, mode: context.mode, reason, at: timeOf(event, context) });
    }),
    // A restored boot enters its state without changing it: nothing to announce.
    announce: enqueueActions(({ context, event, enqueue }, params: ModeParams) => {
      if (context.mode === params.mode) return;
      enqueue.emit({ type: ModeEmitted.CHANGED, from: context.mode, to: params.mode, reason: reasonFor(context, event, params.mode), at: context.lastSeenAt, conditions: conditionList(context) });
    }),
    settle: assign((_, params: ModeParams) => ({ mode: params.mode })),
  },
}).createMachine({
  id: 'mode',
  context: ({ input }) => initialContext(input),
  initial: 'boot',
  // Facts are folded at the root; each state's eventless routes then pick the mode.
  on: {
    [ModeEvents.WS_DOWN]: { actions: 'observe' },
    [ModeEvents.WS_UP]: { actions: 'observe' },
    [ModeEvents.BREAKER_OPEN]: { actions: 'observe' },
    [ModeEvents.BREAKER_CLOSED]: { actions: 'observe' },
    [ModeEvents.FEED_STALE]: { actions: 'observe' },
    [ModeEvents.DB_WRITE_ERROR]: { actions: 'observe' },
    [ModeEvents.DB_OK]: { actions: 'observe' },
    [ModeEvents.EVENT_LOOP_DELAY]: { actions: 'observe' },
    [ModeEvents.DRAWDOWN]: { actions: 'observe' },
    [ModeEvents.DAILY_LOSS_BREACHED]: { actions: 'observe' },
    [ModeEvents.RECONCILIATION]: { actions: 'observe' },
    [ModeEvents.INVARIANT_BROKEN]: { actions: 'observe' },
    [ModeEvents.RUNAWAY_ORDER_RATE]: { actions: 'observe' },
    [ModeEvents.POSITION_MISMATCH_UNRESOLVED]: { actions: 'observe' },
    [ModeEvents.KILL]: { actions: 'observe' },
    [ModeEvents.ACK]: { actions: ['observe', 'refuseAck'] },
  },
  states: {
    boot: {
      always: [
        { guard: { type: 'restoredAs', params: { mode: 'Emergency' } }, target: 'Emergency' },
        { guard: { type: 'restoredAs', params: { mode: 'Critical' } }, target: 'Critical' },
        { guard: { type: 'restoredAs', params: { mode: 'Degraded' } }, target: 'Degraded' },
        { target: 'Normal' },
      ],
    },
    Normal: {
      entry: [
        { type: 'announce', params: { mode: 'Normal' } },
        { type: 'settle', params: { mode: 'Normal' } },
      ],
      always: down('Normal'),
    },
    Degraded: {
      entry: [
        { type: 'announce', params: { mode: 'Degraded' } },
        { type: 'settle', params: { mode: 'Degraded' } },
      ],
      initial: 'holding',
      states: {
        holding: {
          always: [...down('Degraded'), { guard: { type: 'impliesBelow', params: { mode: 'Degraded' } }, target: 'recovering' }],
        },
        recovering: {
          always: [...down('Degraded'), { guard: { type: 'impliesAtLeast', params: { mode: 'Degraded' } }, target: 'holding' }],
          after: { recoverFromDegraded: stepUp('Degraded') },
        },
      },
    },
    Critical: {
      entry: [
        { type: 'announce', params: { mode: 'Critical' } },
        { type: 'settle', params: { mode: 'Critical' } },
      ],
      initial: 'holding',
      states: {
        holding: {
          always: [...down('Critical'), { guard: { type: 'impliesBelow', params: { mode: 'Critical' } }, target: 'recovering' }],
        },
        recovering: {
          always: [...down('Critical'), { guard: { type: 'impliesAtLeast', params: { mode: 'Critical' } }, target: 'holding' }],
          after: { recoverFromCritical: stepUp('Critical') },
        },
      },
    },
    Emergency: {
      entry: [
        { type: 'announce', params: { mode: 'Emergency' } },
        { type: 'settle', params: { mode: 'Emergency' } },
      ],
      on: {
        [ModeEvents.ACK]: [{ guard: 'ackClean', actions: 'acknowledge' }, { actions: 'refuseAck' }],
      },
      always: release(),
    },
  },
});

export type ModeSnapshot = SnapshotFrom<typeof modeMachine>;

/** The mode a snapshot stands for. */
export function modeOf(snapshot: ModeSnapshot): Mode {
  return snapshot.context.mode;
}

/** The active conditions of a snapshot, worst first (for `/status`). */
export function activeConditions(snapshot: ModeSnapshot): readonly ActiveCondition[] {
  return conditionList(snapshot.context);
}
