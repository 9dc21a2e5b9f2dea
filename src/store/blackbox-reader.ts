/**
 * Reads the black box: its ends, rows in seq order (paged), and verification of the hash chain.
 *
 * Invariants:
 * - Rows are read in pages with `all()` on statements prepared once (never `iterate()`, whose
 *   iterators may abort the process when collected: native-lifetime.ts), so a range of any length
 *   holds one page in memory.
 * - `verify` reads one consistent snapshot (a read transaction; WAL readers do not block the
 *   writer) and reports the FIRST broken seq: a row missing (a gap, a truncated tail, a deleted
 *   first row), a prev_hash that does not match its predecessor's hash (or the anchor), a hash
 *   that does not match the row's contents, a row whose columns are not what the recorder writes,
 *   or a row outside the chain's recorded ends.
 * - A reader opened on a file (`BlackboxReader.open`) is read-only: it can never change the log.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { BlackboxError, chainHash, isBlackboxKind, isHash, type BlackboxRow } from './blackbox-codec.ts';
import { openRetainedDatabase, retainNative } from './native-lifetime.ts';

export interface BlackboxHead {
  /** Seq of the last row pruned by retention (0 if none); the first row must link to `anchorHash`. */
  readonly anchorSeq: number;
  readonly anchorHash: string;
  /** Last seq committed (0 if none) and its hash. */
  readonly headSeq: number;
  readonly headHash: string;
  /** Lowest seq stored, undefined when the table is empty. */
  readonly firstSeq: number | undefined;
  /** headSeq - anchorSeq: how many rows an intact log holds. */
  readonly rows: number;
}

export type BlackboxBreak = 'missing_row' | 'prev_hash_mismatch' | 'hash_mismatch' | 'invalid_row' | 'unexpected_row' | 'head_mismatch';

export type BlackboxVerifyResult =
  | { readonly ok: true; readonly rows: number; readonly fromSeq: number; readonly toSeq: number }
  | { readonly ok: false; readonly seq: number; readonly problem: BlackboxBreak; readonly reason: string; readonly rows: number };

interface RawRow {
  readonly seq: unknown;
  readonly time: unknown;
  readonly kind: unknown;
  readonly type: unknown;
  readonly payload: unknown;
  readonly prev_hash: unknown;
  readonly hash: unknown;
}

interface MetaRow {
  readonly anchor_seq: number;
  readonly anchor_hash: string;
  readonly head_seq: number;
  readonly head_hash: string;
}

export const DEFAULT_PAGE_SIZE = 1000;

/** The row, or why it is not one the recorder could have written. */
function parseRow(r: RawRow): BlackboxRow | string {
  if (typeof r.time !== 'number' || !Number.isSafeInteger(r.time) || r.time < 0) return `time is ${JSON.stringify(r.time)}`;
  if (!isBlackboxKind(r.kind)) return `kind is ${JSON.stringify(r.kind)}`;
  if (typeof r.type !== 'string') return `type is ${JSON.stringify(r.type)}`;
  if (typeof r.payload !== 'string') return 'payload is not text';
  if (!isHash(r.prev_hash)) return `prev_hash is ${JSON.stringify(r.prev_hash)}`;
  if (!isHash(r.hash)) return `hash is ${JSON.stringify(r.hash)}`;
  return { seq: r.seq as number, time: r.time, kind: r.kind, type: r.type, payload: r.payload, prevHash: r.prev_hash, hash: r.hash };
}

/**
 * @example
 * const reader = BlackboxReader.open('var/keel.sqlite');
 * const v = reader.verify(); if (!v.ok) console.error(`broken at ${v.seq}: ${v.reason}`);
 * for (const row of reader.range(1, 5000)) …;
 * reader.close();
 */
export class BlackboxReader {
  readonly #raw: BetterSqlite3.Database;
  readonly #owned: boolean;
  readonly #meta: BetterSqlite3.Statement<[], MetaRow>;
  readonly #page: BetterSqlite3.Statement<[number, number, number], RawRow>;
  readonly #get: BetterSqlite3.Statement<[number], RawRow>;
  readonly #first: BetterSqlite3.Statement<[], { seq: number }>;
  readonly #last: BetterSqlite3.Statement<[], { seq: number }>;
  readonly #timeFrom: BetterSqlite3.Statement<[number], { seq: number; time: number }>;
  readonly #begin: BetterSqlite3.Statement;
  readonly #commit: BetterSqlite3.Statement;

