/**
 * The lease as its holders use it: holder ids, the runtime's renewal loop, and the pure verdict
 * the independent watchdog reaches from what the database says (src/store/lease-repository.ts
 * holds the rules of the table itself).
 *
 * Invariants:
 *  - A holder id names its kind, host and pid plus a random nonce: a new process is always a new
 *    holder, so a runtime coming back from a hang is told apart from a fresh start.
 *  - The runtime's lease keeper only ever `renew`s once it has acquired the lease: if anybody else
 *    holds it, it reports `onLost` and stops renewing; it never takes a lease back.
 *  - The watchdog acts only on a lease that is held (not released), not its own, and expired for
 *    at least `graceMs`: a released lease means a clean stop, and nothing to rescue.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Lease, LeaseRepository, LeaseResult } from '../store/lease-repository.ts';
import { measureDbWrite } from './watchdog-sampler.ts';
import type { WatchdogEvent } from '../../machines/watchdog.machine.ts';

export type HolderKind = 'runtime' | 'watchdog';

export interface HolderId {
  readonly kind: HolderKind;
  readonly host: string;
  readonly pid: number;
  readonly nonce: string;
}

/** `<kind>:<host>:<pid>:<nonce>`. */
export function holderId(kind: HolderKind, opts: { host?: string; pid?: number; nonce?: string } = {}): string {
  const host = (opts.host ?? hostname()).replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 100) || 'host';
  return `${kind}:${host}:${opts.pid ?? process.pid}:${opts.nonce ?? randomBytes(4).toString('hex')}`;
}

export function parseHolder(id: string): HolderId | undefined {
  const m = /^(runtime|watchdog):([A-Za-z0-9._-]+):(\d+):([0-9a-z]+)$/.exec(id);
  if (!m) return undefined;
  return { kind: m[1] as HolderKind, host: m[2]!, pid: Number(m[3]), nonce: m[4]! };
}

/** Whether a process with this pid exists on this host (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * `preempt` for a runtime's boot: the lease's holder is a runtime on THIS host whose process is
 * gone (a crash or SIGKILL: nobody can be renewing it), so the new runtime need not wait out its
 * TTL. A live holder, a watchdog, or a holder on another host is never preempted.
 */
export function deadLocalRuntime(lease: Lease, opts: { host?: string; alive?: (pid: number) => boolean } = {}): boolean {
  const h = parseHolder(lease.holder);
  const host = (opts.host ?? hostname()).replace(/[^A-Za-z0-9.-]/g, '_').slice(0, 100) || 'host';
  return h !== undefined && h.kind === 'runtime' && h.host === host && !(opts.alive ?? pidAlive)(h.pid);
}

// ---------------------------------------------------------------------------------------------
// The runtime's side
// ---------------------------------------------------------------------------------------------

export interface RuntimeLeaseDeps {
  readonly leases: LeaseRepository;
  readonly holder: string;
  readonly now: () => number;
  /** Lease lifetime (default 10 s): how long a hung runtime keeps the watchdog waiting. */
  readonly ttlMs?: number;
  /** Renewal period (default ttl / 5, so four renewals may fail before it expires). */
  readonly renewEveryMs?: number;
  /** Each renewal as a database write, for the watchdog machine (`watchdog.dbWrite`). */
  readonly onWrite?: (event: WatchdogEvent) => void;
  /** Somebody else holds the lease: stop trading now (the watchdog acted, or another runtime runs). */
  readonly onLost?: (current: Lease) => void;
}

export class RuntimeLease {
  readonly #deps: RuntimeLeaseDeps;
  readonly #ttlMs: number;
  readonly #everyMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #lost = false;
  #epoch: number | undefined;

  constructor(deps: RuntimeLeaseDeps) {
    this.#deps = deps;
    this.#ttlMs = deps.ttlMs ?? 10_000;
    this.#everyMs = deps.renewEveryMs ?? Math.max(100, Math.floor(this.#ttlMs / 5));
    if (this.#everyMs >= this.#ttlMs) throw new Error(`lease renewal every ${this.#everyMs} ms must be shorter than its ${this.#ttlMs} ms lifetime`);
  }

  /**
   * At boot: takes the lease if it is free, or held by a runtime of this host that is dead.
   * Refused while another live process holds it (do not trade).
   */
  acquire(opts: { preempt?: (current: Lease) => boolean } = {}): LeaseResult {
    const r = this.#deps.leases.tryTakeOver(this.#deps.holder, this.#deps.now(), { ttlMs: this.#ttlMs, preempt: opts.preempt ?? ((l) => deadLocalRuntime(l)) });
    if (r.ok) this.#epoch = r.lease.epoch;
    return r;
  }

  /** Renews every `renewEveryMs` until stopped or lost. */
  start(): void {
    if (this.#timer || this.#lost) return;
    this.#timer = setInterval(() => this.renewNow(), this.#everyMs);
    this.#timer.unref();
  }

  /**
   * One renewal. Returns the result, or undefined when the write itself failed (reported through
   * `onWrite`; the lease may still expire if the database stays broken, and then the watchdog acts).
   */
  renewNow(): LeaseResult | undefined {
    if (this.#lost) return undefined;
    const { event, result } = measureDbWrite(this.#deps.now, () => this.#deps.leases.renew(this.#deps.holder, this.#ttlMs, this.#deps.now()));
    this.#deps.onWrite?.(event);
    if (result === undefined) return undefined;
    // Held by someone else, or taken and given back in between (another epoch): either way the
    // world changed under us.
    if (!result.ok || (this.#epoch !== undefined && result.lease.epoch !== this.#epoch)) {
      this.#lost = true;
      this.#stopTimer();
      this.#deps.onLost?.(result.ok ? result.lease : result.current);
      return result;
    }
    this.#epoch = result.lease.epoch;
    return result;
  }

  /** Whether the lease was lost. */
  lost(): boolean {
    return this.#lost;
  }

  /** Stops renewing; `release` (a clean shutdown) frees the lease so no watchdog mistakes it for a hang. */
  stop(opts: { release?: boolean } = {}): void {
    this.#stopTimer();
    if (opts.release && !this.#lost) {
      try {
        this.#deps.leases.release(this.#deps.holder, this.#deps.now());
      } catch {
        // The lease then expires on its own, and a watchdog acts: the safe direction.
      }
    }
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// The watchdog's side
// ---------------------------------------------------------------------------------------------

export type LeaseVerdict =
  | { readonly kind: 'none' }
  | { readonly kind: 'fresh'; readonly lease: Lease; readonly expiresInMs: number }
  | { readonly kind: 'released'; readonly lease: Lease }
  | { readonly kind: 'mine'; readonly lease: Lease }
  /** Expired, but not yet for `graceMs`. */
  | { readonly kind: 'expiring'; readonly lease: Lease; readonly expiredForMs: number }
  | { readonly kind: 'act'; readonly lease: Lease; readonly silentForMs: number };

/** What the watchdog should do about the lease at `now`. Pure. */
export function judgeLease(lease: Lease | undefined, me: string, now: number, graceMs: number): LeaseVerdict {
  if (lease === undefined) return { kind: 'none' };
  if (lease.holder === me) return { kind: 'mine', lease };
  if (lease.releasedAt !== undefined) return { kind: 'released', lease };
  if (now < lease.expiresAt) return { kind: 'fresh', lease, expiresInMs: lease.expiresAt - now };
  const expiredForMs = now - lease.expiresAt;
  if (expiredForMs < graceMs) return { kind: 'expiring', lease, expiredForMs };
  return { kind: 'act', lease, silentForMs: now - lease.heartbeatAt };
}
