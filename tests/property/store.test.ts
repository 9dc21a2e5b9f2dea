/**
 * Property: any sequence of intent commits, lifecycle updates, fill inserts and reopenings of a
 * real SQLite file keeps the store's invariants, checked against a plain in-memory model:
 * cloids unique and of this database's prefix, the counter strictly increasing (across reopen
 * too), fills unique by (tid, oid) with `insert` true exactly for new ones, and `unresolved()`
 * exactly the orders the model holds in a non-terminal state.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import { ORDER_STATES, TERMINAL_ORDER_STATES, type OrderState } from '../../src/domain/types.ts';
import { openStore, parseCloidCounter, type Store } from '../../src/store/index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-store-prop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Cmd =
  | { readonly t: 'commit'; readonly coin: 'BTC' | 'ETH'; readonly side: 'buy' | 'sell'; readonly withParent: boolean }
  | { readonly t: 'update'; readonly pick: number; readonly state: OrderState; readonly oid: number }
  | { readonly t: 'fill'; readonly tid: number; readonly oid: number; readonly pick: number }
  | { readonly t: 'reopen' };

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ t: fc.constant('commit' as const), coin: fc.constantFrom('BTC' as const, 'ETH' as const), side: fc.constantFrom('buy' as const, 'sell' as const), withParent: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('update' as const), pick: fc.nat(), state: fc.constantFrom(...ORDER_STATES), oid: fc.integer({ min: 1, max: 1_000_000 }) }) },
  // Small id ranges so duplicates (the case that matters) are frequent.
  { weight: 4, arbitrary: fc.record({ t: fc.constant('fill' as const), tid: fc.integer({ min: 1, max: 12 }), oid: fc.integer({ min: 1, max: 4 }), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
);

let runNo = 0;

describe('store invariants under random operation sequences', () => {
  it('cloids unique, counter monotonic, fills unique by (tid, oid), unresolved() matches the model', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 1, maxLength: 40 }), async (cmds) => {
        const file = path.join(dir, `run-${runNo++}.sqlite`);
        let store: Store = await openStore({ path: file, clock: () => 1 });
        const prefix = store.orders.runtimePrefix;
        const states = new Map<string, OrderState>();
        const order: string[] = [];
        const fills = new Set<string>();
        let lastCounter = 0;
        try {
          for (const c of cmds) {
            if (c.t === 'commit') {
              const parentCloid = c.withParent && order.length > 0 ? order[order.length - 1] : undefined;
              const i = store.orders.commitIntent({ coin: c.coin, assetId: c.coin === 'BTC' ? 0 : 1, side: c.side, sz: dec('0.1'), px: dec('100'), reduceOnly: parentCloid !== undefined, tif: 'Gtc', kind: parentCloid ? 'stop_loss' : 'entry', parentCloid, createdAt: 1 });
              expect(states.has(i.cloid)).toBe(false);
              const counter = parseCloidCounter(prefix, i.cloid);
              expect(counter).toBeDefined();
              expect(counter!).toBeGreaterThan(lastCounter);
              lastCounter = counter!;
              states.set(i.cloid, 'intent');
              order.push(i.cloid);
            } else if (c.t === 'update') {
              if (order.length === 0) continue;
              const cloid = order[c.pick % order.length]!;
              expect(store.orders.updateState(cloid, { state: c.state, oid: c.oid })).toBe(true);
              states.set(cloid, c.state);
            } else if (c.t === 'fill') {
              const key = `${c.tid}/${c.oid}`;
              const cloid = order.length > 0 ? order[c.pick % order.length] : undefined;
              const inserted = store.fills.insert({ tid: c.tid, oid: c.oid, cloid, coin: 'BTC', side: 'buy', px: dec('100'), sz: dec('0.1'), fee: dec('0.01'), closedPnl: dec('0'), time: c.tid, crossed: false });
              expect(inserted).toBe(!fills.has(key));
              fills.add(key);
            } else {
              store.close();
              store = await openStore({ path: file, clock: () => 1 });
              expect(store.orders.runtimePrefix).toBe(prefix);
            }
          }
          const expectedUnresolved = order.filter((c) => !TERMINAL_ORDER_STATES.has(states.get(c)!));
          expect(store.orders.unresolved().map((o) => o.cloid)).toEqual(expectedUnresolved);
          for (const o of store.orders.unresolved()) expect(o.state).toBe(states.get(o.cloid));
          const stored = store.fills.since(0).map((f) => `${f.tid}/${f.oid}`);
          expect(new Set(stored).size).toBe(stored.length);
          expect(new Set(stored)).toEqual(fills);
          expect(store.orders.lastCounter()).toBe(lastCounter);
          const all = store.orders.recent(1000).map((o) => o.cloid);
          expect(new Set(all).size).toBe(order.length);
        } finally {
          store.close();
          rmSync(file, { force: true });
          rmSync(`${file}-wal`, { force: true });
          rmSync(`${file}-shm`, { force: true });
        }
      }),
      { numRuns: 40, seed: 424242 },
    );
  });
});