  /** Reads through `raw` (e.g. `store.raw`, the retained connection); `close()` leaves it open. */
  constructor(raw: BetterSqlite3.Database, owned = false) {
    this.#raw = raw;
    this.#owned = owned;
    const prepare = <S extends BetterSqlite3.Statement<any, any>>(sql: string): S => retainNative(raw.prepare(sql)) as S;
    try {
      this.#meta = prepare('SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM blackbox_meta WHERE id = 1');
    } catch (e) {
      throw new BlackboxError('not_migrated', 'the database has no black box (migration 0003_blackbox has not run on it)', undefined, { cause: e });
    }
    const cols = 'seq, time, kind, type, payload, prev_hash, hash';
    this.#page = prepare(`SELECT ${cols} FROM blackbox WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`);
    this.#get = prepare(`SELECT ${cols} FROM blackbox WHERE seq = ?`);
    this.#first = prepare('SELECT seq FROM blackbox ORDER BY seq LIMIT 1');
    this.#last = prepare('SELECT seq FROM blackbox ORDER BY seq DESC LIMIT 1');
    this.#timeFrom = prepare('SELECT seq, time FROM blackbox WHERE seq >= ? ORDER BY seq LIMIT 1');
    this.#begin = prepare('BEGIN');
    this.#commit = prepare('COMMIT');
  }

  /** Opens `file` read-only (it must exist and be migrated); `close()` closes that connection. */
  static open(file: string, opts: { readonly busyTimeoutMs?: number } = {}): BlackboxReader {
    const raw = openRetainedDatabase(file, { readonly: true, fileMustExist: true, timeout: opts.busyTimeoutMs ?? 5000 });
    try {
      return new BlackboxReader(raw, true);
    } catch (e) {
      raw.close();
      throw e;
    }
  }

  head(): BlackboxHead {
    const m = this.#readMeta();
    return { anchorSeq: m.anchor_seq, anchorHash: m.anchor_hash, headSeq: m.head_seq, headHash: m.head_hash, firstSeq: this.#first.get()?.seq, rows: m.head_seq - m.anchor_seq };
  }

  /** One row, or undefined. Throws BlackboxError('corrupt') for a row the recorder could not have written. */
  get(seq: number): BlackboxRow | undefined {
    const r = this.#get.get(seq);
    return r === undefined ? undefined : this.#strict(r);
  }

  /** Up to `limit` rows with fromSeq ≤ seq ≤ toSeq, in seq order. */
  page(fromSeq: number, toSeq: number, limit = DEFAULT_PAGE_SIZE): BlackboxRow[] {
    return this.#page.all(fromSeq, toSeq, limit).map((r) => this.#strict(r));
  }

  /**
   * Rows with fromSeq ≤ seq ≤ toSeq in seq order, read a page at a time (rows pruned meanwhile are
   * skipped; rows appended meanwhile up to toSeq are included).
   *
   * @example for (const row of reader.range(100, 200)) console.log(row.type);
   */
  *range(fromSeq = 1, toSeq: number = Number.MAX_SAFE_INTEGER, pageSize = DEFAULT_PAGE_SIZE): Generator<BlackboxRow, void, undefined> {
    let next = fromSeq;
    while (next <= toSeq) {
      const page = this.page(next, toSeq, pageSize);
      for (const r of page) yield r;
      if (page.length < pageSize) return;
      next = page[page.length - 1]!.seq + 1;
    }
  }

  /**
   * The first seq whose time is ≥ `time`, or undefined if none; bisects on seq, so it assumes times
   * do not decrease along the log (the recorder's callers use one clock).
   */
  seqAtOrAfter(time: number): number | undefined {
    const m = this.#readMeta();
    let lo = m.anchor_seq + 1;
    let hi = m.head_seq + 1;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const r = this.#timeFrom.get(mid);
      if (r === undefined) hi = mid;
      else if (r.time >= time) hi = mid;
      else lo = r.seq + 1;
    }
    const r = this.#timeFrom.get(lo);
    return r !== undefined && r.time >= time ? r.seq : undefined;
  }

