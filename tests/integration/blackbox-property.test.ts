/**
 * Property: whatever was recorded (random payloads, batch sizes, durable records, retention), an
 * untouched log verifies from its anchor to its head, and any single edit of a stored row (a
 * column changed, or the row deleted) is reported at exactly that row's seq.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { BlackboxReader } from '../../src/store/blackbox-reader.ts';
import { BlackboxRecorder } from '../../src/store/blackbox-recorder.ts';
import { openStore, type Store } from '../../src/store/index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-blackbox-prop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const event = fc.record({
  kind: fc.constantFrom('input' as const, 'decision' as const),
  type: fc.constantFrom('feed.trade', 'venue.response', 'timer.fired', 'risk.verdict', 'order.intent', 'mode.transition'),
  payload: fc.jsonValue({ maxDepth: 3 }),
  durable: fc.nat({ max: 9 }).map((x) => x === 0),
  dt: fc.nat({ max: 5_000 }),
});

const edit = fc.record({
  column: fc.constantFrom('payload', 'time', 'type', 'kind', 'hash', 'prev_hash', 'delete'),
  at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }),
});

let n = 0;
async function scenario(events: { kind: 'input' | 'decision'; type: string; payload: unknown; durable: boolean; dt: number }[], maxBatch: number, maxRows: number | undefined): Promise<{ store: Store; reader: BlackboxReader }> {
  const store = await openStore({ path: path.join(dir, `p${++n}.sqlite`) });
  const box = new BlackboxRecorder(store.raw, { maxBatch, flushIntervalMs: 60_000, ...(maxRows !== undefined ? { retention: { maxRows } } : {}) });
  let t = 1_000;
  for (const e of events) {
    t += e.dt;
    if (e.durable) box.recordDurable(e.kind, e.type, e.payload, t);
    else box.record(e.kind, e.type, e.payload, t);
  }
  box.close();
  return { store, reader: new BlackboxReader(store.raw) };
}

describe('black box chain (property)', () => {
  it('an untouched log verifies; a single edited or deleted row is reported at its seq', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(event, { minLength: 1, maxLength: 60 }),
        fc.integer({ min: 1, max: 16 }),
        fc.option(fc.integer({ min: 5, max: 40 }), { nil: undefined }),
        edit,
        async (events, maxBatch, maxRows, e) => {
          const { store, reader } = await scenario(events, maxBatch, maxRows);
          try {
            const head = reader.head();
            expect(head.headSeq).toBe(events.length);
            expect(reader.verify()).toEqual({ ok: true, rows: head.rows, fromSeq: head.anchorSeq + 1, toSeq: head.headSeq });
            if (head.rows === 0) return;
            const seq = head.anchorSeq + 1 + Math.floor(e.at * head.rows);
            const row = reader.get(seq)!;
            const set = (col: string, v: unknown) => store.raw.prepare(`UPDATE blackbox SET ${col} = ? WHERE seq = ?`).run(v, seq);
            const other = (h: string) => (h[0] === 'a' ? 'b' : 'a') + h.slice(1);
            switch (e.column) {
              case 'payload':
                set('payload', row.payload === '1' ? '2' : '1');
                break;
              case 'time':
                set('time', row.time + 1);
                break;
              case 'type':
                set('type', `${row.type}.x`);
                break;
              case 'kind':
                set('kind', row.kind === 'input' ? 'decision' : 'input');
                break;
              case 'hash':
                set('hash', other(row.hash));
                break;
              case 'prev_hash':
                set('prev_hash', other(row.prevHash));
                break;
              case 'delete':
                store.raw.prepare('DELETE FROM blackbox WHERE seq = ?').run(seq);
                break;
            }
            const v = reader.verify();
            expect(v.ok).toBe(false);
            if (!v.ok) {
              expect(v.seq).toBe(seq);
              expect(v.problem).toBe(e.column === 'delete' ? 'missing_row' : e.column === 'prev_hash' ? 'prev_hash_mismatch' : 'hash_mismatch');
            }
          } finally {
            store.close();
          }
        },
      ),
      { numRuns: 60, seed: 20 },
    );
  });
});
