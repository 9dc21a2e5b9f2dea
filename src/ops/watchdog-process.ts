/**
 * The independent watchdog process (`keel watchdog`): its own process, its own venue connection,
 * the runtime's database. It reads the trading lease the runtime renews every few seconds; while
 * the lease is fresh (or released by a clean stop) it does nothing at all. Once the lease has been
 * expired for `graceMs`, it takes the lease over, cancels every order and, per policy, flattens
 * (src/ops/flatten.ts), writes an audit entry before and after, logs one alert line (level fatal,
 * msg 'watchdog acted'), and releases the lease for the next runtime.
 *
 * Invariants:
 *  - It acts only after winning `tryTakeOver`, one IMMEDIATE transaction: a healthy runtime, a
 *    second watchdog, or a runtime that comes back mid-action never acts at the same time (the
 *    runtime's next renewal is refused: it must stop).
 *  - While acting it renews its own lease, so a long flatten does not let another watchdog in.
 *  - Every close intent is committed to the store before it is sent (flatten's `commitIntent`).
 *  - A failed database read is logged and retried, never taken as "the runtime is dead".
 */
import { setTimeout as sleepTimer } from 'node:timers/promises';
import type { CancelResult, VenueOrder } from '../domain/types.ts';
import type { Store } from '../store/index.ts';
import { leasesOf, type Lease } from '../store/lease-repository.ts';
import type { ActOptions } from '../venue/port.ts';
import { flatten, flattenReportToJson, type FlattenLogger, type FlattenReport, type FlattenVenue, type OidCancelling } from './flatten.ts';
import { judgeLease, type LeaseVerdict } from './watchdog-lease.ts';
import { flattenJournal } from './flatten-journal.ts';

export const WATCHDOG_POLICIES = ['cancel', 'flatten'] as const;
export type WatchdogPolicy = (typeof WATCHDOG_POLICIES)[number];

/** The alert line's message: scripts and alert rules match on it. */
export const WATCHDOG_ACTED = 'watchdog acted';

/** The pino subset the watchdog logs through (fatal for the alert). */
export interface WatchdogLogger extends FlattenLogger {
  fatal(obj: object, msg: string): void;
}

export interface WatchdogProcessOptions {
  readonly store: Store;
  readonly venue: FlattenVenue;
  /** This watchdog's lease holder id (src/ops/watchdog-lease.ts `holderId('watchdog')`). */
  readonly holder: string;
  readonly policy: WatchdogPolicy;
  readonly now: () => number;
  readonly log: WatchdogLogger;
  /** How often the lease is read (default 1 s). */
  readonly pollMs?: number;
  /** How long the lease must have been expired before acting (default 5 s). */
  readonly graceMs?: number;
  /** Lifetime of the watchdog's own lease while it acts, renewed every third of it (default 30 s). */
  readonly leaseTtlMs?: number;
  /** Stop after the first action (tests, and a one-shot run under a supervisor such as systemd). */
  readonly once?: boolean;
  /** Stops watching (SIGTERM). */
  readonly signal?: AbortSignal;
  /** Waits between polls (default: timers/promises, aborted by `signal`). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly deadlineMs?: number;
  readonly slippagePct?: number;
  readonly cancelByOid?: OidCancelling['cancelByOid'];
  readonly expiresAfterMs?: number;
  readonly requestTimeoutMs?: number;
}

export interface WatchdogAction {
  readonly at: number;
  readonly policy: WatchdogPolicy;
  /** The runtime's lease as it was when the watchdog took it. */
  readonly from: Lease;
  readonly silentForMs: number;
  /** The venue reported no open order (cancel) / no order and no position (flatten). */
  readonly ok: boolean;
  readonly flatten?: FlattenReport;
  readonly cancel?: CancelAllReport;
}

export interface WatchdogOutcome {
  readonly actions: readonly WatchdogAction[];
  readonly stoppedBy: 'once' | 'signal';
}

export interface CancelAllReport {
  readonly done: boolean;
  readonly cancelled: number;
  readonly loops: number;
  readonly remaining: readonly VenueOrder[];
  readonly reason?: string;
}

