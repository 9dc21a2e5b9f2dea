/**
 * Positions keel manages, one row per coin, with their protective state (stop and take-profit
 * cloids, stage, R unit, trailing settings) so protection can be re-armed after a crash.
 *
 * Invariants: `upsert` replaces the whole row (no partial merges to reason about). A row at
 * size zero is a planned position (its entry not filled yet); a closed position is removed.
 */
import type { Kysely } from 'kysely';
import type { Coin } from '../domain/types.ts';
import { decFromDb, decToDb, jsonFromDb, jsonToDb, oneOf, optDecFromDb, optDecToDb, undefIfNull } from './codec.ts';
import { StoreError } from './errors.ts';
import { POSITION_STAGES, type Database, type PositionRecord, type PositionsTable } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

export class PositionRepository {
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;
  readonly #clock: () => number;

  constructor(deps: { readonly db: Kysely<Database>; readonly exec: SyncExecutor; readonly clock: () => number }) {
    this.#db = deps.db;
    this.#exec = deps.exec;
    this.#clock = deps.clock;
  }

  /** Inserts or replaces the position of `p.coin`. `updatedAt` defaults to the store's clock. */
  upsert(p: Omit<PositionRecord, 'updatedAt'> & { readonly updatedAt?: number }): void {
    if (p.coin.length === 0) throw new StoreError('invalid_input', 'position without a coin');
    const row: PositionsTable = {
      coin: p.coin,
      szi: decToDb(p.szi),
      entry_px: decToDb(p.entryPx),
      entry_cloid: p.entryCloid ?? null,
      opened_at: p.openedAt ?? null,
      entry_fees: decToDb(p.entryFees),
      stage: p.stage,
      stop_cloid: p.stopCloid ?? null,
      tp_cloids: jsonToDb(p.tpCloids),
      initial_stop_px: optDecToDb(p.initialStopPx),
      take_profit_px: optDecToDb(p.takeProfitPx),
      r_unit: optDecToDb(p.rUnit),
      trail_distance: optDecToDb(p.trailing?.distance),
      trail_activate_px: optDecToDb(p.trailing?.activatePx),
      trail_extreme_px: optDecToDb(p.trailing?.extremePx),
      updated_at: p.updatedAt ?? this.#clock(),
    };
    const { coin: _coin, ...rest } = row;
    this.#exec.run(this.#db.insertInto('positions').values(row).onConflict((oc) => oc.column('coin').doUpdateSet(rest)));
  }

  get(coin: Coin): PositionRecord | undefined {
    const row = this.#exec.first(this.#db.selectFrom('positions').selectAll().where('coin', '=', coin));
    return row && positionFromRow(row);
  }

  all(): PositionRecord[] {
    return this.#exec.all(this.#db.selectFrom('positions').selectAll().orderBy('coin')).map(positionFromRow);
  }

  /** Returns false when there was no position for `coin`. */
  remove(coin: Coin): boolean {
    return this.#exec.run(this.#db.deleteFrom('positions').where('coin', '=', coin)).changes === 1;
  }
}

export function positionFromRow(row: PositionsTable): PositionRecord {
  const tp = jsonFromDb(row.tp_cloids, 'positions.tp_cloids');
  if (!Array.isArray(tp) || !tp.every((c) => typeof c === 'string')) throw new StoreError('corrupt_row', 'positions.tp_cloids is not a list of cloids', row);
  const distance = optDecFromDb(row.trail_distance, 'positions.trail_distance');
  return {
    coin: row.coin,
    szi: decFromDb(row.szi, 'positions.szi'),
    entryPx: decFromDb(row.entry_px, 'positions.entry_px'),
    entryCloid: undefIfNull(row.entry_cloid),
    openedAt: undefIfNull(row.opened_at),
    entryFees: decFromDb(row.entry_fees, 'positions.entry_fees'),
    stage: oneOf(row.stage, POSITION_STAGES, 'positions.stage'),
    stopCloid: undefIfNull(row.stop_cloid),
    tpCloids: tp as string[],
    initialStopPx: optDecFromDb(row.initial_stop_px, 'positions.initial_stop_px'),
    takeProfitPx: optDecFromDb(row.take_profit_px, 'positions.take_profit_px'),
    rUnit: optDecFromDb(row.r_unit, 'positions.r_unit'),
    trailing:
      distance === undefined
        ? undefined
        : {
            distance,
            activatePx: optDecFromDb(row.trail_activate_px, 'positions.trail_activate_px'),
            extremePx: optDecFromDb(row.trail_extreme_px, 'positions.trail_extreme_px'),
          },
    updatedAt: row.updated_at,
  };
}
