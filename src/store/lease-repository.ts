/**
 * The lease (migration 0004): who may act on the account. The runtime renews it every few seconds
 * while it is alive; the independent watchdog (src/ops/watchdog-process.ts) takes it over only
 * once it has expired, and only then cancels and flattens. So a healthy runtime and a watchdog
 * never both act, two watchdogs never both act, and a runtime that comes back from a hang finds
 * the lease gone and stops instead of trading on state the watchdog has changed under it.
 *
 * Invariants:
 * - Every read-decide-write is one `BEGIN IMMEDIATE` transaction: two processes deciding at once
 *   are serialised by SQLite, and the second sees the first's write.
 * - `renew` never takes a lease another holder has (even an expired one): only `tryTakeOver`
 *   does, and it takes only a free lease (expired, released) or one `preempt` allows.
 * - `epoch` grows by one each time the holder changes (a fencing token), never otherwise.
 * - Statements are prepared once per connection and kept for the life of the process
 *   (native-lifetime.ts): use `leasesOf(store)`, which caches one repository per connection.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { StoreError } from './errors.ts';

/** The lease keel's runtime and watchdog contend for. */
export const TRADING_LEASE = 'trading';

export interface Lease {
  readonly name: string;
  readonly holder: string;
  /** +1 each time the holder changes. */
  readonly epoch: number;
  /** When the current holder took it. */
  readonly acquiredAt: number;
  /** The holder's last renewal: its heartbeat. */
  readonly heartbeatAt: number;
  readonly expiresAt: number;
  /** Set when the holder let it go cleanly. */
  readonly releasedAt: number | undefined;
}

export type LeaseResult =
  /** `acquired`: this call made the holder the holder (a new epoch, or the first lease ever). */
  | { readonly ok: true; readonly lease: Lease; readonly acquired: boolean }
  | { readonly ok: false; readonly current: Lease; readonly reason: 'held_by_other' };

export interface TakeOverOptions {
  /** Lifetime of the taken lease (default 30 s). */
  readonly ttlMs?: number;
  /**
   * Allows taking a lease that is neither expired nor released (e.g. the boot of a runtime whose
   * predecessor on this host is provably dead). Evaluated inside the transaction.
   */
  readonly preempt?: (current: Lease) => boolean;
}

/** Free: released by its holder, or expired at `now`. */
export function leaseFree(lease: Lease, now: number): boolean {
  return lease.releasedAt !== undefined || lease.expiresAt <= now;
}

interface LeaseRow {
  name: unknown;
  holder: unknown;
  epoch: unknown;
  acquired_at: unknown;
  heartbeat_at: unknown;
  expires_at: unknown;
  released_at: unknown;
}

const int = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

function fromRow(row: LeaseRow): Lease {
  const ok =
    typeof row.name === 'string' &&
    typeof row.holder === 'string' &&
    int(row.epoch) &&
    row.epoch >= 1 &&
    int(row.acquired_at) &&
    int(row.heartbeat_at) &&
    int(row.expires_at) &&
    (row.released_at === null || int(row.released_at));
  if (!ok) throw new StoreError('corrupt_row', `lease row is malformed: ${JSON.stringify(row)}`, row);
  return {
    name: row.name as string,
    holder: row.holder as string,
    epoch: row.epoch as number,
    acquiredAt: row.acquired_at as number,
    heartbeatAt: row.heartbeat_at as number,
    expiresAt: row.expires_at as number,
    releasedAt: row.released_at === null ? undefined : (row.released_at as number),
  };
}

function checkHolder(holder: string): void {
  if (typeof holder !== 'string' || holder.length === 0 || holder.length > 200) throw new StoreError('invalid_input', `lease holder must be a non-empty string of at most 200 characters, got ${JSON.stringify(holder)}`);
}
function checkTime(what: string, v: number, min: number): void {
  if (!Number.isSafeInteger(v) || v < min) throw new StoreError('invalid_input', `lease ${what} must be an integer ≥ ${min}, got ${String(v)}`);
}

const DEFAULT_TAKEOVER_TTL_MS = 30_000;

export class LeaseRepository {
  readonly #name: string;
  readonly #select: BetterSqlite3.Statement;
  readonly #insert: BetterSqlite3.Statement;
  readonly #extend: BetterSqlite3.Statement;
  readonly #take: BetterSqlite3.Statement;
  readonly #release: BetterSqlite3.Statement;
  readonly #renewTx: BetterSqlite3.Transaction<(holder: string, ttlMs: number, now: number) => LeaseResult>;
  readonly #takeTx: BetterSqlite3.Transaction<(holder: string, now: number, ttlMs: number, preempt: ((l: Lease) => boolean) | undefined) => LeaseResult>;
  readonly #releaseTx: BetterSqlite3.Transaction<(holder: string, now: number) => boolean>;

