/**
 * Scenarios 3 and 4, in this process on real SQLite files in a temp dir (the same disk keel's data
 * directory would be on):
 *  - black box: durable events/s through `BlackboxRecorder.record` (canonical JSON, hash chain,
 *    batches of 1000 in IMMEDIATE transactions, flushed until everything is committed) against raw
 *    better-sqlite3 batched inserts of the same rows (JSON.stringify, fixed hashes) into the same
 *    schema (a migrated keel database), same batch size and synchronous level, same run;
 *  - intent commit: p99 of `store.orders.commitIntent` (synchronous=FULL) against a raw
 *    single-row INSERT committed at synchronous=FULL in the same schema; the two alternate
 *    commit by commit so disk noise falls on both alike.
 */
import path from 'node:path';
import { openStore } from '../src/store/index.ts';
import { BlackboxRecorder } from '../src/store/blackbox-recorder.ts';
import { dec } from '../src/domain/decimal.ts';
import { summary, tempDir, type ScenarioResult } from './lib.ts';

function candlePayload(i: number) {
  const px = 17_000 + (i % 500) * 0.5;
  return { coin: i % 2 ? 'BTC' : 'ETH', interval: '1m', t: 1_700_000_000_000 + i * 60_000, o: px.toFixed(1), h: (px + 3).toFixed(1), l: (px - 2).toFixed(1), c: (px + 1).toFixed(1), v: '12.345', closed: true, source: 'ws' };
}

export async function blackboxBench(opts: { events: number; rounds: number }): Promise<ScenarioResult> {
  const dir = tempDir('bb');
  const keelStore = await openStore({ path: path.join(dir, 'keel.sqlite') });
  const rawStore = await openStore({ path: path.join(dir, 'raw.sqlite') });
  const box = new BlackboxRecorder(keelStore.raw, { maxBatch: 1000, flushIntervalMs: 100 });
  const raw = rawStore.raw;
  const insert = raw.prepare('INSERT INTO blackbox (seq, time, kind, type, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const setHead = raw.prepare('UPDATE blackbox_meta SET head_seq = ?, head_hash = ? WHERE id = 1');
  const H = 'f'.repeat(64);
  let rawSeq = 0;
  const rawBatch = raw.transaction((rows: { t: number; payload: unknown }[]) => {
    for (const r of rows) insert.run(++rawSeq, r.t, 'input', 'feed.candle', JSON.stringify(r.payload), H, H);
    setHead.run(rawSeq, H);
  });
  const runKeel = (n: number, base: number): number => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) box.record('input', 'feed.candle', candlePayload(base + i), 1_700_000_000_000 + i);
    box.flush();
    if (box.stats().pending !== 0) throw new Error('black box left events pending');
    return n / ((performance.now() - t0) / 1000);
  };
  const runRaw = (n: number, base: number): number => {
    const t0 = performance.now();
    let batch: { t: number; payload: unknown }[] = [];
    for (let i = 0; i < n; i++) {
      batch.push({ t: 1_700_000_000_000 + i, payload: candlePayload(base + i) });
      if (batch.length === 1000) {
        rawBatch.immediate(batch);
        batch = [];
      }
    }
    if (batch.length) rawBatch.immediate(batch);
    return n / ((performance.now() - t0) / 1000);
  };
  // Warm-up, then alternate (keel, raw) rounds.
  runKeel(20_000, 0);
  runRaw(20_000, 0);
  const k: number[] = [];
  const r: number[] = [];
  for (let i = 0; i < opts.rounds; i++) {
    k.push(runKeel(opts.events, (i + 1) * opts.events));
    r.push(runRaw(opts.events, (i + 1) * opts.events));
  }
  box.close();
  keelStore.close();
  rawStore.close();
  const kk = summary(k);
  const rr = summary(r);
  const ratio = kk.p50 / rr.p50;
  return {
    id: 'blackbox',
    title: 'Black box',
    method: `in-process: BlackboxRecorder.record + flush vs raw better-sqlite3 batched inserts (1000/tx) into the same schema, ${opts.rounds} alternating rounds of ${opts.events} events`,
    figures: [
      { name: 'keel events/s (median round)', value: kk.p50, unit: '/s' },
      { name: 'raw inserts/s (median round)', value: rr.p50, unit: '/s' },
      { name: 'keel / raw', value: ratio, unit: '×', target: '≥ 0.8', met: ratio >= 0.8 },
    ],
    details: { keelPerSecond: kk, rawPerSecond: rr, ratio },
  };
}

export async function intentCommitBench(opts: { commits: number }): Promise<ScenarioResult> {
  const dir = tempDir('intent');
  const keelStore = await openStore({ path: path.join(dir, 'keel.sqlite') });
  const rawStore = await openStore({ path: path.join(dir, 'raw.sqlite') });
  const raw = rawStore.raw;
  const full = raw.prepare('PRAGMA synchronous = FULL');
  full.run();
  const insert = raw.prepare(
    `INSERT INTO orders (cloid, seq, coin, asset_id, side, sz, px, reduce_only, tif, kind, created_at, state, filled_sz, updated_at)
     VALUES (?, ?, 'BTC', 0, 'buy', '0.01', '17000', 0, 'Ioc', 'entry', ?, 'intent', '0', ?)`,
  );
  const rawCommit = raw.transaction((seq: number) => insert.run(`0x${seq.toString(16).padStart(32, '0')}`, seq, seq, seq));
  const intent = (i: number) => ({ coin: 'BTC', assetId: 0, side: 'buy' as const, sz: dec('0.01'), px: dec(17_000 + (i % 100)), reduceOnly: false, tif: 'Ioc' as const, kind: 'entry' as const, createdAt: 1_700_000_000_000 + i });
  const k: number[] = [];
  const r: number[] = [];
  const warm = 100;
  for (let i = 0; i < opts.commits + warm; i++) {
    let t = performance.now();
    keelStore.orders.commitIntent(intent(i));
    const dk = performance.now() - t;
    t = performance.now();
    rawCommit.immediate(i + 1);
    const dr = performance.now() - t;
    if (i >= warm) {
      k.push(dk);
      r.push(dr);
    }
  }
  keelStore.close();
  rawStore.close();
  const kk = summary(k);
  const rr = summary(r);
  const ratio = kk.p99 / rr.p99;
  return {
    id: 'intent_commit',
    title: 'Intent commit',
    method: `in-process: store.orders.commitIntent (cloid counter + insert, synchronous=FULL) vs a raw single-row INSERT committed at FULL in the same schema, ${opts.commits} alternating commits`,
    figures: [
      { name: 'keel p50', value: kk.p50, unit: 'ms' },
      { name: 'keel p99', value: kk.p99, unit: 'ms' },
      { name: 'raw p50', value: rr.p50, unit: 'ms' },
      { name: 'raw p99', value: rr.p99, unit: 'ms' },
      { name: 'keel p99 / raw p99', value: ratio, unit: '×', target: '≤ 1.1', met: ratio <= 1.1 },
    ],
    details: { keel: kk, raw: rr, ratio },
  };
}
