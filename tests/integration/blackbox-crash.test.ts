/**
 * Durability of `recordDurable` under kill -9: a child records batched inputs and durable
 * decisions, printing each durable seq once recorded; it is SIGKILLed at seeded points, several
 * times over the same file. After every kill, each printed durable record is in the database with
 * its payload, the chain verifies end to end, and the next run continues the seq where it stopped.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BlackboxReader } from '../../src/store/blackbox-reader.ts';

const writer = path.resolve(import.meta.dirname, '../fixtures/blackbox-writer.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'keel-blackbox-crash-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** mulberry32: seeded, so the kill points are the same on every run. */
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
  readonly startHead: number;
  readonly durable: { readonly seq: number; readonly n: number }[];
}

function runAndKill(file: string, killAfter: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [writer, file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    let startHead = -1;
    const durable: { seq: number; n: number }[] = [];
    let killed = false;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (line[0] === 'ready') startHead = Number(line[1]);
        else if (line[0] === 'durable') durable.push({ seq: Number(line[1]), n: Number(line[2]) });
        if (durable.length >= killAfter && !killed) {
          killed = true;
          child.kill('SIGKILL');
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (!killed || signal !== 'SIGKILL') reject(new Error(`writer exited on its own (${code} ${signal}): ${stderr}`));
      else resolve({ startHead, durable });
    });
  });
}

describe('black box durability under SIGKILL', () => {
  it('every durable record printed before the kill survives it, and the chain stays whole', async () => {
    const rand = prng(11);
    const file = path.join(dir, 'keel.sqlite');
    let lastHead = 0;
    for (let k = 0; k < 4; k++) {
      const run = await runAndKill(file, 1 + Math.floor(rand() * 40));
      expect(run.durable.length).toBeGreaterThan(0);
      // The new run continues exactly at the last committed seq of the previous one.
      expect(run.startHead).toBe(lastHead);
      const reader = BlackboxReader.open(file);
      try {
        const v = reader.verify();
        expect(v).toMatchObject({ ok: true });
        for (const d of run.durable) {
          const row = reader.get(d.seq);
          expect(row).toMatchObject({ kind: 'decision', type: 'order.intent', time: d.n });
          expect(JSON.parse(row!.payload)).toMatchObject({ n: d.n });
          // Everything recorded before a durable record was committed with it.
          expect(reader.get(d.seq - 1)?.type).toBe('feed.trade');
        }
        const head = reader.head();
        expect(head.headSeq).toBeGreaterThanOrEqual(run.durable.at(-1)!.seq);
        expect(head.rows).toBe(head.headSeq);
        lastHead = head.headSeq;
      } finally {
        reader.close();
      }
    }
  });
});