  /** Prefer `leasesOf(store)`: each construction prepares (and pins) its own statements. */
  constructor(raw: BetterSqlite3.Database, name: string = TRADING_LEASE) {
    this.#name = name;
    this.#select = raw.prepare('SELECT name, holder, epoch, acquired_at, heartbeat_at, expires_at, released_at FROM lease WHERE name = ?');
    this.#insert = raw.prepare('INSERT INTO lease (name, holder, epoch, acquired_at, heartbeat_at, expires_at, released_at) VALUES (?, ?, 1, ?, ?, ?, NULL)');
    this.#extend = raw.prepare('UPDATE lease SET heartbeat_at = ?, expires_at = ?, released_at = NULL WHERE name = ? AND holder = ?');
    this.#take = raw.prepare('UPDATE lease SET holder = ?, epoch = epoch + 1, acquired_at = ?, heartbeat_at = ?, expires_at = ?, released_at = NULL WHERE name = ? AND epoch = ?');
    this.#release = raw.prepare('UPDATE lease SET released_at = ?, expires_at = MIN(expires_at, ?) WHERE name = ? AND holder = ?');

    this.#renewTx = raw.transaction((holder: string, ttlMs: number, now: number): LeaseResult => {
      const cur = this.#read();
      if (cur === undefined) {
        this.#insert.run(this.#name, holder, now, now, now + ttlMs);
        return { ok: true, lease: this.#read()!, acquired: true };
      }
      if (cur.holder !== holder) return { ok: false, current: cur, reason: 'held_by_other' };
      // Never moves the heartbeat back (a late clock), never shortens what was promised.
      this.#extend.run(Math.max(now, cur.heartbeatAt), Math.max(now + ttlMs, cur.releasedAt === undefined ? cur.expiresAt : 0), this.#name, holder);
      return { ok: true, lease: this.#read()!, acquired: false };
    });

    this.#takeTx = raw.transaction((holder: string, now: number, ttlMs: number, preempt: ((l: Lease) => boolean) | undefined): LeaseResult => {
      const cur = this.#read();
      if (cur === undefined) {
        this.#insert.run(this.#name, holder, now, now, now + ttlMs);
        return { ok: true, lease: this.#read()!, acquired: true };
      }
      if (cur.holder === holder) {
        this.#extend.run(Math.max(now, cur.heartbeatAt), now + ttlMs, this.#name, holder);
        return { ok: true, lease: this.#read()!, acquired: false };
      }
      if (!leaseFree(cur, now) && !(preempt?.(cur) ?? false)) return { ok: false, current: cur, reason: 'held_by_other' };
      this.#take.run(holder, now, now, now + ttlMs, this.#name, cur.epoch);
      return { ok: true, lease: this.#read()!, acquired: true };
    });

    this.#releaseTx = raw.transaction((holder: string, now: number): boolean => this.#release.run(now, now, this.#name, holder).changes === 1);
  }

  #read(): Lease | undefined {
    const row = this.#select.get(this.#name) as LeaseRow | undefined;
    return row === undefined ? undefined : fromRow(row);
  }

  /** The lease as stored, or undefined before anyone held it. */
  current(): Lease | undefined {
    return this.#read();
  }

  /**
   * Extends the lease to `now + ttlMs` if `holder` holds it (expired or not: nobody took it), or
   * creates it when none exists. Refused when another holder has it: the caller lost it.
   *
   * @example const r = leases.renew(me, 10_000, Date.now()); if (!r.ok) stopTrading(r.current.holder);
   */
  renew(holder: string, ttlMs: number, now: number): LeaseResult {
    checkHolder(holder);
    checkTime('ttlMs', ttlMs, 1);
    checkTime('time', now, 0);
    return this.#renewTx.immediate(holder, ttlMs, now);
  }

  /**
   * Takes the lease if it is free (none, expired, released), already ours, or `preempt` allows it;
   * the epoch grows when the holder changes. Refused while another holder's lease is live.
   *
   * @example const r = leases.tryTakeOver(me, Date.now(), { ttlMs: 30_000 }); if (r.ok && r.acquired) act();
   */
  tryTakeOver(holder: string, now: number, opts: TakeOverOptions = {}): LeaseResult {
    checkHolder(holder);
    checkTime('time', now, 0);
    const ttlMs = opts.ttlMs ?? DEFAULT_TAKEOVER_TTL_MS;
    checkTime('ttlMs', ttlMs, 1);
    return this.#takeTx.immediate(holder, now, ttlMs, opts.preempt);
  }

  /** Lets the lease go cleanly (it becomes free at once). Returns whether `holder` held it. */
  release(holder: string, now: number): boolean {
    checkHolder(holder);
    checkTime('time', now, 0);
    return this.#releaseTx.immediate(holder, now);
  }
}

const cache = new WeakMap<BetterSqlite3.Database, LeaseRepository>();

/**
 * The lease repository of a store's connection (one per connection, statements prepared once).
 *
 * @example const leases = leasesOf(store); leases.renew(holder, 10_000, now());
 */
export function leasesOf(store: { readonly raw: BetterSqlite3.Database }): LeaseRepository {
  let r = cache.get(store.raw);
  if (r === undefined) {
    r = new LeaseRepository(store.raw);
    cache.set(store.raw, r);
  }
  return r;
}
