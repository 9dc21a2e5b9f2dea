/**
 * Operating-mode transitions, append-only. Appending also sets runtime_state.mode in the same
 * transaction, so the mode a restart reads and the last recorded transition always agree.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Kysely, Selectable } from 'kysely';
import { MODES, type Mode } from '../domain/types.ts';
import { jsonToDb, oneOf } from './codec.ts';
import type { Database, ModeTransition, ModeTransitionsTable, NewModeTransition } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

export class ModeRepository {
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;
  readonly #append: BetterSqlite3.Transaction<(t: NewModeTransition) => number>;

  constructor(deps: { readonly raw: BetterSqlite3.Database; readonly db: Kysely<Database>; readonly exec: SyncExecutor }) {
    this.#db = deps.db;
    this.#exec = deps.exec;
    this.#append = deps.raw.transaction((t: NewModeTransition) => {
      const r = this.#exec.run(this.#db.insertInto('mode_transitions').values({ time: t.time, from_mode: t.from ?? null, to_mode: t.to, reason: t.reason }));
      const value = jsonToDb(t.to);
      this.#exec.run(
        this.#db
          .insertInto('runtime_state')
          .values({ key: 'mode', value, updated_at: t.time })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: t.time })),
      );
      return r.lastInsertRowid;
    });
  }

  /** Records a transition and makes `to` the persisted mode. Returns its id. */
  append(t: NewModeTransition): number {
    return this.#append.immediate(t);
  }

  latest(): ModeTransition | undefined {
    const row = this.#exec.first(this.#db.selectFrom('mode_transitions').selectAll().orderBy('id', 'desc').limit(1));
    return row && modeFromRow(row);
  }

  /** The persisted mode, or undefined before the first transition. */
  current(): Mode | undefined {
    return this.latest()?.to;
  }

  /** Newest first. */
  list(limit = 100): ModeTransition[] {
    return this.#exec.all(this.#db.selectFrom('mode_transitions').selectAll().orderBy('id', 'desc').limit(limit)).map(modeFromRow);
  }
}

function modeFromRow(row: Selectable<ModeTransitionsTable>): ModeTransition {
  return {
    id: row.id,
    time: row.time,
    from: row.from_mode === null ? undefined : oneOf(row.from_mode, MODES, 'mode_transitions.from_mode'),
    to: oneOf(row.to_mode, MODES, 'mode_transitions.to_mode'),
    reason: row.reason,
  };
}
