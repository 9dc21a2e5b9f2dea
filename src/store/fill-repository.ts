/**
 * Fills, deduplicated by the venue's trade id: the primary key is (tid, oid), so a fill seen on
 * the WebSocket, again in the REST backstop and again after a restart is recorded once.
 *
 * Invariants: `insert` is synchronous and idempotent (a duplicate is a `false`, not an error);
 * fills of orders keel did not place are kept too (no foreign key to orders).
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely } from 'kysely';
import type { Cloid, Fill } from '../domain/types.ts';
import { boolFromDb, boolToDb, decFromDb, decToDb, oneOf, undefIfNull } from './codec.ts';
import { StoreError } from './errors.ts';
import type { Database, FillsTable } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

export class FillRepository {
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;
  readonly #insert: BetterSqlite3.Statement;

  constructor(deps: { readonly raw: BetterSqlite3.Database; readonly db: Kysely<Database>; readonly exec: SyncExecutor }) {
    this.#db = deps.db;
    this.#exec = deps.exec;
    this.#insert = deps.raw.prepare(
      `INSERT INTO fills (tid, oid, cloid, coin, side, px, sz, fee, closed_pnl, time, crossed)
       VALUES (@tid, @oid, @cloid, @coin, @side, @px, @sz, @fee, @closed_pnl, @time, @crossed)
       ON CONFLICT (tid, oid) DO NOTHING`,
    );
  }

  /**
   * Records a fill. Returns true when it is new, false when this (tid, oid) was already recorded
   * (then nothing is written: apply a fill's effects only when this returns true).
   */
  insert(fill: Fill): boolean {
    if (!Number.isSafeInteger(fill.tid) || !Number.isSafeInteger(fill.oid)) throw new StoreError('invalid_input', 'fill tid / oid must be integers', fill);
    const r = this.#insert.run({
      tid: fill.tid,
      oid: fill.oid,
      cloid: fill.cloid ?? null,
      coin: fill.coin,
      side: fill.side,
      px: decToDb(fill.px),
      sz: decToDb(fill.sz),
      fee: decToDb(fill.fee),
      closed_pnl: decToDb(fill.closedPnl),
      time: fill.time,
      crossed: boolToDb(fill.crossed),
    });
    return r.changes === 1;
  }

  has(tid: number, oid: number): boolean {
    return this.#exec.first(this.#db.selectFrom('fills').select('tid').where('tid', '=', tid).where('oid', '=', oid)) !== undefined;
  }

  /** Fills at or after `time`, oldest first. */
  since(time: number): Fill[] {
    return this.#exec.all(this.#db.selectFrom('fills').selectAll().where('time', '>=', time).orderBy('time').orderBy('tid').orderBy('oid')).map(fillFromRow);
  }

  byCloid(cloid: Cloid): Fill[] {
    return this.#exec.all(this.#db.selectFrom('fills').selectAll().where('cloid', '=', cloid).orderBy('time').orderBy('tid')).map(fillFromRow);
  }

  byOid(oid: number): Fill[] {
    return this.#exec.all(this.#db.selectFrom('fills').selectAll().where('oid', '=', oid).orderBy('time').orderBy('tid')).map(fillFromRow);
  }

  /** Newest fill time recorded, or undefined when none: the REST backfill resumes from here. */
  latestTime(): number | undefined {
    const row = this.#exec.first(this.#db.selectFrom('fills').select((eb) => eb.fn.max('time').as('t')));
    return row?.t ?? undefined;
  }
}

export function fillFromRow(row: FillsTable): Fill {
  return {
    tid: row.tid,
    oid: row.oid,
    cloid: undefIfNull(row.cloid),
    coin: row.coin,
    side: oneOf(row.side, ['buy', 'sell'] as const, 'fills.side'),
    px: decFromDb(row.px, 'fills.px'),
    sz: decFromDb(row.sz, 'fills.sz'),
    fee: decFromDb(row.fee, 'fills.fee'),
    closedPnl: decFromDb(row.closed_pnl, 'fills.closed_pnl'),
    time: row.time,
    crossed: boolFromDb(row.crossed, 'fills.crossed'),
  };
}
