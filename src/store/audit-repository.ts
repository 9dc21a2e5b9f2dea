/**
 * The audit log: who did what (operator commands, control endpoints, automatic safety actions),
 * append-only, with a JSON detail.
 */
import type { Kysely } from 'kysely';
import { jsonFromDb, jsonToDb } from './codec.ts';
import type { AuditEntry, Database, NewAuditEntry } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

export class AuditRepository {
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;

  constructor(deps: { readonly db: Kysely<Database>; readonly exec: SyncExecutor }) {
    this.#db = deps.db;
    this.#exec = deps.exec;
  }

  /** Returns the entry's id. */
  append(e: NewAuditEntry): number {
    return this.#exec.run(this.#db.insertInto('audit_log').values({ time: e.time, actor: e.actor, action: e.action, detail: jsonToDb(e.detail ?? {}) })).lastInsertRowid;
  }

  /** Newest first, optionally only one action or entries at or after `since`. */
  list(opts: { readonly limit?: number; readonly since?: number; readonly action?: string } = {}): AuditEntry[] {
    let q = this.#db.selectFrom('audit_log').selectAll();
    if (opts.since !== undefined) q = q.where('time', '>=', opts.since);
    if (opts.action !== undefined) q = q.where('action', '=', opts.action);
    return this.#exec
      .all(q.orderBy('id', 'desc').limit(opts.limit ?? 100))
      .map((row) => ({ id: row.id, time: row.time, actor: row.actor, action: row.action, detail: jsonFromDb(row.detail, 'audit_log.detail') }));
  }
}
