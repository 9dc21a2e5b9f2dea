/**
 * The black box on a real SQLite file: batching and ordering, durable records, chain verification,
 * tampering and deletion caught at their seq, retention that keeps the chain verifiable, the
 * recorder's refusals, write failures that lose nothing, and a second writer re-chained onto.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import { BlackboxError, chainHash, GENESIS_HASH } from '../../src/store/blackbox-codec.ts';
import { BlackboxReader } from '../../src/store/blackbox-reader.ts';
import { BlackboxRecorder, GAP_EVENT_TYPE, NOT_RECORDED, type BlackboxRecorderOptions } from '../../src/store/blackbox-recorder.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { retainNative } from '../../src/store/native-lifetime.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-blackbox-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

interface Box {
  readonly store: Store;
  readonly box: BlackboxRecorder;
  readonly reader: BlackboxReader;
  readonly file: string;
  /** Runs SQL on the file as an outsider would (a separate connection): the tamperer. */
  readonly sql: (text: string, ...params: unknown[]) => void;
}

async function open(opts: BlackboxRecorderOptions = {}, storeOpts: { busyTimeoutMs?: number } = {}): Promise<Box> {
  const file = path.join(dir, `box-${++fileNo}.sqlite`);
  const store = await openStore({ path: file, ...storeOpts });
  const box = new BlackboxRecorder(store.raw, { flushIntervalMs: 60_000, ...opts });
  const reader = new BlackboxReader(store.raw);
  const sql = (text: string, ...params: unknown[]) => {
    const c = retainNative(new BetterSqlite3(file));
    retainNative(c.prepare(text)).run(...params);
    c.close();
  };
  return { store, box, reader, file, sql };
}

function fill(box: BlackboxRecorder, n: number, t0 = 1_000): number[] {
  const seqs: number[] = [];
  for (let i = 0; i < n; i++) seqs.push(box.record(i % 3 === 0 ? 'decision' : 'input', i % 3 === 0 ? 'strategy.signal' : 'feed.trade', { i, px: dec(60_000 + i) }, t0 + i));
  return seqs;
}

