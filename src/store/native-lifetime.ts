/**
 * Keeps every better-sqlite3 native object (Database, Statement) alive until the process exits.
 *
 * Why: on Node 24.21, `node::ObjectWrap` (compiled into better-sqlite3 12 from Node's headers)
 * removes an environment cleanup hook in its destructor, and that call asserts (SIGABRT, the
 * whole process dies) when V8 garbage-collects the object outside a JS context, which an ordinary
 * GC does. A better-sqlite3 Database or Statement that becomes garbage therefore kills the
 * process at some later, unpredictable GC. Until the addon is built without that hazard, nothing
 * the store creates may ever become garbage.
 *
 * Invariants: `openRetainedDatabase` returns a connection whose `prepare` and `pragma` retain the
 * statements they create (pragma statements are cached per text, so repeated pragmas cost
 * nothing); the connection itself is retained. The cost is memory proportional to the number of
 * distinct statements prepared: the repositories prepare a fixed set; ad hoc `raw.prepare` calls
 * each retain one more (prefer the repositories, or prepare once and reuse).
 * Streaming with `Statement.iterate` creates iterator objects with the same hazard: avoid it.
 */
import BetterSqlite3 from 'better-sqlite3';

const retained: object[] = [];

/** Pins a native object for the life of the process. */
export function retainNative<T extends object>(o: T): T {
  retained.push(o);
  return o;
}

/** How many native objects are pinned (a gauge for metrics and tests). */
export function retainedNativeCount(): number {
  return retained.length;
}

export function openRetainedDatabase(file: string, options: BetterSqlite3.Options): BetterSqlite3.Database {
  const db = retainNative(new BetterSqlite3(file, options));
  const prepare = db.prepare.bind(db);
  const pragmas = new Map<string, BetterSqlite3.Statement>();
  // Instance overrides of the prototype methods: every path that creates a Statement retains it.
  Object.defineProperty(db, 'prepare', {
    value: (source: string) => retainNative(prepare(source)),
    configurable: false,
    writable: false,
  });
  Object.defineProperty(db, 'pragma', {
    value: (source: string, options?: BetterSqlite3.PragmaOptions): unknown => {
      const simple = options?.simple === true;
      const key = `${simple ? 's' : 'a'}:${source}`;
      let stmt = pragmas.get(key);
      if (stmt === undefined) {
        stmt = retainNative(prepare(`PRAGMA ${source}`));
        if (simple && stmt.reader) stmt.pluck();
        pragmas.set(key, stmt);
      }
      if (!stmt.reader) {
        stmt.run();
        return simple ? undefined : [];
      }
      return simple ? stmt.get() : stmt.all();
    },
    configurable: false,
    writable: false,
  });
  return db;
}