  /**
   * Recomputes the chain over fromSeq..toSeq (default: all of it, anchor to head) and returns the
   * first break. Over the whole log it also checks the ends: the first row links to the anchor,
   * the last is the recorded head, and no row lies outside them.
   *
   * @example const v = reader.verify(); // { ok: true, rows: 1234, … } or { ok: false, seq: 57, problem: 'hash_mismatch', … }
   */
  verify(fromSeq?: number, toSeq?: number): BlackboxVerifyResult {
    const own = !this.#raw.inTransaction;
    if (own) this.#begin.run();
    try {
      return this.#verify(fromSeq, toSeq);
    } finally {
      if (own && this.#raw.inTransaction) this.#commit.run();
    }
  }

  /** Closes the connection if this reader opened it. */
  close(): void {
    if (this.#owned && this.#raw.open) this.#raw.close();
  }

  #verify(fromSeq: number | undefined, toSeq: number | undefined): BlackboxVerifyResult {
    const m = this.#readMeta();
    const start = Math.max(fromSeq ?? m.anchor_seq + 1, m.anchor_seq + 1);
    const end = Math.min(toSeq ?? m.head_seq, m.head_seq);
    const fail = (seq: number, problem: BlackboxBreak, reason: string, rows: number): BlackboxVerifyResult => ({ ok: false, seq, problem, reason, rows });

    if (fromSeq === undefined || fromSeq <= m.anchor_seq) {
      const first = this.#first.get()?.seq;
      if (first !== undefined && first <= m.anchor_seq) return fail(first, 'unexpected_row', `row ${first} is at or before the anchor ${m.anchor_seq} (pruned rows are gone)`, 0);
    }
    if (toSeq === undefined || toSeq > m.head_seq) {
      const last = this.#last.get()?.seq;
      if (last !== undefined && last > m.head_seq) return fail(m.head_seq + 1, 'unexpected_row', `row ${last} is beyond the recorded head ${m.head_seq}`, 0);
    }
    if (start > end) return { ok: true, rows: 0, fromSeq: start, toSeq: end };

    let prev: string;
    if (start === m.anchor_seq + 1) prev = m.anchor_hash;
    else {
      const before = this.#get.get(start - 1);
      if (before === undefined) return fail(start - 1, 'missing_row', `row ${start - 1} (the predecessor of ${start}) is missing`, 0);
      if (!isHash(before.hash)) return fail(start - 1, 'invalid_row', `row ${start - 1}: hash is ${JSON.stringify(before.hash)}`, 0);
      prev = before.hash;
    }

    let expected = start;
    let rows = 0;
    for (;;) {
      const page = this.#page.all(expected, end, DEFAULT_PAGE_SIZE);
      for (const raw of page) {
        if (raw.seq !== expected) return fail(expected, 'missing_row', `row ${expected} is missing (next stored row is ${String(raw.seq)})`, rows);
        const r = parseRow(raw);
        if (typeof r === 'string') return fail(expected, 'invalid_row', `row ${expected}: ${r}`, rows);
        if (r.prevHash !== prev) {
          const what = expected === m.anchor_seq + 1 ? (m.anchor_seq === 0 ? 'the genesis hash' : `the anchor (row ${m.anchor_seq}, pruned)`) : `row ${expected - 1}'s hash`;
          return fail(expected, 'prev_hash_mismatch', `row ${expected}: prev_hash does not match ${what}`, rows);
        }
        if (chainHash(r.prevHash, r.seq, r.time, r.kind, r.type, r.payload) !== r.hash) return fail(expected, 'hash_mismatch', `row ${expected}: hash does not match its contents (altered)`, rows);
        prev = r.hash;
        expected += 1;
        rows += 1;
      }
      if (page.length < DEFAULT_PAGE_SIZE || expected > end) break;
    }
    if (expected <= end) return fail(expected, 'missing_row', `row ${expected} is missing${end === m.head_seq ? ` (the recorded head is ${m.head_seq})` : ''}`, rows);
    if (end === m.head_seq && prev !== m.head_hash) return fail(end, 'head_mismatch', `row ${end}'s hash is not the recorded head hash`, rows);
    return { ok: true, rows, fromSeq: start, toSeq: end };
  }

  #strict(r: RawRow): BlackboxRow {
    const row = parseRow(r);
    if (typeof row === 'string') throw new BlackboxError('corrupt', `black box row ${String(r.seq)}: ${row}`, { seq: r.seq });
    return row;
  }

  #readMeta(): MetaRow {
    const m = this.#meta.get();
    if (m === undefined) throw new BlackboxError('corrupt', 'blackbox_meta has no row');
    return m;
  }
}
