/**
 * The dead-man switch keeper: keeps Hyperliquid's `scheduleCancel` armed a horizon ahead (default
 * 60 s), renewing it every horizon / 3 while keel is healthy. If keel dies, hangs, or is told it is
 * unhealthy, the renewals stop and the venue cancels every open order of the account at the armed
 * time (status `scheduledCancel`): resting orders never outlive the process that watches them by
 * more than the horizon.
 *
 * Invariants:
 *  - `expiry()` is the last time the VENUE confirmed; a renewal without a clear answer leaves it
 *    unchanged (the venue may or may not have moved it, and either way it fires no later than the
 *    latest time we asked for).
 *  - A time sent is always ≥ now + the venue's 5 s minimum (the horizon is at least 6 s).
 *  - The venue allows 10 triggers per UTC day. The keeper counts every trigger it can observe (an
 *    armed time it did not move that has passed, plus those reported by `noteTrigger`) and never
 *    arms once `maxTriggersPerDay` (default 9) have happened today, keeping the last one for
 *    `flatten`'s fallback; a venue answer "too many" counts as the budget spent.
 *  - One arm in flight at a time; nothing is sent after `stop()`.
 *  - Effectful by design (src/ops): the venue clock `now` and the timers are injected, so tests
 *    drive it on the simulator's manual clock.
 */
import { z } from 'zod';
import type { VenuePort } from '../venue/port.ts';

export const DAY_MS = 86_400_000;
/** The venue refuses a time less than 5 s ahead; the extra second absorbs clock skew and latency. */
export const MIN_HORIZON_MS = 6_000;

export const DeadManConfigSchema = z
  .strictObject({
    /** How far ahead the switch is armed. */
    horizonMs: z.number().int().min(MIN_HORIZON_MS).max(DAY_MS).default(60_000),
    /** Renewal period (default horizon / 3). */
    renewEveryMs: z.number().int().positive().optional(),
    /** Wait after an arm that failed before the next try. */
    retryMs: z.number().int().positive().default(1_000),
    /** `expiresAfter` of each scheduleCancel action, ms ahead of now. */
    expiresAfterMs: z.number().int().positive().max(60_000).default(5_000),
    /** Never arm once this many triggers happened in the current UTC day (the venue allows 10). */
    maxTriggersPerDay: z.number().int().min(1).max(10).default(9),
  })
  .refine((c) => c.renewEveryMs === undefined || c.renewEveryMs < c.horizonMs - 5_000, { message: 'renewEveryMs must leave more than the venue’s 5 s before the armed time', path: ['renewEveryMs'] });

export type DeadManConfig = z.infer<typeof DeadManConfigSchema>;
export type DeadManConfigInput = z.input<typeof DeadManConfigSchema>;

