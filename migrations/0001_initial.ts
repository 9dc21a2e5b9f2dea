/**
 * 0001: keel's domain tables. FROZEN: never edit once landed; add 0002_… instead.
 *
 * Conventions: decimals are TEXT in wire form (never REAL: no float ever holds a price, size or
 * amount); times are INTEGER ms since the epoch; booleans are INTEGER 0/1; JSON is TEXT.
 * CHECK constraints cover the closed vocabularies that are the venue's or the lifecycle's own
 * (order state, side, tif, tpsl, direction, mode); vocabularies that will grow (order kind,
 * position stage) are validated by the repositories instead, so growing them needs no table
 * rebuild.
 */
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('runtime_state')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('orders')
    .addColumn('cloid', 'text', (c) => c.primaryKey().check(sql`cloid GLOB '0x[0-9a-f]*' AND length(cloid) = 34`))
    // The cloid counter value this order consumed: UNIQUE makes reuse impossible at the database level.
    .addColumn('seq', 'integer', (c) => c.notNull().unique())
    .addColumn('coin', 'text', (c) => c.notNull())
    .addColumn('asset_id', 'integer', (c) => c.notNull())
    .addColumn('side', 'text', (c) => c.notNull().check(sql`side IN ('buy', 'sell')`))
    .addColumn('sz', 'text', (c) => c.notNull())
    .addColumn('px', 'text', (c) => c.notNull())
    .addColumn('reduce_only', 'integer', (c) => c.notNull().check(sql`reduce_only IN (0, 1)`))
    .addColumn('tif', 'text', (c) => c.notNull().check(sql`tif IN ('Gtc', 'Ioc', 'Alo')`))
    .addColumn('trigger_px', 'text')
    .addColumn('tpsl', 'text', (c) => c.check(sql`tpsl IS NULL OR tpsl IN ('tp', 'sl')`))
    .addColumn('is_market', 'integer', (c) => c.check(sql`is_market IS NULL OR is_market IN (0, 1)`))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('parent_cloid', 'text', (c) => c.references('orders.cloid'))
    .addColumn('created_at', 'integer', (c) => c.notNull())
    .addColumn('expires_after', 'integer')
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state IN ('intent', 'submitting', 'resting', 'partially_filled', 'filled', 'cancelling', 'cancelled', 'rejected', 'unknown')`),
    )
    .addColumn('oid', 'integer')
    .addColumn('filled_sz', 'text', (c) => c.notNull().defaultTo('0'))
    .addColumn('avg_px', 'text')
    .addColumn('last_error', 'text')
    .addColumn('updated_at', 'integer', (c) => c.notNull())
    .addColumn('submitted_at', 'integer')
    .addColumn('resolved_at', 'integer')
    .addCheckConstraint('orders_trigger_complete', sql`(trigger_px IS NULL) = (tpsl IS NULL) AND (trigger_px IS NULL) = (is_market IS NULL)`)
    .execute();
  // What boot must resolve: a partial index keeps the lookup cheap however long the history grows.
  await sql`CREATE INDEX orders_unresolved ON orders (seq) WHERE state NOT IN ('filled', 'cancelled', 'rejected')`.execute(db);
  await db.schema.createIndex('orders_oid').on('orders').column('oid').execute();
  await db.schema.createIndex('orders_parent').on('orders').column('parent_cloid').execute();
  await db.schema.createIndex('orders_coin_created').on('orders').columns(['coin', 'created_at']).execute();

  await db.schema
    .createTable('fills')
    .addColumn('tid', 'integer', (c) => c.notNull())
    .addColumn('oid', 'integer', (c) => c.notNull())
    // No foreign key: fills of orders keel did not place (manual, external) are recorded too.
    .addColumn('cloid', 'text')
    .addColumn('coin', 'text', (c) => c.notNull())
    .addColumn('side', 'text', (c) => c.notNull().check(sql`side IN ('buy', 'sell')`))
    .addColumn('px', 'text', (c) => c.notNull())
    .addColumn('sz', 'text', (c) => c.notNull())
    .addColumn('fee', 'text', (c) => c.notNull())
    .addColumn('closed_pnl', 'text', (c) => c.notNull())
    .addColumn('time', 'integer', (c) => c.notNull())
    .addColumn('crossed', 'integer', (c) => c.notNull().check(sql`crossed IN (0, 1)`))
    .addPrimaryKeyConstraint('fills_pk', ['tid', 'oid'])
    .execute();
  await db.schema.createIndex('fills_time').on('fills').columns(['time', 'tid']).execute();
  await db.schema.createIndex('fills_cloid').on('fills').column('cloid').execute();
  await db.schema.createIndex('fills_oid').on('fills').column('oid').execute();

  await db.schema
    .createTable('positions')
    .addColumn('coin', 'text', (c) => c.primaryKey())
    // Signed: + long, − short.
    .addColumn('szi', 'text', (c) => c.notNull())
    .addColumn('entry_px', 'text', (c) => c.notNull())
    .addColumn('entry_cloid', 'text')
    .addColumn('opened_at', 'integer')
    // Fees paid on the entry fills so far: the closing trade's net PnL needs them.
    .addColumn('entry_fees', 'text', (c) => c.notNull().defaultTo('0'))
    .addColumn('stage', 'text', (c) => c.notNull())
    .addColumn('stop_cloid', 'text')
    .addColumn('tp_cloids', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('initial_stop_px', 'text')
    .addColumn('take_profit_px', 'text')
    .addColumn('r_unit', 'text')
    .addColumn('trail_distance', 'text')
    .addColumn('trail_activate_px', 'text')
    .addColumn('trail_extreme_px', 'text')
    .addColumn('updated_at', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('trades')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('coin', 'text', (c) => c.notNull())
    .addColumn('direction', 'text', (c) => c.notNull().check(sql`direction IN ('long', 'short')`))
    .addColumn('sz', 'text', (c) => c.notNull())
    .addColumn('entry_px', 'text', (c) => c.notNull())
    .addColumn('exit_px', 'text', (c) => c.notNull())
    .addColumn('gross_pnl', 'text', (c) => c.notNull())
    .addColumn('fees', 'text', (c) => c.notNull())
    .addColumn('net_pnl', 'text', (c) => c.notNull())
    .addColumn('opened_at', 'integer', (c) => c.notNull())
    .addColumn('closed_at', 'integer', (c) => c.notNull())
    .addColumn('entry_cloid', 'text')
    .addColumn('exit_cloid', 'text')
    .execute();
  await db.schema.createIndex('trades_closed_at').on('trades').column('closed_at').execute();
  // A close is recorded once: replaying the same (entry, exit) pair after a crash is a no-op, not a
  // second trade. Partial closes of one entry by different exit orders stay distinct rows.
  await sql`CREATE UNIQUE INDEX trades_close_once ON trades (entry_cloid, exit_cloid) WHERE entry_cloid IS NOT NULL AND exit_cloid IS NOT NULL`.execute(db);

  await db.schema
    .createTable('equity_snapshots')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('time', 'integer', (c) => c.notNull())
    .addColumn('account_value', 'text', (c) => c.notNull())
    .addColumn('margin_used', 'text', (c) => c.notNull())
    .addColumn('unrealized_pnl', 'text', (c) => c.notNull())
    .addColumn('realized_pnl_day', 'text', (c) => c.notNull())
    .addColumn('drawdown', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('equity_snapshots_time').on('equity_snapshots').column('time').execute();

  await db.schema
    .createTable('mode_transitions')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('time', 'integer', (c) => c.notNull())
    .addColumn('from_mode', 'text', (c) => c.check(sql`from_mode IS NULL OR from_mode IN ('Normal', 'Degraded', 'Critical', 'Emergency')`))
    .addColumn('to_mode', 'text', (c) => c.notNull().check(sql`to_mode IN ('Normal', 'Degraded', 'Critical', 'Emergency')`))
    .addColumn('reason', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('time', 'integer', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull().defaultTo('{}'))
    .execute();
  await db.schema.createIndex('audit_log_time').on('audit_log').column('time').execute();
}

export async function down(db: Kysely<any>): Promise<void> {
  for (const table of ['audit_log', 'mode_transitions', 'equity_snapshots', 'trades', 'positions', 'fills', 'orders', 'runtime_state']) {
    await db.schema.dropTable(table).execute();
  }
}
