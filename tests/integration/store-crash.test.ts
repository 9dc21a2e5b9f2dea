/**
 * Crash safety of the intent commit: a child process commits intents in a loop and prints each
 * cloid once committed; it is SIGKILLed at a seeded point, several times over the same file. After
 * each kill the database opens cleanly, holds every cloid the child printed, keeps its prefix and
 * never hands out a counter value twice.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, parseCloidCounter } from '../../src/store/index.ts';
import { MIGRATIONS } from '../../migrations/index.ts';

const writer = path.resolve(import.meta.dirname, '../fixtures/store-writer.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'keel-store-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mulberry32: a small seeded PRNG so the kill points are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Run {
  readonly prefix: string | undefined;
  readonly cloids: string[];
  readonly signal: NodeJS.Signals | null;
}

/**
 * Runs the writer and SIGKILLs it once it has printed `killAfter` cloids, or, when `killAfter` is
 * 0, `delayMs` after it announced that it is opening the store (wherever the open, its migrations
 * or the first commits happen to be by then).
 */
function runAndKill(file: string, killAfter: number, delayMs = 0): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    let prefix: string | undefined;
    const cloids: string[] = [];
    let killed = false;
    const kill = () => {
      if (!killed) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line === 'opening' && killAfter === 0) setTimeout(kill, delayMs);
        else if (line.startsWith('ready ')) prefix = line.slice(6);
        else if (line.startsWith('cloid ')) cloids.push(line.slice(6));
        if (cloids.length >= killAfter && killAfter > 0) kill();
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (!killed) reject(new Error(`writer exited on its own (${code}): ${stderr}`));
      else resolve({ prefix, cloids, signal });
    });
  });
}

describe('store crash safety (SIGKILL during intent commits)', () => {
  it('a kill at a seeded instant of the open or its migrations leaves a database that opens', async () => {
    const rand = prng(7);
    for (let k = 0; k < 3; k++) {
      const file = path.join(dir, `early-${k}.sqlite`);
      const run = await runAndKill(file, 0, Math.floor(rand() * 60));
      expect(run.signal).toBe('SIGKILL');
      const store = await openStore({ path: file });
      try {
        expect(store.raw.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(store.raw.prepare('SELECT name FROM kysely_migration').pluck().all()).toEqual(Object.keys(MIGRATIONS).sort());
        for (const c of run.cloids) expect(store.orders.byCloid(c)?.cloid).toBe(c);
        expect(store.orders.recent(1_000_000).length).toBe(store.orders.lastCounter());
      } finally {
        store.close();
      }
    }
  });

  it('every printed cloid survives, the prefix holds and no counter is reused across repeated kills', async () => {
    const file = path.join(dir, 'crash.sqlite');
    const rand = prng(20240611);
    let prefix: string | undefined;
    let highest = 0;
    const printed = new Set<string>();
    for (let round = 0; round < 4; round++) {
      const killAfter = 1 + Math.floor(rand() * 150);
      const run = await runAndKill(file, killAfter);
      expect(run.signal).toBe('SIGKILL');
      expect(run.cloids.length).toBeGreaterThanOrEqual(killAfter);
      prefix ??= run.prefix;
      expect(run.prefix).toBe(prefix);

      const counters = run.cloids.map((c) => parseCloidCounter(prefix!, c));
      // This run's cloids continue strictly above every earlier run's: nothing reused after a crash.
      expect(counters[0]).toBeGreaterThan(highest);
      for (let k = 1; k < counters.length; k++) expect(counters[k]!).toBeGreaterThan(counters[k - 1]!);
      for (const c of run.cloids) {
        expect(printed.has(c)).toBe(false);
        printed.add(c);
      }
      highest = counters.at(-1)!;

      const store = await openStore({ path: file });
      try {
        expect(store.raw.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(store.orders.runtimePrefix).toBe(prefix);
        for (const c of printed) expect(store.orders.byCloid(c)?.cloid).toBe(c);
        const seqs = store.raw.prepare('SELECT seq FROM orders ORDER BY seq').pluck().all() as number[];
        expect(new Set(seqs).size).toBe(seqs.length);
        // The persisted counter covers every row: the next allocation cannot collide.
        expect(store.orders.lastCounter()).toBeGreaterThanOrEqual(Math.max(...seqs));
        expect(store.orders.lastCounter()).toBeGreaterThanOrEqual(highest);
        highest = store.orders.lastCounter();
      } finally {
        store.close();
      }
    }
    expect(printed.size).toBeGreaterThan(5);
  });
});