describe('recording', () => {
  it('assigns contiguous seqs in call order, flushes every maxBatch events, and reads back in order', async () => {
    const { box, reader, store } = await open({ maxBatch: 100 });
    const seqs = fill(box, 250);
    expect(seqs).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(box.stats()).toMatchObject({ recorded: 250, written: 200, pending: 50, flushes: 2, headSeq: 250, committedSeq: 200 });
    expect(reader.head()).toMatchObject({ headSeq: 200, anchorSeq: 0, anchorHash: GENESIS_HASH, firstSeq: 1, rows: 200 });
    expect(box.flush()).toBe(50);
    const rows = [...reader.range(1, 1000, 64)];
    expect(rows.map((r) => r.seq)).toEqual(seqs);
    expect(rows[7]).toMatchObject({ seq: 8, time: 1_007, kind: 'input', type: 'feed.trade', payload: '{"i":7,"px":"60007"}' });
    expect(rows[0]!.prevHash).toBe(GENESIS_HASH);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prevHash).toBe(rows[i - 1]!.hash);
    expect(reader.page(100, 102).map((r) => r.seq)).toEqual([100, 101, 102]);
    expect(reader.get(250)?.hash).toBe(reader.head().headHash);
    expect(reader.seqAtOrAfter(1_100)).toBe(101);
    expect(reader.seqAtOrAfter(0)).toBe(1);
    expect(reader.seqAtOrAfter(99_999)).toBeUndefined();
    expect(reader.verify()).toEqual({ ok: true, rows: 250, fromSeq: 1, toSeq: 250 });
    expect(reader.verify(40, 60)).toEqual({ ok: true, rows: 21, fromSeq: 40, toSeq: 60 });
    box.close();
    store.close();
  });

  it('flushes on its timer when the batch is not full', async () => {
    const { box, reader, store } = await open({ flushIntervalMs: 10 });
    box.record('input', 'timer.fired', { name: 'poll' }, 5);
    expect(reader.head().headSeq).toBe(0);
    await vi.waitFor(() => expect(reader.head().headSeq).toBe(1), { timeout: 5_000, interval: 5 });
    expect(box.stats()).toMatchObject({ written: 1, pending: 0, flushes: 1 });
    box.close();
    store.close();
  });

  it('records the payload as it was when recorded, serialized canonically', async () => {
    const { box, reader, store } = await open();
    const payload: { side: string; px: unknown; tags: Map<string, number> } = { side: 'buy', px: dec('1.50'), tags: new Map([['z', 1], ['a', 2]]) };
    box.record('decision', 'risk.verdict', payload, 1);
    payload.side = 'sell';
    box.flush();
    expect(reader.get(1)?.payload).toBe('{"px":"1.5","side":"buy","tags":{"a":2,"z":1}}');
    box.close();
    store.close();
  });

  it('a durable record is committed (with everything before it) when it returns', async () => {
    const { box, store, file } = await open();
    fill(box, 10);
    const seq = box.recordDurable('decision', 'order.intent', { cloid: '0x01' }, 2_000);
    expect(seq).toBe(11);
    expect(box.stats()).toMatchObject({ pending: 0, written: 11, durableFlushes: 1 });
    // Seen by another connection: committed, not just written to this connection's cache.
    const other = BlackboxReader.open(file);
    expect(other.head().headSeq).toBe(11);
    expect(other.verify().ok).toBe(true);
    other.close();
    // The store's usual synchronous level (NORMAL = 1) is restored after the FULL commit.
    expect(store.raw.pragma('synchronous', { simple: true })).toBe(1);
    box.close();
    store.close();
  });

  it('a new recorder on the same database continues the seq and the chain', async () => {
    const first = await open();
    fill(first.box, 30);
    first.box.close();
    const again = new BlackboxRecorder(first.store.raw, { flushIntervalMs: 60_000 });
    expect(again.stats()).toMatchObject({ headSeq: 30, committedSeq: 30, rows: 30 });
    expect(again.record('input', 'operator.command', { cmd: 'pause' }, 9_000)).toBe(31);
    again.close();
    expect(first.reader.verify()).toMatchObject({ ok: true, rows: 31 });
    expect(first.reader.get(31)?.prevHash).toBe(first.reader.get(30)?.hash);
    first.store.close();
  });

  it('refuses bad events, durable records inside a transaction, and use after close', async () => {
    const { box, store } = await open();
    expect(() => box.record('output' as 'input', 'x', {}, 1)).toThrow(/kind/);
    expect(() => box.record('input', 'has space', {}, 1)).toThrow(/type/);
    expect(() => box.record('input', 'ok', {}, 1.5)).toThrow(/time/);
    expect(() => box.record('input', 'ok', {}, -1)).toThrow(/time/);
    const cyclic: Record<string, unknown> = {};
    cyclic.me = cyclic;
    expect(() => box.record('input', 'ok', cyclic, 1)).toThrow(BlackboxError);
    expect(box.stats().recorded).toBe(0);

    box.record('input', 'a', 1, 1);
    store.transaction(() => {
      expect(() => box.recordDurable('decision', 'order.intent', {}, 2)).toThrow(expect.objectContaining({ kind: 'in_transaction' }));
      // A flush due inside someone else's transaction waits: its rows must not roll back with it.
      expect(box.flush()).toBe(0);
    });
    expect(box.stats()).toMatchObject({ deferredFlushes: 1, pending: 1 });
    expect(box.flush()).toBe(1);
    expect(box.close()).toEqual({ written: 0, lost: 0 });
    expect(() => box.record('input', 'a', 1, 1)).toThrow(expect.objectContaining({ kind: 'closed' }));
    store.close();
  });

  it('refuses a database without the black box tables', () => {
    const file = path.join(dir, 'bare.sqlite');
    const raw = retainNative(new BetterSqlite3(file));
    expect(() => new BlackboxRecorder(raw)).toThrow(expect.objectContaining({ kind: 'not_migrated' }));
    expect(() => BlackboxReader.open(file)).toThrow(expect.objectContaining({ kind: 'not_migrated' }));
    raw.close();
  });
});

