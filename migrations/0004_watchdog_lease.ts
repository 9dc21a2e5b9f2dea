/**
 * 0004: the lease that decides who may act on the account: the runtime while it heart-beats, the
 * independent watchdog once the runtime's lease has expired. FROZEN once landed.
 *
 * One row per lease name (keel uses 'trading'). `epoch` grows by one each time the holder changes,
 * a fencing token: a holder that finds another epoch than its own has been taken over.
 * `released_at` is set by a holder that stops cleanly, so a released lease is free without meaning
 * that its holder hung (the watchdog acts only on an expired, unreleased lease).
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('lease')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('epoch', 'integer', (c) => c.notNull().check(sql`epoch >= 1`))
    .addColumn('acquired_at', 'integer', (c) => c.notNull())
    .addColumn('heartbeat_at', 'integer', (c) => c.notNull())
    .addColumn('expires_at', 'integer', (c) => c.notNull())
    .addColumn('released_at', 'integer')
    .execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('lease').execute();
}
