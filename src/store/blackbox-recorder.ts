/**
 * Writes the black box: every input and decision, appended with a sequence number, its time and a
 * hash chain (see blackbox-codec.ts for the row format), batched for speed.
 *
 * Invariants:
 * - Seqs are contiguous and assigned here, in call order; a row's hash covers its predecessor's,
 *   so the committed rows always form one verifiable chain from the anchor in blackbox_meta.
 * - The payload is serialized (canonically) when it is recorded, not when it is flushed: later
 *   mutation of the caller's object cannot change what was recorded.
 * - A batch is one IMMEDIATE transaction (rows + the meta head) at the connection's usual
 *   synchronous level, flushed every `flushIntervalMs` or `maxBatch` events; `recordDurable`
 *   flushes before it returns, at synchronous=FULL by default, so "recorded, then acted" survives
 *   kill -9 (and, with FULL, power loss).
 * - The recorder never writes inside someone else's transaction: its rows would roll back with it
 *   while the chain in memory moved on. A flush due then is deferred; `recordDurable` throws.
 * - Before each batch the meta head is compared with what this recorder last committed; if another
 *   writer moved it, the pending rows are re-sequenced and re-hashed onto the real head (counted
 *   in `rebases`), so the chain stays whole.
 * - Retention prunes only a prefix of the chain (oldest rows first) and records the last pruned
 *   row's seq and hash as the new anchor in the same transaction, so verification still starts
 *   from a known hash.
 * - Writes never throw out of `record` or the timer: failures are counted (`stats().flushErrors`),
 *   the batch stays pending and is retried. Beyond `maxPending` unwritten events, new events are
 *   dropped (counted) and the next accepted one is preceded by a `blackbox.gap` input event.
 * - Statements are prepared once per recorder and never released (native-lifetime.ts).
 */
import type BetterSqlite3 from 'better-sqlite3';
import { BlackboxError, BLACKBOX_KINDS, canonicalJson, chainHash, isBlackboxKind, TYPE_PATTERN, type BlackboxKind } from './blackbox-codec.ts';
import { retainNative } from './native-lifetime.ts';

/** Returned by `record` when the event was dropped (the pending buffer was full). Seqs start at 1. */
export const NOT_RECORDED = 0;
/** The type of the event recorded ahead of the first event accepted after drops. */
export const GAP_EVENT_TYPE = 'blackbox.gap';
/** Per-row bytes counted on top of type and payload (two hashes, seq, time, kind, SQLite overhead). */
export const ROW_OVERHEAD_BYTES = 160;

export interface BlackboxRetention {
  /** Keep at most this many rows. */
  readonly maxRows?: number;
  /** Keep at most this many bytes (UTF-8 type + payload + ROW_OVERHEAD_BYTES per row). */
  readonly maxBytes?: number;
  /** Drop rows older than this (by their `time`, against the recorder's clock). */
  readonly maxAgeMs?: number;
  /** A prune brings each limit down to this fraction of itself, so it does not run every flush. Default 0.9. */
  readonly target?: number;
  /** At most this many rows deleted per prune (keeps each transaction short). Default 50 000. */
  readonly maxRowsPerPrune?: number;
}

export interface BlackboxRecorderOptions {
  /** Flush this long after the first unflushed event. Default 100 ms. */
  readonly flushIntervalMs?: number;
  /** Flush as soon as this many events are pending. Default 1000. */
  readonly maxBatch?: number;
  /** Drop events beyond this many unwritten ones (writes failing). Default 100 000. */
  readonly maxPending?: number;
  /** synchronous level of a durable flush. Default 'FULL'. */
  readonly durableSynchronous?: 'FULL' | 'NORMAL';
  readonly retention?: BlackboxRetention;
  /** Wall clock for age-based retention. Default Date.now. */
  readonly clock?: () => number;
}

/** Counters and gauges for metrics; plain numbers. Durations in ms. */
export interface BlackboxStats {
  /** Events given a seq. */
  readonly recorded: number;
  /** Rows committed. */
  readonly written: number;
  readonly pending: number;
  readonly dropped: number;
  readonly flushes: number;
  readonly durableFlushes: number;
  readonly flushErrors: number;
  /** Flushes put off because the connection was inside another transaction. */
  readonly deferredFlushes: number;
  readonly rebases: number;
  readonly lastFlushMs: number;
  readonly maxFlushMs: number;
  readonly totalFlushMs: number;
  /** Last seq given out (0 before any). */
  readonly headSeq: number;
  /** Last seq committed. */
  readonly committedSeq: number;
  /** Rows in the table. */
  readonly rows: number;
  /** Bytes of the rows in the table as retention counts them; -1 when no byte limit is set (not tracked). */
  readonly bytes: number;
  readonly prunes: number;
  readonly prunedRows: number;
  readonly pruneErrors: number;
}

