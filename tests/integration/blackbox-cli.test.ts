/**
 * `keel blackbox export` and `keel blackbox verify` as an operator runs them: real processes
 * reading $KEEL_DATA_DIR/keel.sqlite (or --db), while the runtime is stopped and while a recorder
 * is writing to the same file.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportBlackbox, formatVerifyResult, verifyBlackbox } from '../../src/cli/blackbox-command.ts';
import { dec } from '../../src/domain/decimal.ts';
import { chainHash } from '../../src/store/blackbox-codec.ts';
import { BlackboxRecorder } from '../../src/store/blackbox-recorder.ts';
import { openStore } from '../../src/store/index.ts';

const root = path.resolve(import.meta.dirname, '../..');
const main = path.join(root, 'src/cli/main.ts');
const cli = main;
const dir = mkdtempSync(path.join(tmpdir(), 'keel-blackbox-cli-'));
const dataDir = path.join(dir, 'data');
const file = path.join(dataDir, 'keel.sqlite');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keel(args: string[], env: Record<string, string> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [cli, 'blackbox', ...args], { encoding: 'utf8', env: { ...process.env, KEEL_DATA_DIR: dataDir, ...env } });
}

beforeAll(async () => {
  const store = await openStore({ path: file });
  const box = new BlackboxRecorder(store.raw, { maxBatch: 1000, flushIntervalMs: 60_000 });
  for (let i = 1; i <= 1_500; i++) {
    if (i % 10 === 0) box.record('decision', 'risk.verdict', { i, approved: i % 20 === 0, reason: i % 20 === 0 ? null : 'max_positions' }, 1_000 + i);
    else box.record('input', 'feed.trade', { i, px: dec('60000.25').plus(i), sz: dec('0.001'), note: 'quote "x"\n' }, 1_000 + i);
  }
  box.close();
  store.close();
});

describe('keel blackbox export', () => {
  it('writes every row as a JSON line with all fields, in seq order, chaining', () => {
    const r = keel(['export']);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.length).toBe(1_500);
    const rows = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(rows[0]!).sort()).toEqual(['hash', 'kind', 'payload', 'prev_hash', 'seq', 'time', 'type']);
    expect(rows[9]).toMatchObject({ seq: 10, time: 1_010, kind: 'decision', type: 'risk.verdict', payload: { i: 10, approved: false, reason: 'max_positions' } });
    expect(rows[0]).toMatchObject({ seq: 1, kind: 'input', type: 'feed.trade', payload: { i: 1, note: 'quote "x"\n', px: '60001.25', sz: '0.001' } });
    // The exported payload re-serializes to the hashed text: anyone can re-verify an export.
    let prev = '0'.repeat(64);
    for (const row of rows) {
      expect(row.prev_hash).toBe(prev);
      expect(chainHash(prev, row.seq as number, row.time as number, row.kind as string, row.type as string, JSON.stringify(row.payload))).toBe(row.hash);
      prev = row.hash as string;
    }
  });

  it('--from/--to select a range; --out writes a 0600 file', () => {
    const out = path.join(dir, 'range.jsonl');
    const r = keel(['export', '--from', '1001', '--to', '1003', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('exported 3 rows');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1001, 1002, 1003]);
  });

  it('waits for a slow reader, stops quietly on a closed pipe, and reports other stream errors', async () => {
    const slow = new PassThrough({ highWaterMark: 1024 });
    let done = false;
    const exporting = exportBlackbox(file, { to: 1200 }, slow).then((n) => {
      done = true;
      return n;
    });
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(done).toBe(false); // nobody reads: the first page is held back, not buffered without bound
    let text = '';
    slow.on('data', (d: Buffer) => (text += d.toString()));
    expect(await exporting).toBe(1200);
    expect(text.trimEnd().split('\n').length).toBe(1200);

    const failing = (code: string) =>
      new Writable({
        write: (_chunk, _enc, cb) => cb(Object.assign(new Error(code), { code })),
      });
    // `keel blackbox export | head`: the first page is written, then the export ends without error.
    expect(await exportBlackbox(file, { to: 1200 }, failing('EPIPE'))).toBe(1000);
    await expect(exportBlackbox(file, { to: 1200 }, failing('ENOSPC'))).rejects.toThrow(/ENOSPC/);
  });

  it('refuses a bad seq and a missing database with one line and a non-zero exit', () => {
    const bad = keel(['export', '--from', 'abc']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--from.*non-negative integer/);
    const missing = keel(['export'], { KEEL_DATA_DIR: path.join(dir, 'nowhere') });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/no database at/);
  });
});

describe('keel blackbox verify', () => {
  it('prints ok and exits 0 on an intact log, even while a recorder is writing', async () => {
    const r = keel(['verify']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('ok: 1500 rows verified (seq 1..1500)');

    const store = await openStore({ path: file });
    const box = new BlackboxRecorder(store.raw, { maxBatch: 50 });
    let n = 0;
    const writing = setInterval(() => {
      for (let i = 0; i < 50; i++) box.record('input', 'feed.trade', { n: ++n }, 5_000 + n);
    }, 1);
    try {
      const child = spawn(process.execPath, [cli, 'blackbox', 'verify', '--json'], { env: { ...process.env, KEEL_DATA_DIR: dataDir } });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
      expect(code).toBe(0);
      const v = JSON.parse(out) as { ok: boolean; rows: number };
      expect(v.ok).toBe(true);
      expect(v.rows).toBeGreaterThanOrEqual(1_500);
    } finally {
      clearInterval(writing);
      box.close();
    }
    expect(n).toBeGreaterThan(0);
    expect(verifyBlackbox(file)).toMatchObject({ ok: true, rows: 1_500 + n });
    store.close();
  });

  it('prints the first broken seq and exits 1 after tampering', async () => {
    const store = await openStore({ path: file });
    store.raw.prepare('UPDATE blackbox SET payload = ? WHERE seq = ?').run('{"i":700,"approved":true}', 700);
    store.close();
    const r = keel(['verify', '--db', file]);
    expect(r.status).toBe(1);
    expect(r.stdout.trim()).toBe(formatVerifyResult({ ok: false, seq: 700, problem: 'hash_mismatch', reason: 'row 700: hash does not match its contents (altered)', rows: 699 }));
    expect(r.stdout).toMatch(/^broken at seq 700: /);
    expect(keel(['verify', '--to', '699']).status).toBe(0);
  });
});