const abortableSleep = async (ms: number, signal?: AbortSignal): Promise<void> => {
  try {
    await sleepTimer(ms, undefined, signal ? { signal } : {});
  } catch {
    // aborted: the loop checks the signal
  }
};

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Cancels every open order (by cloid, or by oid where the caller can), re-reading until the venue
 * lists none or the deadline passes. Never throws for venue trouble.
 */
export async function cancelAllOrders(
  venue: FlattenVenue,
  o: { readonly now: () => number; readonly deadlineMs: number; readonly log: FlattenLogger; readonly sleep: (ms: number) => Promise<void>; readonly cancelByOid?: OidCancelling['cancelByOid']; readonly expiresAfterMs?: number; readonly signal?: AbortSignal },
): Promise<CancelAllReport> {
  const deadline = o.now() + o.deadlineMs;
  const byOid = o.cancelByOid ?? venue.cancelByOid?.bind(venue);
  let cancelled = 0;
  let loops = 0;
  let remaining: VenueOrder[] = [];
  let reason: string | undefined;
  while (o.now() < deadline && !o.signal?.aborted) {
    loops++;
    let orders: VenueOrder[];
    try {
      orders = await venue.openOrders();
    } catch (e) {
      reason = `open orders read failed: ${errText(e)}`;
      o.log.warn({ err: errText(e), loop: loops }, 'watchdog: open orders read failed, will retry');
      await o.sleep(Math.min(1_000, 100 * loops));
      continue;
    }
    remaining = orders;
    if (orders.length === 0) return { done: true, cancelled, loops, remaining: [] };
    const act = (): ActOptions => ({ expiresAfter: o.now() + (o.expiresAfterMs ?? 5_000) });
    for (const ord of orders) {
      let r: CancelResult;
      try {
        if (ord.cloid !== undefined) r = await venue.cancel(ord.coin, ord.cloid, act());
        else if (byOid) r = await byOid(ord.coin, ord.oid, act());
        else r = { kind: 'unknown', cause: 'no cloid and no cancel-by-oid' };
      } catch (e) {
        r = { kind: 'unknown', cause: errText(e) };
      }
      if (r.kind === 'cancelled') cancelled++;
      else if (r.kind === 'unknown') reason = `cancel of ${ord.coin} oid ${ord.oid}: ${r.cause}`;
    }
    await o.sleep(Math.min(1_000, 100 * loops));
  }
  return { done: false, cancelled, loops, remaining, reason: reason ?? (o.signal?.aborted ? 'stopped' : 'deadline passed') };
}

/**
 * Watches the lease and acts when the runtime stopped renewing it.
 *
 * @example
 * const out = await runWatchdog({ store, venue, holder: holderId('watchdog'), policy: 'flatten', now: Date.now, log });
 */
export async function runWatchdog(opts: WatchdogProcessOptions): Promise<WatchdogOutcome> {
  const leases = leasesOf(opts.store);
  const pollMs = opts.pollMs ?? 1_000;
  const graceMs = opts.graceMs ?? 5_000;
  const ttlMs = opts.leaseTtlMs ?? 30_000;
  const sleep = opts.sleep ?? abortableSleep;
  const log = opts.log;
  const actions: WatchdogAction[] = [];
  let last: LeaseVerdict['kind'] | 'error' | undefined;

  log.info({ holder: opts.holder, policy: opts.policy, pollMs, graceMs }, 'watchdog watching the runtime’s lease');
  while (!opts.signal?.aborted) {
    const now = opts.now();
    let verdict: LeaseVerdict;
    try {
      verdict = judgeLease(leases.current(), opts.holder, now, graceMs);
    } catch (e) {
      if (last !== 'error') log.error({ err: errText(e) }, 'watchdog: reading the lease failed; will retry');
      last = 'error';
      await sleep(pollMs, opts.signal);
      continue;
    }
    if (verdict.kind !== last) {
      const l = 'lease' in verdict ? verdict.lease : undefined;
      log.info({ verdict: verdict.kind, holder: l?.holder, heartbeatAt: l?.heartbeatAt, expiresAt: l?.expiresAt }, `watchdog: lease ${verdict.kind}`);
      last = verdict.kind;
    }
    if (verdict.kind === 'act') {
      const taken = leases.tryTakeOver(opts.holder, now, { ttlMs });
      if (!taken.ok || !taken.acquired) {
        log.info({ holder: taken.ok ? taken.lease.holder : taken.current.holder }, 'watchdog: another process took the lease first; standing by');
      } else {
        actions.push(await act(opts, verdict.lease, verdict.silentForMs, ttlMs));
        last = undefined;
        if (opts.once) return { actions, stoppedBy: 'once' };
      }
    }
    await sleep(pollMs, opts.signal);
  }
  return { actions, stoppedBy: 'signal' };
}

