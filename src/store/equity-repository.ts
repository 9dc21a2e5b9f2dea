/**
 * Equity snapshots: account value, margin, unrealized and the day's realized PnL, drawdown.
 * Append-only; the newest by time is the current one.
 */
import type { Kysely } from 'kysely';
import { decFromDb, decToDb } from './codec.ts';
import type { Database, EquitySnapshot, EquitySnapshotsTable } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

export class EquityRepository {
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;

  constructor(deps: { readonly db: Kysely<Database>; readonly exec: SyncExecutor }) {
    this.#db = deps.db;
    this.#exec = deps.exec;
  }

  insert(s: EquitySnapshot): void {
    this.#exec.run(
      this.#db.insertInto('equity_snapshots').values({
        time: s.time,
        account_value: decToDb(s.accountValue),
        margin_used: decToDb(s.marginUsed),
        unrealized_pnl: decToDb(s.unrealizedPnl),
        realized_pnl_day: decToDb(s.realizedPnlDay),
        drawdown: decToDb(s.drawdown),
      }),
    );
  }

  latest(): EquitySnapshot | undefined {
    const row = this.#exec.first(this.#db.selectFrom('equity_snapshots').selectAll().orderBy('time', 'desc').orderBy('id', 'desc').limit(1));
    return row && equityFromRow(row);
  }

  /** Snapshots at or after `time`, oldest first. */
  since(time: number, limit = 10_000): EquitySnapshot[] {
    return this.#exec.all(this.#db.selectFrom('equity_snapshots').selectAll().where('time', '>=', time).orderBy('time').orderBy('id').limit(limit)).map(equityFromRow);
  }
}

export function equityFromRow(row: Omit<EquitySnapshotsTable, 'id'>): EquitySnapshot {
  return {
    time: row.time,
    accountValue: decFromDb(row.account_value, 'equity_snapshots.account_value'),
    marginUsed: decFromDb(row.margin_used, 'equity_snapshots.margin_used'),
    unrealizedPnl: decFromDb(row.unrealized_pnl, 'equity_snapshots.unrealized_pnl'),
    realizedPnlDay: decFromDb(row.realized_pnl_day, 'equity_snapshots.realized_pnl_day'),
    drawdown: decFromDb(row.drawdown, 'equity_snapshots.drawdown'),
  };
}
