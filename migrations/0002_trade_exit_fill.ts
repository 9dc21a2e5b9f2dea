/**
 * 0002: a trade is keyed by the exit fill that realised it, not by its (entry, exit) cloids.
 * FROZEN once landed.
 *
 * Why: one exit order can fill in several pieces, each realising its own part of the PnL; 0001's
 * unique (entry_cloid, exit_cloid) index would silently drop all but the first. The exit fill's
 * (tid, oid), the fills table's own key, identifies a realisation exactly, so replaying a fill
 * after a crash still cannot record its trade twice.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS trades_close_once`.execute(db);
  await db.schema.alterTable('trades').addColumn('exit_tid', 'integer').execute();
  await db.schema.alterTable('trades').addColumn('exit_oid', 'integer').execute();
  await sql`CREATE UNIQUE INDEX trades_exit_fill_once ON trades (exit_tid, exit_oid) WHERE exit_tid IS NOT NULL AND exit_oid IS NOT NULL`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX IF EXISTS trades_exit_fill_once`.execute(db);
  await db.schema.alterTable('trades').dropColumn('exit_oid').execute();
  await db.schema.alterTable('trades').dropColumn('exit_tid').execute();
  await sql`CREATE UNIQUE INDEX trades_close_once ON trades (entry_cloid, exit_cloid) WHERE entry_cloid IS NOT NULL AND exit_cloid IS NOT NULL`.execute(db);
}
