/**
 * The lease on a real SQLite file, through two connections as the runtime and the watchdog process
 * hold them: renew / take over / release rules, the fencing epoch, a runtime coming back after a
 * takeover, preemption, and a fast-check model run (random operations of three holders on two
 * connections against a plain model: at most one holder, the epoch grows exactly on a change).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, StoreError, type Store } from '../../src/store/index.ts';
import { leaseFree, leasesOf, type Lease } from '../../src/store/lease-repository.ts';

let dir: string;
let a: Store;
let b: Store;
let n = 0;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'keel-lease-'));
});
afterAll(() => {
  a?.close();
  b?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Two connections to a fresh database file: the runtime's and the watchdog's. */
async function pair(): Promise<{ runtime: ReturnType<typeof leasesOf>; watchdog: ReturnType<typeof leasesOf>; stores: [Store, Store] }> {
  const file = path.join(dir, `keel-${n++}.sqlite`);
  const s1 = await openStore({ path: file });
  const s2 = await openStore({ path: file });
  return { runtime: leasesOf(s1), watchdog: leasesOf(s2), stores: [s1, s2] };
}

const T = 1_700_000_000_000;

describe('lease repository', () => {
  it('renew creates the lease, extends it for its holder and refuses anyone else', async () => {
    const { runtime, watchdog, stores } = await pair();
    [a, b] = stores;
    expect(watchdog.current()).toBeUndefined();
    const first = runtime.renew('runtime:1', 10_000, T);
    expect(first).toMatchObject({ ok: true, acquired: true, lease: { holder: 'runtime:1', epoch: 1, acquiredAt: T, heartbeatAt: T, expiresAt: T + 10_000, releasedAt: undefined } });
    const again = runtime.renew('runtime:1', 10_000, T + 2_000);
    expect(again).toMatchObject({ ok: true, acquired: false, lease: { epoch: 1, acquiredAt: T, heartbeatAt: T + 2_000, expiresAt: T + 12_000 } });
    // The other connection sees it at once.
    expect(watchdog.current()).toMatchObject({ holder: 'runtime:1', heartbeatAt: T + 2_000 });
    expect(watchdog.renew('watchdog:1', 30_000, T + 3_000)).toMatchObject({ ok: false, reason: 'held_by_other', current: { holder: 'runtime:1' } });
    // Even an expired lease of another holder is never taken by renew.
    expect(watchdog.renew('watchdog:1', 30_000, T + 60_000)).toMatchObject({ ok: false, reason: 'held_by_other' });
    a.close();
    b.close();
  });

  it('tryTakeOver waits for expiry; after a takeover the old holder cannot renew (a runtime coming back stops)', async () => {
    const { runtime, watchdog, stores } = await pair();
    [a, b] = stores;
    runtime.renew('runtime:1', 10_000, T);
    expect(watchdog.tryTakeOver('watchdog:1', T + 9_999)).toMatchObject({ ok: false, reason: 'held_by_other' });
    const taken = watchdog.tryTakeOver('watchdog:1', T + 10_000, { ttlMs: 30_000 });
    expect(taken).toMatchObject({ ok: true, acquired: true, lease: { holder: 'watchdog:1', epoch: 2, acquiredAt: T + 10_000, expiresAt: T + 40_000 } });
    expect(runtime.renew('runtime:1', 10_000, T + 11_000)).toMatchObject({ ok: false, current: { holder: 'watchdog:1', epoch: 2 } });
    // A second watchdog finds it held.
    expect(runtime.tryTakeOver('watchdog:2', T + 12_000)).toMatchObject({ ok: false, current: { holder: 'watchdog:1' } });
    // Taking over one's own lease only extends it.
    expect(watchdog.tryTakeOver('watchdog:1', T + 13_000, { ttlMs: 30_000 })).toMatchObject({ ok: true, acquired: false, lease: { epoch: 2, expiresAt: T + 43_000 } });
    a.close();
    b.close();
  });

  it('release frees the lease at once, for its holder only; a released lease can be taken (new epoch) and renewed again by whoever holds it', async () => {
    const { runtime, watchdog, stores } = await pair();
    [a, b] = stores;
    runtime.renew('runtime:1', 10_000, T);
    expect(watchdog.release('watchdog:1', T + 1)).toBe(false);
    expect(runtime.release('runtime:1', T + 1_000)).toBe(true);
    const l = watchdog.current()!;
    expect(l).toMatchObject({ holder: 'runtime:1', releasedAt: T + 1_000, expiresAt: T + 1_000 });
    expect(leaseFree(l, T + 1_000)).toBe(true);
    // The same holder may hold it again (a runtime that released and keeps going).
    expect(runtime.renew('runtime:1', 10_000, T + 2_000)).toMatchObject({ ok: true, acquired: false, lease: { releasedAt: undefined, expiresAt: T + 12_000 } });
    runtime.release('runtime:1', T + 3_000);
    expect(runtime.tryTakeOver('runtime:2', T + 3_000, { ttlMs: 10_000 })).toMatchObject({ ok: true, acquired: true, lease: { holder: 'runtime:2', epoch: 2, releasedAt: undefined } });
    a.close();
    b.close();
  });

  it('preempt lets a boot take a live lease whose holder it can prove dead, and is asked only then', async () => {
    const { runtime, watchdog, stores } = await pair();
    [a, b] = stores;
    runtime.renew('runtime:dead', 10_000, T);
    const asked: Lease[] = [];
    expect(watchdog.tryTakeOver('runtime:new', T + 1, { ttlMs: 10_000, preempt: (cur) => (asked.push(cur), false) })).toMatchObject({ ok: false });
    expect(watchdog.tryTakeOver('runtime:new', T + 2, { ttlMs: 10_000, preempt: (cur) => cur.holder === 'runtime:dead' })).toMatchObject({ ok: true, acquired: true, lease: { holder: 'runtime:new', epoch: 2 } });
    expect(asked.map((l) => l.holder)).toEqual(['runtime:dead']);
    a.close();
    b.close();
  });

  it('refuses bad input and reports a corrupt row as a StoreError', async () => {
    const { runtime, stores } = await pair();
    [a, b] = stores;
    expect(() => runtime.renew('', 10_000, T)).toThrow(StoreError);
    expect(() => runtime.renew('x', 0, T)).toThrow(/ttlMs/);
    expect(() => runtime.renew('x', 10_000, Number.NaN)).toThrow(/time/);
    a.raw.prepare("INSERT INTO lease (name, holder, epoch, acquired_at, heartbeat_at, expires_at) VALUES ('trading', 'x', 1, 1.5, 1, 1)").run();
    expect(() => runtime.current()).toThrow(StoreError);
    a.close();
    b.close();
  });

  it('leasesOf keeps one repository per connection', async () => {
    const { stores } = await pair();
    [a, b] = stores;
    expect(leasesOf(a)).toBe(leasesOf(a));
    expect(leasesOf(a)).not.toBe(leasesOf(b));
    a.close();
    b.close();
  });

  it('model run: random renew / take-over / release by three holders on two connections keep one holder and a fencing epoch', async () => {
    const { runtime, watchdog, stores } = await pair();
    [a, b] = stores;
    const conns = [runtime, watchdog];
    const holders = ['runtime:1', 'watchdog:1', 'watchdog:2'];
    // One database for all runs: each run works on its own time range, far after the last.
    let base = T;
    const op = fc.record({ kind: fc.constantFrom('renew', 'take', 'release'), who: fc.integer({ min: 0, max: 2 }), conn: fc.integer({ min: 0, max: 1 }), dt: fc.integer({ min: 0, max: 15_000 }), ttl: fc.integer({ min: 1, max: 12_000 }) });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), (ops) => {
        base += 10_000_000;
        let now = base;
        // Start each run from a released lease of a fourth holder, far in the past.
        runtime.tryTakeOver('seed', now, { ttlMs: 1, preempt: () => true });
        runtime.release('seed', now);
        let model = { holder: 'seed', epoch: runtime.current()!.epoch, expiresAt: now, released: true };
        for (const o of ops) {
          now += o.dt;
          const who = holders[o.who]!;
          const repo = conns[o.conn]!;
          const free = model.released || model.expiresAt <= now;
          if (o.kind === 'renew') {
            const r = repo.renew(who, o.ttl, now);
            expect(r.ok).toBe(model.holder === who);
            if (r.ok) model = { ...model, expiresAt: Math.max(now + o.ttl, model.released ? 0 : model.expiresAt), released: false };
          } else if (o.kind === 'take') {
            const r = repo.tryTakeOver(who, now, { ttlMs: o.ttl });
            expect(r.ok).toBe(model.holder === who || free);
            if (r.ok) {
              expect(r.acquired).toBe(model.holder !== who);
              model = { holder: who, epoch: model.epoch + (model.holder === who ? 0 : 1), expiresAt: now + o.ttl, released: false };
            }
          } else {
            const released = repo.release(who, now);
            expect(released).toBe(model.holder === who);
            if (released) model = { ...model, expiresAt: Math.min(model.expiresAt, now), released: true };
          }
          const l = conns[1 - o.conn]!.current()!;
          expect({ holder: l.holder, epoch: l.epoch, expiresAt: l.expiresAt, released: l.releasedAt !== undefined }).toEqual(model);
        }
      }),
      { numRuns: 150, seed: 99 },
    );
    a.close();
    b.close();
  });
});