describe('verification', () => {
  it('passes on an empty log and on an intact one', async () => {
    const { box, reader, store } = await open();
    expect(reader.verify()).toEqual({ ok: true, rows: 0, fromSeq: 1, toSeq: 0 });
    fill(box, 20);
    box.flush();
    expect(reader.verify()).toEqual({ ok: true, rows: 20, fromSeq: 1, toSeq: 20 });
    box.close();
    store.close();
  });

  it('detects an altered payload at its seq', async () => {
    const { box, reader, store, sql } = await open();
    fill(box, 50);
    box.flush();
    sql(`UPDATE blackbox SET payload = '{"i":17,"px":"1"}' WHERE seq = 18`);
    expect(reader.verify()).toMatchObject({ ok: false, seq: 18, problem: 'hash_mismatch', rows: 17 });
    // A range that stops before the altered row still verifies; one that starts after it too.
    expect(reader.verify(1, 17)).toMatchObject({ ok: true, rows: 17 });
    expect(reader.verify(19)).toMatchObject({ ok: true, rows: 32 });
    box.close();
    store.close();
  });

  it('detects a row whose hash was recomputed to match the alteration at the next seq, or at the head', async () => {
    const { box, reader, store, sql } = await open();
    fill(box, 10);
    box.flush();
    const r5 = reader.get(5)!;
    const forged = '{"i":4,"px":"1"}';
    sql('UPDATE blackbox SET payload = ?, hash = ? WHERE seq = 5', forged, chainHash(r5.prevHash, 5, r5.time, r5.kind, r5.type, forged));
    expect(reader.verify()).toMatchObject({ ok: false, seq: 6, problem: 'prev_hash_mismatch' });
    const r10 = reader.get(10)!;
    sql('UPDATE blackbox SET payload = ?, hash = ? WHERE seq = 10', forged, chainHash(r10.prevHash, 10, r10.time, r10.kind, r10.type, forged));
    expect(reader.verify(7)).toMatchObject({ ok: false, seq: 10, problem: 'head_mismatch' });
    box.close();
    store.close();
  });

  it('detects a deleted row in the middle, at the start and at the end', async () => {
    const { box, reader, store, sql } = await open();
    fill(box, 30);
    box.flush();
    sql('DELETE FROM blackbox WHERE seq = 12');
    expect(reader.verify()).toMatchObject({ ok: false, seq: 12, problem: 'missing_row' });
    expect(reader.verify(13)).toMatchObject({ ok: false, seq: 12, problem: 'missing_row' });
    sql('DELETE FROM blackbox WHERE seq = 1');
    expect(reader.verify()).toMatchObject({ ok: false, seq: 1, problem: 'missing_row' });
    expect(reader.verify(20)).toMatchObject({ ok: true, rows: 11 });
    sql('DELETE FROM blackbox WHERE seq = 30');
    expect(reader.verify(20)).toMatchObject({ ok: false, seq: 30, problem: 'missing_row' });
    box.close();
    store.close();
  });

  it('detects rows with impossible columns, rows outside the ends, and other kinds of edits', async () => {
    const { box, reader, store, sql } = await open();
    fill(box, 10);
    box.flush();
    sql("UPDATE blackbox SET time = 'noon' WHERE seq = 3");
    expect(reader.verify()).toMatchObject({ ok: false, seq: 3, problem: 'invalid_row' });
    expect(() => reader.get(3)).toThrow(expect.objectContaining({ kind: 'corrupt' }));
    sql('UPDATE blackbox SET time = 1002 WHERE seq = 3');
    expect(reader.verify().ok).toBe(true);
    sql("UPDATE blackbox SET type = 'feed.other' WHERE seq = 4");
    expect(reader.verify()).toMatchObject({ ok: false, seq: 4, problem: 'hash_mismatch' });
    sql("UPDATE blackbox SET type = 'strategy.signal' WHERE seq = 4");
    sql("UPDATE blackbox SET kind = 'decision' WHERE seq = 5");
    expect(reader.verify()).toMatchObject({ ok: false, seq: 5, problem: 'hash_mismatch' });
    sql("UPDATE blackbox SET kind = 'input' WHERE seq = 5");
    sql(`INSERT INTO blackbox (seq, time, kind, type, payload, prev_hash, hash) VALUES (11, 1, 'input', 'x', '{}', ?, ?)`, GENESIS_HASH, GENESIS_HASH);
    expect(reader.verify()).toMatchObject({ ok: false, seq: 11, problem: 'unexpected_row' });
    expect(reader.verify(1, 10)).toMatchObject({ ok: true, rows: 10 });
    box.close();
    store.close();
  });
});

