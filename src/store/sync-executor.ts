/**
 * Runs Kysely-built queries synchronously on the better-sqlite3 connection: Kysely gives the
 * typed query and its SQL; better-sqlite3 runs it with a cached prepared statement.
 *
 * Why not Kysely's own (async) execution: every repository call then finishes before it returns,
 * so several calls compose into one atomic `store.transaction(() => …)`, and no await ever leaves a
 * transaction open on the single connection for an unrelated write to fall into.
 *
 * The statement cache is also what Kysely's own driver prepares through (`kyselyDatabase`):
 * statements are never dropped, because a collected better-sqlite3 statement can abort the
 * process (see native-lifetime.ts); distinct SQL texts are a small fixed set.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Compilable, SqliteDatabase } from 'kysely';

export interface RunResult {
  readonly changes: number;
  readonly lastInsertRowid: number;
}

export class SyncExecutor {
  readonly #raw: BetterSqlite3.Database;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();

  constructor(raw: BetterSqlite3.Database) {
    this.#raw = raw;
  }

  /** Every row the query returns. */
  all<O>(query: Compilable<O>): O[] {
    const compiled = query.compile();
    return this.#statement(compiled.sql).all(...(compiled.parameters as unknown[])) as O[];
  }

  /** The first row, or undefined. */
  first<O>(query: Compilable<O>): O | undefined {
    const compiled = query.compile();
    return this.#statement(compiled.sql).get(...(compiled.parameters as unknown[])) as O | undefined;
  }

  /** Runs a write; returns how many rows changed and the last rowid. */
  run(query: Compilable<unknown>): RunResult {
    const compiled = query.compile();
    const r = this.#statement(compiled.sql).run(...(compiled.parameters as unknown[]));
    return { changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) };
  }

  /** The connection as Kysely's SqliteDialect sees it: same cache, same statements. */
  kyselyDatabase(): SqliteDatabase {
    return {
      prepare: (sql) => this.#statement(sql),
      close: () => {
        if (this.#raw.open) this.#raw.close();
      },
    };
  }

  #statement(sql: string): BetterSqlite3.Statement {
    let s = this.#statements.get(sql);
    if (s === undefined) {
      s = this.#raw.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }
}