export function parseDeadManConfig(input: unknown): { ok: true; config: DeadManConfig } | { ok: false; error: string } {
  const r = DeadManConfigSchema.safeParse(input ?? {});
  if (r.success) return { ok: true, config: r.data };
  return { ok: false, error: r.error.issues.map((i) => `deadMan.${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') };
}

/** The pino-compatible subset the keeper logs through. */
export interface DeadManLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Timers the keeper schedules renewals with (default: unref'd setTimeout). */
export interface DeadManTimers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** Where the trigger times survive a restart (the runtime keeps them in runtime_state). */
export interface TriggerLog {
  load(): readonly number[];
  save(times: readonly number[]): void;
}

export interface DeadManKeeperDeps {
  readonly venue: Pick<VenuePort, 'scheduleCancel'>;
  /** The venue's clock (ms). */
  readonly now: () => number;
  readonly config?: DeadManConfigInput;
  readonly log?: DeadManLogger;
  readonly timers?: DeadManTimers;
  readonly triggerLog?: TriggerLog;
}

export type ArmOutcome =
  | { readonly kind: 'armed'; readonly expiry: number }
  | { readonly kind: 'failed'; readonly error: string }
  /** Refused by the daily trigger budget. */
  | { readonly kind: 'budget'; readonly triggersToday: number }
  | { readonly kind: 'skipped'; readonly reason: 'stopped' | 'unhealthy' };

export interface DeadManStatus {
  readonly running: boolean;
  readonly healthy: boolean;
  /** The armed time the venue last confirmed (undefined: not armed as far as we know). */
  readonly expiry: number | undefined;
  readonly triggersToday: number;
  readonly budgetSpent: boolean;
  readonly lastError: string | undefined;
  readonly unhealthyReason: string | undefined;
}

const NOOP_LOG: DeadManLogger = { info() {}, warn() {}, error() {} };
const REAL_TIMERS: DeadManTimers = {
  set: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

const dayOf = (t: number) => Math.floor(t / DAY_MS);

export class DeadManKeeper {
  readonly #venue: Pick<VenuePort, 'scheduleCancel'>;
  readonly #now: () => number;
  readonly #cfg: DeadManConfig & { readonly renewEveryMs: number };
  readonly #log: DeadManLogger;
  readonly #timers: DeadManTimers;
  readonly #triggerLog: TriggerLog | undefined;
  #triggers: number[];
  #expiry: number | undefined;
  #running = false;
  #stopped = false;
  #healthy = true;
  #unhealthyReason: string | undefined;
  #timer: unknown;
  #inFlight: Promise<ArmOutcome> | undefined;
  #lastError: string | undefined;
  /** UTC day on which the venue said "too many". */
  #spentDay: number | undefined;

  constructor(deps: DeadManKeeperDeps) {
    const parsed = parseDeadManConfig(deps.config);
    if (!parsed.ok) throw new Error(parsed.error);
    this.#cfg = { ...parsed.config, renewEveryMs: parsed.config.renewEveryMs ?? Math.floor(parsed.config.horizonMs / 3) };
    this.#venue = deps.venue;
    this.#now = deps.now;
    this.#log = deps.log ?? NOOP_LOG;
    this.#timers = deps.timers ?? REAL_TIMERS;
    this.#triggerLog = deps.triggerLog;
    this.#triggers = [...(deps.triggerLog?.load() ?? [])].filter((t) => Number.isSafeInteger(t));
  }

  /** Arms at once and keeps renewing. Resolves with the first arm's outcome. */
  start(): Promise<ArmOutcome> {
    if (this.#stopped) return Promise.resolve({ kind: 'skipped', reason: 'stopped' });
    this.#running = true;
    return this.renewNow();
  }

  /**
   * Unhealthy: stop renewing (the venue fires at `expiry()` unless keel is healthy again before).
   * Healthy again: arm at once and resume.
   */
  async setHealthy(healthy: boolean, reason: string): Promise<void> {
    if (healthy === this.#healthy) return;
    this.#healthy = healthy;
    this.#unhealthyReason = healthy ? undefined : reason;
    if (!healthy) {
      this.#clearTimer();
      this.#log.warn({ reason, expiry: this.#expiry }, 'dead-man switch: renewals stopped; the venue cancels every open order at the armed time');
      return;
    }
    this.#log.info({ reason }, 'dead-man switch: healthy again, renewing');
    if (this.#running) await this.renewNow();
  }

  /**
   * Stops renewing for good. `disarm: true` (a clean shutdown that keeps its orders, protective
   * stops included) clears the schedule; otherwise the venue fires at the armed time.
   */
  async stop(opts: { disarm?: boolean } = {}): Promise<void> {
    this.#running = false;
    this.#stopped = true;
    this.#clearTimer();
    await this.#inFlight?.catch(() => undefined);
    if (!opts.disarm) return;
    const r = await this.#venue.scheduleCancel(undefined, { expiresAfter: this.#now() + this.#cfg.expiresAfterMs }).catch((e: unknown) => ({ ok: false as const, error: String(e) }));
    if (r.ok) {
      this.#expiry = undefined;
      this.#log.info({}, 'dead-man switch cleared');
    } else {
      this.#lastError = r.error;
      this.#log.warn({ error: r.error, expiry: this.#expiry }, 'dead-man switch: clearing failed; the venue fires at the armed time');
    }
  }

  /** The armed time the venue last confirmed, if any (for metrics). */
  expiry(): number | undefined {
    this.#observe(this.#now());
    return this.#expiry;
  }

  /** Records a trigger seen elsewhere (an order update with status `scheduledCancel`), unless it is one already counted. */
  noteTrigger(at: number): void {
    if (!Number.isSafeInteger(at)) return;
    this.#observe(this.#now());
    // The venue fires once per armed time; updates of the orders it cancelled all carry about that time.
    if (this.#triggers.some((t) => Math.abs(t - at) <= 5_000)) return;
    if (this.#expiry !== undefined && Math.abs(this.#expiry - at) <= 5_000) this.#expiry = undefined;
    this.#record(at);
  }

  status(): DeadManStatus {
    const now = this.#now();
    this.#observe(now);
    return {
      running: this.#running,
      healthy: this.#healthy,
      expiry: this.#expiry,
      triggersToday: this.#triggersOn(dayOf(now)),
      budgetSpent: this.#budgetSpent(now),
      lastError: this.#lastError,
      unhealthyReason: this.#unhealthyReason,
    };
  }

  /** One renewal now (then on schedule). Concurrent calls share the arm in flight. */
  renewNow(): Promise<ArmOutcome> {
    if (this.#inFlight) return this.#inFlight;
    const p = this.#arm().finally(() => {
      this.#inFlight = undefined;
    });
    this.#inFlight = p;
    return p;
  }

  /** Resolves when no arm is in flight (tests step clocks between renewals). */
  async settled(): Promise<void> {
    while (this.#inFlight) await this.#inFlight.catch(() => undefined);
  }

  async #arm(): Promise<ArmOutcome> {
    this.#clearTimer();
    if (!this.#running) return { kind: 'skipped', reason: 'stopped' };
    if (!this.#healthy) return { kind: 'skipped', reason: 'unhealthy' };
    const now = this.#now();
    this.#observe(now);
    if (this.#budgetSpent(now)) {
      const triggersToday = this.#triggersOn(dayOf(now));
      this.#log.error({ triggersToday, max: this.#cfg.maxTriggersPerDay }, 'dead-man switch NOT armed: the daily trigger budget is spent');
      // Tomorrow (UTC) the budget is back: look again then, or sooner on the usual period.
      this.#schedule(Math.min(this.#cfg.renewEveryMs, (dayOf(now) + 1) * DAY_MS - now + 1));
      return { kind: 'budget', triggersToday };
    }
    const time = now + this.#cfg.horizonMs;
    let r: { ok: true } | { ok: false; error: string };
    try {
      r = await this.#venue.scheduleCancel(time, { expiresAfter: now + this.#cfg.expiresAfterMs });
    } catch (e) {
      r = { ok: false, error: e instanceof Error ? e.message : String(e) };
    }
    if (!this.#running || !this.#healthy) {
      // Stopped or unhealthy while the arm was in flight: keep what the venue confirmed, schedule nothing.
      if (r.ok) this.#expiry = time;
      return r.ok ? { kind: 'armed', expiry: time } : { kind: 'failed', error: r.error };
    }
    if (r.ok) {
      this.#expiry = time;
      this.#lastError = undefined;
      this.#schedule(this.#cfg.renewEveryMs);
      return { kind: 'armed', expiry: time };
    }
    this.#lastError = r.error;
    if (/too many/i.test(r.error)) this.#spentDay = dayOf(this.#now());
    this.#log.warn({ error: r.error, expiry: this.#expiry }, 'dead-man switch: arming failed; retrying');
    this.#schedule(this.#cfg.retryMs);
    return { kind: 'failed', error: r.error };
  }

  /** An armed time that passed without being moved: the venue fired then. */
  #observe(now: number): void {
    if (this.#expiry === undefined || now < this.#expiry) return;
    const at = this.#expiry;
    this.#expiry = undefined;
    if (this.#triggers.some((t) => Math.abs(t - at) <= 5_000)) return;
    this.#record(at);
  }

  #record(at: number): void {
    this.#triggers.push(at);
    // Only today's and yesterday's matter; keep the log short.
    const floor = (dayOf(this.#now()) - 1) * DAY_MS;
    this.#triggers = this.#triggers.filter((t) => t >= floor);
    this.#log.warn({ at, triggersToday: this.#triggersOn(dayOf(this.#now())) }, 'dead-man switch fired: the venue cancelled every open order');
    try {
      this.#triggerLog?.save(this.#triggers);
    } catch (e) {
      this.#log.error({ err: e instanceof Error ? e.message : String(e) }, 'dead-man switch: saving the trigger log failed');
    }
  }

  #triggersOn(day: number): number {
    return this.#triggers.filter((t) => dayOf(t) === day).length;
  }

  #budgetSpent(now: number): boolean {
    return this.#spentDay === dayOf(now) || this.#triggersOn(dayOf(now)) >= this.#cfg.maxTriggersPerDay;
  }

  #schedule(ms: number): void {
    this.#clearTimer();
    if (!this.#running || !this.#healthy) return;
    this.#timer = this.#timers.set(() => {
      this.#timer = undefined;
      void this.renewNow();
    }, ms);
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    this.#timers.clear(this.#timer);
    this.#timer = undefined;
  }
}