describe('retention', () => {
  it('by rows: prunes the oldest rows, moves the anchor, and the chain verifies from the new first row', async () => {
    const { box, reader, store } = await open({ maxBatch: 50, retention: { maxRows: 100 } });
    fill(box, 1_000);
    box.flush();
    const head = reader.head();
    expect(head.rows).toBeLessThanOrEqual(100);
    expect(head.headSeq).toBe(1_000);
    expect(head.firstSeq).toBe(head.anchorSeq + 1);
    expect(reader.get(head.firstSeq!)!.prevHash).toBe(head.anchorHash);
    expect(reader.verify()).toMatchObject({ ok: true, rows: head.rows, toSeq: 1_000 });
    const s = box.stats();
    expect(s.prunes).toBeGreaterThan(0);
    expect(s.prunedRows).toBe(head.anchorSeq);
    expect(s.rows).toBe(head.rows);
    // Pruned ranges are simply absent; a range starting before the anchor verifies what is kept.
    expect(reader.verify(1)).toMatchObject({ ok: true, fromSeq: head.anchorSeq + 1 });
    // And a tampered row after pruning is still caught at its seq.
    store.raw.prepare('UPDATE blackbox SET payload = ? WHERE seq = ?').run('{}', 995);
    expect(reader.verify()).toMatchObject({ ok: false, seq: 995, problem: 'hash_mismatch' });
    box.close();
    store.close();
  });

  it('by age, against the injected clock, keeping the newest rows', async () => {
    let now = 10_000;
    const { box, reader, store } = await open({ retention: { maxAgeMs: 1_000, target: 1 }, clock: () => now });
    for (let t = 0; t < 100; t++) box.record('input', 'feed.trade', { t }, 9_000 + t * 10);
    box.flush();
    // Oldest row (time 9000) is exactly 1000 ms old: nothing is over age yet.
    expect(reader.head()).toMatchObject({ anchorSeq: 0, rows: 100 });
    now = 10_500;
    box.record('input', 'feed.trade', { t: 100 }, 10_500);
    box.flush();
    const h = reader.head();
    expect(h.anchorSeq).toBe(50);
    expect(reader.get(h.firstSeq!)!.time).toBe(9_500);
    expect(reader.verify()).toMatchObject({ ok: true, rows: 51 });
    box.close();
    store.close();
  });

  it('by bytes, counting type, payload and a per-row overhead', async () => {
    const { box, reader, store } = await open({ maxBatch: 10, retention: { maxBytes: 20_000 } });
    const big = 'x'.repeat(800);
    for (let i = 0; i < 200; i++) box.record('input', 'venue.response', { i, big }, i);
    box.flush();
    const s = box.stats();
    expect(s.bytes).toBeLessThanOrEqual(20_000);
    expect(s.bytes).toBeGreaterThan(0);
    const [{ bytes }] = store.raw.prepare("SELECT SUM(length(CAST(type AS BLOB)) + length(CAST(payload AS BLOB)) + 160) AS bytes FROM blackbox").all() as [{ bytes: number }];
    expect(s.bytes).toBe(bytes);
    expect(reader.verify()).toMatchObject({ ok: true, toSeq: 200 });
    box.close();
    store.close();
  });

  it('pruning everything leaves an empty log that verifies and keeps chaining from the anchor', async () => {
    let now = 0;
    const { box, reader, store } = await open({ retention: { maxAgeMs: 10 }, clock: () => now });
    fill(box, 20, 0);
    box.flush();
    now = 1_000_000;
    expect(box.prune()).toBe(20);
    expect(reader.head()).toMatchObject({ anchorSeq: 20, headSeq: 20, firstSeq: undefined, rows: 0 });
    expect(reader.verify()).toMatchObject({ ok: true, rows: 0 });
    const reopened = new BlackboxRecorder(store.raw, { flushIntervalMs: 60_000 });
    expect(reopened.record('input', 'feed.trade', {}, now)).toBe(21);
    reopened.flush();
    expect(reader.get(21)!.prevHash).toBe(reader.head().anchorHash);
    expect(reader.verify()).toMatchObject({ ok: true, rows: 1, fromSeq: 21 });
    reopened.close();
    box.close();
    store.close();
  });

  it('deletes at most maxRowsPerPrune rows per prune', async () => {
    const { box, reader, store } = await open({ retention: { maxRows: 10, maxRowsPerPrune: 25 } });
    fill(box, 100);
    box.flush();
    expect(reader.head().anchorSeq).toBe(25);
    expect(box.prune()).toBe(25);
    expect(box.prune()).toBe(25);
    expect(box.prune()).toBe(16);
    expect(reader.head().rows).toBe(9);
    expect(reader.verify().ok).toBe(true);
    box.close();
    store.close();
  });
});

