/**
 * 0003: the black box, an append-only, hash-chained log of every input and decision.
 * FROZEN once landed.
 *
 * `blackbox.seq` is the rowid (INTEGER PRIMARY KEY) assigned by the recorder, never by SQLite, so a
 * gap is evidence of a deleted row. `blackbox_meta` is a single row holding the chain's two ends:
 * the anchor (seq and hash of the last row pruned by retention; 0 and 64 zeros before any) from
 * which the first remaining row must link, and the head (last seq and hash committed), so a
 * truncated tail is detectable too. Both are updated in the same transaction as the rows.
 * No index on time: appends stay cheap; time lookups bisect on seq (time grows with seq).
 */
import { sql, type Kysely } from 'kysely';

const GENESIS = '0'.repeat(64);

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('blackbox')
    .addColumn('seq', 'integer', (c) => c.primaryKey())
    .addColumn('time', 'integer', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull().check(sql`kind IN ('input', 'decision')`))
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('blackbox_meta')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('anchor_seq', 'integer', (c) => c.notNull())
    .addColumn('anchor_hash', 'text', (c) => c.notNull())
    .addColumn('head_seq', 'integer', (c) => c.notNull())
    .addColumn('head_hash', 'text', (c) => c.notNull())
    .execute();
  await sql`INSERT INTO blackbox_meta (id, anchor_seq, anchor_hash, head_seq, head_hash) VALUES (1, 0, ${GENESIS}, 0, ${GENESIS})`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.dropTable('blackbox_meta').execute();
  await db.schema.dropTable('blackbox').execute();
}