interface PendingRow {
  seq: number;
  readonly time: number;
  readonly kind: BlackboxKind;
  readonly type: string;
  readonly payload: string;
  prevHash: string;
  hash: string;
  readonly bytes: number;
}

interface MetaRow {
  readonly anchor_seq: number;
  readonly anchor_hash: string;
  readonly head_seq: number;
  readonly head_hash: string;
}

interface Counters {
  recorded: number;
  written: number;
  dropped: number;
  flushes: number;
  durableFlushes: number;
  flushErrors: number;
  deferredFlushes: number;
  rebases: number;
  lastFlushMs: number;
  maxFlushMs: number;
  totalFlushMs: number;
  prunes: number;
  prunedRows: number;
  pruneErrors: number;
}

const SYNC_LEVELS: Readonly<Record<string, number>> = { NORMAL: 1, FULL: 2 };
const PRUNE_PAGE = 1000;

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isSafeInteger(n) || n <= 0) throw new BlackboxError('invalid_event', `${name} must be a positive integer, got ${String(v)}`);
  return n;
}

function optionalLimit(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  return positiveInt(name, v, 1);
}

/**
 * The black box writer. One per database: it assumes it is the only writer of `blackbox`.
 *
 * @example
 * const box = new BlackboxRecorder(store.raw, { retention: { maxRows: 5_000_000, maxAgeMs: 30 * 86_400_000 } });
 * box.record('input', 'feed.candle', candle, clock.now());
 * box.recordDurable('decision', 'order.intent', intent, clock.now()); // then sign and send
 * box.close();
 */
export class BlackboxRecorder {
  readonly #raw: BetterSqlite3.Database;
  readonly #flushIntervalMs: number;
  readonly #maxBatch: number;
  readonly #maxPending: number;
  readonly #clock: () => number;
  readonly #maxRows: number | undefined;
  readonly #maxBytes: number | undefined;
  readonly #maxAgeMs: number | undefined;
  readonly #target: number;
  readonly #maxRowsPerPrune: number;

  readonly #insert: BetterSqlite3.Statement;
  readonly #meta: BetterSqlite3.Statement<[], MetaRow>;
  readonly #setHead: BetterSqlite3.Statement;
  readonly #setAnchor: BetterSqlite3.Statement;
  readonly #oldestPage: BetterSqlite3.Statement<[number, number], { seq: number; time: number; bytes: number }>;
  readonly #hashAt: BetterSqlite3.Statement<[number], { hash: string }>;
  readonly #deleteUpTo: BetterSqlite3.Statement;
  readonly #oldest: BetterSqlite3.Statement<[], { time: number }>;
  readonly #totals: BetterSqlite3.Statement<[], { bytes: number }>;
  readonly #syncDurable: BetterSqlite3.Statement | undefined;
  readonly #syncBase: BetterSqlite3.Statement | undefined;
  readonly #writeBatch: BetterSqlite3.Transaction<(rows: readonly PendingRow[]) => void>;
  readonly #pruneTx: BetterSqlite3.Transaction<() => number>;