describe('failures', () => {
  it('a failed batch stays pending and is written later; a failed durable record throws', async () => {
    const { box, reader, store, file } = await open({ maxPending: 20 }, { busyTimeoutMs: 20 });
    fill(box, 5);
    // Another connection holds the write lock: the flush cannot commit.
    const locker = retainNative(new BetterSqlite3(file));
    retainNative(locker.prepare('BEGIN IMMEDIATE')).run();
    expect(box.flush()).toBe(0);
    expect(() => box.recordDurable('decision', 'order.intent', { cloid: '0x02' }, 2_000)).toThrow(expect.objectContaining({ kind: 'write_failed' }));
    expect(box.stats()).toMatchObject({ flushErrors: 2, pending: 6, written: 0 });
    expect(box.lastError()).toMatch(/locked|busy/i);
    // Writes keep failing: beyond maxPending, events are dropped, not queued without bound.
    const more = fill(box, 20, 3_000);
    expect(more.filter((s) => s === NOT_RECORDED).length).toBe(6);
    expect(box.stats()).toMatchObject({ pending: 20, dropped: 6 });
    retainNative(locker.prepare('COMMIT')).run();
    locker.close();
    // The retry (the timer's, here by hand) writes what was kept, in order.
    expect(box.flush()).toBe(20);
    // The next accepted event is preceded by a gap marker saying how many were lost.
    const seq = box.record('input', 'feed.trade', { after: true }, 4_000);
    expect(seq).toBe(22);
    expect(box.flush()).toBe(2);
    expect(reader.get(seq - 1)).toMatchObject({ type: GAP_EVENT_TYPE, kind: 'input', payload: '{"dropped":6}' });
    expect(reader.get(6)?.type).toBe('order.intent');
    expect(reader.verify()).toMatchObject({ ok: true, rows: seq });
    box.close();
    store.close();
  });

  it('re-chains its pending rows onto rows another writer committed meanwhile', async () => {
    const { box, reader, store } = await open();
    fill(box, 5);
    box.flush();
    fill(box, 3);
    const intruder = new BlackboxRecorder(store.raw, { flushIntervalMs: 60_000 });
    intruder.record('input', 'operator.command', { who: 'other' }, 7);
    intruder.close();
    expect(box.flush()).toBe(3);
    expect(box.stats()).toMatchObject({ rebases: 1, headSeq: 9, committedSeq: 9, rows: 9 });
    expect(reader.get(6)?.type).toBe('operator.command');
    expect(reader.verify()).toEqual({ ok: true, rows: 9, fromSeq: 1, toSeq: 9 });
    box.close();
    store.close();
  });
});