async function act(opts: WatchdogProcessOptions, from: Lease, silentForMs: number, ttlMs: number): Promise<WatchdogAction> {
  const { store, venue, log, now } = opts;
  const leases = leasesOf(store);
  const at = now();
  const who = { holder: opts.holder, policy: opts.policy, from: from.holder, epoch: from.epoch, heartbeatAt: from.heartbeatAt, expiresAt: from.expiresAt, silentForMs };
  log.error(who, 'watchdog: the runtime stopped renewing its lease; taking over');
  store.audit.append({ time: at, actor: 'watchdog', action: 'watchdog.takeover', detail: who });

  // Hold the lease for as long as the action takes.
  const keep = setInterval(() => {
    try {
      const r = leases.renew(opts.holder, ttlMs, now());
      if (!r.ok) log.error({ holder: r.current.holder }, 'watchdog: lost its lease while acting');
    } catch (e) {
      log.error({ err: errText(e) }, 'watchdog: renewing its lease failed');
    }
  }, Math.max(100, Math.floor(ttlMs / 3)));
  keep.unref();

  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const deadlineMs = opts.deadlineMs ?? 60_000;
  let action: WatchdogAction;
  try {
    if (opts.policy === 'flatten') {
      const report = await flatten(venue, {
        deadlineMs,
        slippagePct: opts.slippagePct ?? 1,
        now,
        sleep,
        log,
        ...flattenJournal(store, now),
        ...(opts.cancelByOid ? { cancelByOid: opts.cancelByOid } : {}),
        ...(opts.expiresAfterMs ? { expiresAfterMs: opts.expiresAfterMs } : {}),
        ...(opts.requestTimeoutMs ? { requestTimeoutMs: opts.requestTimeoutMs } : {}),
      });
      action = { at, policy: 'flatten', from, silentForMs, ok: report.flat, flatten: report };
    } else {
      const report = await cancelAllOrders(venue, { now, deadlineMs, log, sleep, ...(opts.cancelByOid ? { cancelByOid: opts.cancelByOid } : {}), ...(opts.expiresAfterMs ? { expiresAfterMs: opts.expiresAfterMs } : {}) });
      action = { at, policy: 'cancel', from, silentForMs, ok: report.done, cancel: report };
    }
  } catch (e) {
    action = { at, policy: opts.policy, from, silentForMs, ok: false };
    log.error({ err: errText(e) }, 'watchdog: the action failed');
  } finally {
    clearInterval(keep);
  }

  const summary = action.flatten
    ? flattenReportToJson(action.flatten)
    : action.cancel
      ? { done: action.cancel.done, cancelled: action.cancel.cancelled, loops: action.cancel.loops, remaining: action.cancel.remaining.length, reason: action.cancel.reason ?? null }
      : { error: 'action failed' };
  try {
    store.audit.append({ time: now(), actor: 'watchdog', action: 'watchdog.result', detail: { ...who, ok: action.ok, ...summary } });
  } catch (e) {
    log.error({ err: errText(e) }, 'watchdog: writing the audit entry failed');
  }
  log.fatal({ ...who, ok: action.ok, result: summary }, WATCHDOG_ACTED);
  // Free for the next runtime; the one that hung is refused by holder, whatever the expiry.
  try {
    leases.release(opts.holder, now());
  } catch (e) {
    log.error({ err: errText(e) }, 'watchdog: releasing its lease failed (it expires on its own)');
  }
  return action;
}

