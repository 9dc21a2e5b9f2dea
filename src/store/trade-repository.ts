/**
 * Closed round trips with their PnL (computed by src/domain/pnl.ts, fees included).
 *
 * Invariants: a trade carrying its exit fill (tid, oid) is recorded once per fill, so replaying
 * that fill after a crash is a no-op (migration 0002); the stored PnL is exactly what the caller
 * computed (wire TEXT).
 */
import type { Kysely, Selectable } from 'kysely';
import { ZERO, type Decimal } from '../domain/decimal.ts';
import type { Coin } from '../domain/types.ts';
import { decFromDb, decToDb, oneOf, undefIfNull } from './codec.ts';
import type { Database, NewTrade, TradeRecord, TradesTable } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

export type TradeInsertResult = { readonly inserted: true; readonly id: number } | { readonly inserted: false };

export class TradeRepository {
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;

  constructor(deps: { readonly db: Kysely<Database>; readonly exec: SyncExecutor }) {
    this.#db = deps.db;
    this.#exec = deps.exec;
  }

  /** Records a closed trade; `{ inserted: false }` when its exit fill's trade is already recorded. */
  insert(t: NewTrade): TradeInsertResult {
    const r = this.#exec.run(
      this.#db
        .insertInto('trades')
        .values({
          coin: t.coin,
          direction: t.direction,
          sz: decToDb(t.sz),
          entry_px: decToDb(t.entryPx),
          exit_px: decToDb(t.exitPx),
          gross_pnl: decToDb(t.grossPnl),
          fees: decToDb(t.fees),
          net_pnl: decToDb(t.netPnl),
          opened_at: t.openedAt,
          closed_at: t.closedAt,
          entry_cloid: t.entryCloid ?? null,
          exit_cloid: t.exitCloid ?? null,
          exit_tid: t.exitFill?.tid ?? null,
          exit_oid: t.exitFill?.oid ?? null,
        })
        .onConflict((oc) => oc.columns(['exit_tid', 'exit_oid']).where('exit_tid', 'is not', null).where('exit_oid', 'is not', null).doNothing()),
    );
    return r.changes === 1 ? { inserted: true, id: r.lastInsertRowid } : { inserted: false };
  }

  /** Trades closed at or after `since` (default: all), oldest first, optionally for one coin. */
  list(opts: { readonly since?: number; readonly coin?: Coin; readonly limit?: number } = {}): TradeRecord[] {
    let q = this.#db.selectFrom('trades').selectAll();
    if (opts.since !== undefined) q = q.where('closed_at', '>=', opts.since);
    if (opts.coin !== undefined) q = q.where('coin', '=', opts.coin);
    q = q.orderBy('closed_at').orderBy('id');
    if (opts.limit !== undefined) q = q.limit(opts.limit);
    return this.#exec.all(q).map(tradeFromRow);
  }

  /** Sum of net PnL of trades closed at or after `since` (the daily loss limit reads it). */
  realizedSince(since: number): Decimal {
    const rows = this.#exec.all(this.#db.selectFrom('trades').select('net_pnl').where('closed_at', '>=', since));
    return rows.reduce((acc, r) => acc.plus(decFromDb(r.net_pnl, 'trades.net_pnl')), ZERO);
  }
}

export function tradeFromRow(row: Selectable<TradesTable>): TradeRecord {
  return {
    id: row.id,
    coin: row.coin,
    direction: oneOf(row.direction, ['long', 'short'] as const, 'trades.direction'),
    sz: decFromDb(row.sz, 'trades.sz'),
    entryPx: decFromDb(row.entry_px, 'trades.entry_px'),
    exitPx: decFromDb(row.exit_px, 'trades.exit_px'),
    grossPnl: decFromDb(row.gross_pnl, 'trades.gross_pnl'),
    fees: decFromDb(row.fees, 'trades.fees'),
    netPnl: decFromDb(row.net_pnl, 'trades.net_pnl'),
    openedAt: row.opened_at,
    closedAt: row.closed_at,
    entryCloid: undefIfNull(row.entry_cloid),
    exitCloid: undefIfNull(row.exit_cloid),
    exitFill: row.exit_tid === null || row.exit_oid === null ? undefined : { tid: row.exit_tid, oid: row.exit_oid },
  };
}
