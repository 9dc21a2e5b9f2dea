/**
 * Opens keel's database: the truth the runtime rebuilds from after a crash.
 *
 * Invariants:
 * - The data directory is created 0700 and the database file (and so its -wal / -shm, which
 *   SQLite creates with the database file's mode) 0600: positions, orders and the audit trail are
 *   the owner's alone.
 * - WAL mode, foreign_keys=ON, a busy timeout; synchronous=NORMAL for ordinary writes and FULL
 *   around every intent commit (see order-repository.ts); `synchronous: 'FULL'` keeps FULL for all.
 * - Migrations run at open, in name order, inside one BEGIN IMMEDIATE transaction together with
 *   the creation of the runtime prefix and cloid counter: a crash mid-migration leaves the old
 *   schema, and two processes opening at once do not race.
 * - No better-sqlite3 object the store creates is ever garbage-collected (native-lifetime.ts):
 *   on Node 24.21 that would abort the process.
 * - Every repository call is synchronous (see sync-executor.ts); `transaction(fn)` groups them.
 *   `db` (Kysely, async) is for ad hoc reads: do not hold a Kysely transaction across awaits,
 *   since a synchronous write in between would fall into it (intent commits refuse to).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { migrationProvider } from '../../migrations/index.ts';
import { AuditRepository } from './audit-repository.ts';
import { EquityRepository } from './equity-repository.ts';
import { StoreError } from './errors.ts';
import { FillRepository } from './fill-repository.ts';
import { openRetainedDatabase } from './native-lifetime.ts';
import { ModeRepository } from './mode-repository.ts';
import { CLOID_COUNTER_KEY, OrderRepository, RUNTIME_PREFIX_KEY } from './order-repository.ts';
import { PositionRepository } from './position-repository.ts';
import { RuntimeStateRepository } from './runtime-state-repository.ts';
import type { Database } from './schema.ts';
import { SyncExecutor } from './sync-executor.ts';
import { TradeRepository } from './trade-repository.ts';

export interface OpenStoreOptions {
  /** Database file; its directory is created (0700) when missing. */
  readonly path: string;
  /** Default clock for `updated_at` columns when the caller gives no time. Default Date.now. */
  readonly clock?: () => number;
  /** ms a writer waits for another connection's lock. Default 5000. */
  readonly busyTimeoutMs?: number;
  /** 'NORMAL' (default): FULL only around intent commits. 'FULL': every commit fsyncs. */
  readonly synchronous?: 'NORMAL' | 'FULL';
  /** Makes the runtime prefix of a NEW database (8 lowercase hex). Default: 4 random bytes. */
  readonly newRuntimePrefix?: () => string;
}

export interface Store {
  readonly path: string;
  readonly db: Kysely<Database>;
  readonly raw: BetterSqlite3.Database;
  readonly orders: OrderRepository;
  readonly fills: FillRepository;
  readonly positions: PositionRepository;
  readonly trades: TradeRepository;
  readonly equity: EquityRepository;
  readonly state: RuntimeStateRepository;
  readonly modes: ModeRepository;
  readonly audit: AuditRepository;
  /** Runs `fn` (synchronous repository calls) as one IMMEDIATE transaction; rolls back if it throws. */
  transaction<T>(fn: () => T): T;
  /** Closes the connection (idempotent). */
  close(): void;
}

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/**
 * Opens (creating and migrating as needed) the database at `opts.path`.
 *
 * @example const store = await openStore({ path: 'var/keel.sqlite' }); … store.close();
 */
export async function openStore(opts: OpenStoreOptions): Promise<Store> {
  const clock = opts.clock ?? Date.now;
  const base = opts.synchronous ?? 'NORMAL';
  const busy = opts.busyTimeoutMs ?? 5000;
  if (opts.path !== ':memory:') prepareFiles(opts.path);

  const raw = openRetainedDatabase(opts.path, { timeout: busy });
  try {
    const journal = raw.pragma('journal_mode = WAL', { simple: true });
    if (opts.path !== ':memory:' && journal !== 'wal') throw new StoreError('migration', `could not enable WAL (journal_mode is ${String(journal)})`);
    raw.pragma(`synchronous = ${base}`);
    raw.pragma('foreign_keys = ON');
    raw.pragma(`busy_timeout = ${busy}`);
  } catch (e) {
    raw.close();
    throw e;
  }

  const exec = new SyncExecutor(raw);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: exec.kyselyDatabase() }) });
  let prefix: string;
  try {
    prefix = await migrate(raw, db, clock, opts.newRuntimePrefix ?? (() => randomBytes(4).toString('hex')));
  } catch (e) {
    raw.close();
    throw e instanceof StoreError ? e : new StoreError('migration', `opening ${opts.path} failed: ${(e as Error).message}`, undefined, { cause: e });
  }

  const deps = { raw, db, exec, clock };
  return {
    path: opts.path,
    db,
    raw,
    orders: new OrderRepository({ ...deps, prefix, baseSynchronous: base }),
    fills: new FillRepository(deps),
    positions: new PositionRepository(deps),
    trades: new TradeRepository(deps),
    equity: new EquityRepository(deps),
    state: new RuntimeStateRepository(deps),
    modes: new ModeRepository(deps),
    audit: new AuditRepository(deps),
    transaction: <T>(fn: () => T): T => raw.transaction(fn).immediate(),
    close: () => {
      if (raw.open) raw.close();
    },
  };
}

function prepareFiles(file: string): void {
  const dir = path.dirname(path.resolve(file));
  // Only directories we create are tightened: never chmod a directory the operator already owns.
  const created = mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  if (created !== undefined) chmodSync(dir, DIR_MODE);
  // Created before SQLite opens it, so it never exists with the default 0644, even for an instant.
  closeSync(openSync(file, 'a', FILE_MODE));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(f)) chmodSync(f, FILE_MODE);
}

async function migrate(raw: BetterSqlite3.Database, db: Kysely<Database>, clock: () => number, newPrefix: () => string): Promise<string> {
  raw.exec('BEGIN IMMEDIATE');
  try {
    // Kysely runs SQLite migrations without a transaction of its own; this one holds them all.
    const { error, results } = await new Migrator({ db, provider: migrationProvider }).migrateToLatest();
    if (error !== undefined) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName;
      throw new StoreError('migration', `migration ${failed ?? '?'} failed: ${(error as Error).message ?? String(error)}`, results, { cause: error });
    }
    const now = clock();
    const insert = raw.prepare('INSERT INTO runtime_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING');
    insert.run(CLOID_COUNTER_KEY, '0', now);
    const candidate = newPrefix();
    if (!/^[0-9a-f]{8}$/.test(candidate)) throw new StoreError('invalid_input', `runtime prefix must be 8 lowercase hex, got ${JSON.stringify(candidate)}`);
    insert.run(RUNTIME_PREFIX_KEY, JSON.stringify(candidate), now);
    const row = raw.prepare('SELECT value FROM runtime_state WHERE key = ?').get(RUNTIME_PREFIX_KEY) as { value: string };
    const prefix: unknown = JSON.parse(row.value);
    if (typeof prefix !== 'string' || !/^[0-9a-f]{8}$/.test(prefix)) throw new StoreError('corrupt_row', `runtime_state.${RUNTIME_PREFIX_KEY} is ${row.value}`);
    raw.exec('COMMIT');
    return prefix;
  } catch (e) {
    if (raw.inTransaction) raw.exec('ROLLBACK');
    throw e;
  }
}