  #pending: PendingRow[] = [];
  #lastSeq: number;
  #lastHash: string;
  #committedSeq: number;
  #committedHash: string;
  #rows: number;
  #bytes: number;
  #oldestTime: number | undefined;
  #droppedSinceGap = 0;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;
  #closed = false;
  #lastError: string | undefined;
  readonly #c: Counters = {
    recorded: 0,
    written: 0,
    dropped: 0,
    flushes: 0,
    durableFlushes: 0,
    flushErrors: 0,
    deferredFlushes: 0,
    rebases: 0,
    lastFlushMs: 0,
    maxFlushMs: 0,
    totalFlushMs: 0,
    prunes: 0,
    prunedRows: 0,
    pruneErrors: 0,
  };

  /** `raw` must be migrated (0003_blackbox) and should be the store's retained connection (`store.raw`). */
  constructor(raw: BetterSqlite3.Database, opts: BlackboxRecorderOptions = {}) {
    this.#raw = raw;
    this.#flushIntervalMs = positiveInt('flushIntervalMs', opts.flushIntervalMs, 100);
    this.#maxBatch = positiveInt('maxBatch', opts.maxBatch, 1000);
    this.#maxPending = positiveInt('maxPending', opts.maxPending, 100_000);
    this.#clock = opts.clock ?? Date.now;
    const r = opts.retention ?? {};
    this.#maxRows = optionalLimit('retention.maxRows', r.maxRows);
    this.#maxBytes = optionalLimit('retention.maxBytes', r.maxBytes);
    this.#maxAgeMs = optionalLimit('retention.maxAgeMs', r.maxAgeMs);
    this.#target = r.target ?? 0.9;
    if (!(this.#target > 0 && this.#target <= 1)) throw new BlackboxError('invalid_event', `retention.target must be in (0, 1], got ${String(r.target)}`);
    this.#maxRowsPerPrune = positiveInt('retention.maxRowsPerPrune', r.maxRowsPerPrune, 50_000);

    const prepare = <S extends BetterSqlite3.Statement<any, any>>(sql: string): S => retainNative(raw.prepare(sql)) as S;
    try {
      this.#meta = prepare('SELECT anchor_seq, anchor_hash, head_seq, head_hash FROM blackbox_meta WHERE id = 1');
    } catch (e) {
      throw new BlackboxError('not_migrated', `the database has no black box tables (migration 0003_blackbox): ${(e as Error).message}`, undefined, { cause: e });
    }
    this.#insert = prepare('INSERT INTO blackbox (seq, time, kind, type, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#setHead = prepare('UPDATE blackbox_meta SET head_seq = ?, head_hash = ? WHERE id = 1');
    this.#setAnchor = prepare('UPDATE blackbox_meta SET anchor_seq = ?, anchor_hash = ? WHERE id = 1');
    this.#oldestPage = prepare(`SELECT seq, time, length(CAST(type AS BLOB)) + length(CAST(payload AS BLOB)) + ${ROW_OVERHEAD_BYTES} AS bytes FROM blackbox WHERE seq > ? ORDER BY seq LIMIT ?`);
    this.#hashAt = prepare('SELECT hash FROM blackbox WHERE seq = ?');
    this.#deleteUpTo = prepare('DELETE FROM blackbox WHERE seq <= ?');
    this.#oldest = prepare('SELECT time FROM blackbox ORDER BY seq LIMIT 1');
    this.#totals = prepare(`SELECT COALESCE(SUM(length(CAST(type AS BLOB)) + length(CAST(payload AS BLOB)) + ${ROW_OVERHEAD_BYTES}), 0) AS bytes FROM blackbox`);

    const base = (prepare('PRAGMA synchronous') as BetterSqlite3.Statement<[], { synchronous: number }>).get()?.synchronous ?? 1;
    const durable = SYNC_LEVELS[opts.durableSynchronous ?? 'FULL']!;
    if (durable !== base) {
      this.#syncDurable = prepare(`PRAGMA synchronous = ${durable}`);
      this.#syncBase = prepare(`PRAGMA synchronous = ${Number(base)}`);
    }

    this.#writeBatch = raw.transaction((rows: readonly PendingRow[]) => this.#writeRows(rows));
    this.#pruneTx = raw.transaction(() => this.#pruneRows());

    const meta = this.#readMeta();
    this.#lastSeq = this.#committedSeq = meta.head_seq;
    this.#lastHash = this.#committedHash = meta.head_hash;
    this.#rows = meta.head_seq - meta.anchor_seq;
    this.#bytes = this.#maxBytes === undefined ? -1 : this.#totals.get()!.bytes;
    this.#oldestTime = this.#oldest.get()?.time;
  }

  /**
   * Appends an event to the current batch; returns its seq (NOT_RECORDED if dropped because writes
   * have been failing for `maxPending` events). Throws BlackboxError('invalid_event' |
   * 'invalid_payload') for a bad kind, type, time or payload, and 'closed' after close().
   *
   * @example const seq = box.record('input', 'venue.response', { cloid, status }, now);
   */
  record(kind: BlackboxKind, type: string, payload: unknown, time: number): number {
    this.#check(kind, type, time);
    const text = canonicalJson(payload);
    if (this.#pending.length >= this.#maxPending) {
      this.#c.dropped += 1;
      this.#droppedSinceGap += 1;
      return NOT_RECORDED;
    }
    const seq = this.#append(kind, type, text, time);
    if (this.#pending.length >= this.#maxBatch && !this.#failing) this.#flush(false);
    else this.#arm();
    return seq;
  }

  /**
   * Appends an event and commits it (with everything pending before it) before returning its seq:
   * record what is about to be done, then do it. Throws BlackboxError('in_transaction') inside an
   * open transaction of the same connection (the commit would not be its own), 'write_failed' when
   * the commit fails (the event stays pending; do not act), or as `record` does.
   *
   * @example box.recordDurable('decision', 'order.intent', intent, now); await venue.placeOrder(…);
   */
  recordDurable(kind: BlackboxKind, type: string, payload: unknown, time: number): number {
    this.#check(kind, type, time);
    const text = canonicalJson(payload);
    if (this.#raw.inTransaction) throw new BlackboxError('in_transaction', 'a durable record must be its own transaction: it would not be durable inside an open one');
    const seq = this.#append(kind, type, text, time);
    this.#syncDurable?.run();
    try {
      this.#flush(true);
    } finally {
      this.#syncBase?.run();
    }
    this.#c.durableFlushes += 1;
    return seq;
  }

  /** Commits every pending event now; returns how many rows were written (0 when deferred or failed: see stats). */
  flush(): number {
    return this.#flush(false);
  }

  /**
   * Applies retention now (a flush does when a limit is exceeded); returns the rows deleted.
   * Never throws: failures are counted in `pruneErrors`.
   */
  prune(): number {
    if (this.#raw.inTransaction) return 0;
    try {
      return this.#pruneTx.immediate();
    } catch (e) {
      this.#c.pruneErrors += 1;
      this.#lastError = `prune: ${(e as Error).message}`;
      return 0;
    }
  }

  /** Flushes what is pending and stops; later records throw. Returns how many events could not be written. */
  close(): { readonly written: number; readonly lost: number } {
    if (this.#closed) return { written: 0, lost: 0 };
    const written = this.#flush(false);
    this.#closed = true;
    this.#disarm();
    const lost = this.#pending.length;
    this.#pending = [];
    return { written, lost };
  }

  stats(): BlackboxStats {
    return {
      ...this.#c,
      pending: this.#pending.length,
      headSeq: this.#lastSeq,
      committedSeq: this.#committedSeq,
      rows: this.#rows,
      bytes: this.#bytes,
    };
  }

  /** The last write or prune failure's message, if any. */
  lastError(): string | undefined {
    return this.#lastError;
  }

  #check(kind: BlackboxKind, type: string, time: number): void {
    if (this.#closed) throw new BlackboxError('closed', 'the black box recorder is closed');
    if (!isBlackboxKind(kind)) throw new BlackboxError('invalid_event', `kind must be one of ${BLACKBOX_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
    if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) throw new BlackboxError('invalid_event', `type must match ${String(TYPE_PATTERN)}, got ${JSON.stringify(type)}`);
    if (!Number.isSafeInteger(time) || time < 0) throw new BlackboxError('invalid_event', `time must be a non-negative integer (ms), got ${String(time)}`);
  }

  #append(kind: BlackboxKind, type: string, payload: string, time: number): number {
    if (this.#droppedSinceGap > 0) {
      const n = this.#droppedSinceGap;
      this.#droppedSinceGap = 0;
      this.#push('input', GAP_EVENT_TYPE, canonicalJson({ dropped: n }), time);
    }
    return this.#push(kind, type, payload, time);
  }

  #push(kind: BlackboxKind, type: string, payload: string, time: number): number {
    const seq = this.#lastSeq + 1;
    const hash = chainHash(this.#lastHash, seq, time, kind, type, payload);
    this.#pending.push({ seq, time, kind, type, payload, prevHash: this.#lastHash, hash, bytes: Buffer.byteLength(type) + Buffer.byteLength(payload) + ROW_OVERHEAD_BYTES });
    this.#lastSeq = seq;
    this.#lastHash = hash;
    this.#c.recorded += 1;
    return seq;
  }

  #flush(durable: boolean): number {
    this.#disarm();
    const batch = this.#pending;
    if (batch.length === 0) return 0;
    if (this.#raw.inTransaction) {
      this.#c.deferredFlushes += 1;
      this.#arm();
      return 0;
    }
    const t0 = performance.now();
    try {
      this.#writeBatch.immediate(batch);
    } catch (e) {
      this.#c.flushErrors += 1;
      this.#failing = true;
      this.#lastError = `flush: ${(e as Error).message}`;
      this.#arm();
      if (durable) throw new BlackboxError('write_failed', `the black box could not commit: ${(e as Error).message}`, undefined, { cause: e });
      return 0;
    }
    const ms = performance.now() - t0;
    this.#failing = false;
    this.#pending = [];
    const last = batch[batch.length - 1]!;
    if (this.#rows === 0) this.#oldestTime = batch[0]!.time;
    this.#committedSeq = last.seq;
    this.#committedHash = last.hash;
    this.#rows += batch.length;
    if (this.#bytes >= 0) for (const r of batch) this.#bytes += r.bytes;
    this.#c.written += batch.length;
    this.#c.flushes += 1;
    this.#c.lastFlushMs = ms;
    this.#c.totalFlushMs += ms;
    if (ms > this.#c.maxFlushMs) this.#c.maxFlushMs = ms;
    if (this.#overLimits()) this.prune();
    return batch.length;
  }

  /** Runs inside the batch transaction. */
  #writeRows(rows: readonly PendingRow[]): void {
    const meta = this.#readMeta();
    if (meta.head_seq !== this.#committedSeq || meta.head_hash !== this.#committedHash) this.#rebase(meta);
    for (const r of rows) this.#insert.run(r.seq, r.time, r.kind, r.type, r.payload, r.prevHash, r.hash);
    const last = rows[rows.length - 1]!;
    this.#setHead.run(last.seq, last.hash);
  }

  /** Another writer moved the head: chain the pending rows onto it instead. */
  #rebase(meta: MetaRow): void {
    this.#c.rebases += 1;
    this.#committedSeq = meta.head_seq;
    this.#committedHash = meta.head_hash;
    this.#rows = meta.head_seq - meta.anchor_seq;
    if (this.#bytes >= 0) this.#bytes = this.#totals.get()!.bytes;
    this.#oldestTime = this.#oldest.get()?.time;
    let seq = meta.head_seq;
    let prev = meta.head_hash;
    for (const r of this.#pending) {
      seq += 1;
      r.seq = seq;
      r.prevHash = prev;
      r.hash = chainHash(prev, seq, r.time, r.kind, r.type, r.payload);
      prev = r.hash;
    }
    this.#lastSeq = seq;
    this.#lastHash = prev;
  }

  #overLimits(): boolean {
    if (this.#maxRows !== undefined && this.#rows > this.#maxRows) return true;
    if (this.#maxBytes !== undefined && this.#bytes > this.#maxBytes) return true;
    return this.#maxAgeMs !== undefined && this.#oldestTime !== undefined && this.#oldestTime < this.#clock() - this.#maxAgeMs;
  }

  /** Runs inside the prune transaction: deletes the longest prefix that must go, moves the anchor. */
  #pruneRows(): number {
    const meta = this.#readMeta();
    const keepRows = this.#maxRows === undefined ? Infinity : Math.floor(this.#maxRows * this.#target);
    const keepBytes = this.#maxBytes === undefined ? Infinity : Math.floor(this.#maxBytes * this.#target);
    const cutoff = this.#maxAgeMs === undefined ? -Infinity : this.#clock() - Math.floor(this.#maxAgeMs * this.#target);
    let rows = meta.head_seq - meta.anchor_seq;
    let bytes = this.#bytes;
    let cut = meta.anchor_seq;
    let deleted = 0;
    scan: for (;;) {
      const page = this.#oldestPage.all(cut, PRUNE_PAGE);
      if (page.length === 0) break;
      for (const r of page) {
        const mustGo = rows > keepRows || (this.#bytes >= 0 && bytes > keepBytes) || r.time < cutoff;
        if (!mustGo || deleted >= this.#maxRowsPerPrune) break scan;
        cut = r.seq;
        rows -= 1;
        bytes -= r.bytes;
        deleted += 1;
      }
    }
    if (deleted === 0) return 0;
    const anchor = this.#hashAt.get(cut);
    if (anchor === undefined) throw new BlackboxError('corrupt', `black box row ${cut} vanished during pruning`);
    this.#deleteUpTo.run(cut);
    this.#setAnchor.run(cut, anchor.hash);
    this.#rows = rows;
    if (this.#bytes >= 0) this.#bytes = bytes;
    this.#oldestTime = this.#oldest.get()?.time;
    this.#c.prunes += 1;
    this.#c.prunedRows += deleted;
    return deleted;
  }

  #readMeta(): MetaRow {
    const m = this.#meta.get();
    if (m === undefined) throw new BlackboxError('corrupt', 'blackbox_meta has no row');
    return m;
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed || this.#pending.length === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush(false);
    }, this.#flushIntervalMs);
    // A pending batch must not keep the process alive; close() flushes it on shutdown.
    this.#timer.unref();
  }

  #disarm(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}
