/**
 * The store on a real SQLite file in a temp dir: migrations, pragmas, file permissions, the
 * durable cloid allocation across reopen, and each repository's contract.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import { ORDER_STATES, TERMINAL_ORDER_STATES, type Fill } from '../../src/domain/types.ts';
import { openStore, StoreError, type NewIntent, type Store } from '../../src/store/index.ts';
import { MIGRATIONS } from '../../migrations/index.ts';

let dir: string;
const opened: Store[] = [];
let t = 1_700_000_000_000;
const clock = (): number => ++t;

async function open(file = path.join(dir, 'data', 'keel.sqlite'), extra: Partial<Parameters<typeof openStore>[0]> = {}): Promise<Store> {
  const s = await openStore({ path: file, clock, ...extra });
  opened.push(s);
  return s;
}

function intent(over: Partial<NewIntent> = {}): NewIntent {
  return { coin: 'BTC', assetId: 0, side: 'buy', sz: dec('0.01'), px: dec('60000'), reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: clock(), ...over };
}

function fill(over: Partial<Fill> = {}): Fill {
  return { tid: 1, oid: 10, coin: 'BTC', side: 'buy', px: dec('60000'), sz: dec('0.01'), fee: dec('0.27'), closedPnl: dec('0'), time: 1000, crossed: true, ...over };
}

const mode = (p: string): number => statSync(p).mode & 0o777;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'keel-store-'));
});
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('opening', () => {
  it('migrates a fresh file and is idempotent on reopen', async () => {
    const file = path.join(dir, 'data', 'keel.sqlite');
    const s1 = await open(file);
    const tables = (s1.raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['audit_log', 'equity_snapshots', 'fills', 'mode_transitions', 'orders', 'positions', 'runtime_state', 'trades']));
    const migrations = () => (s1.raw.prepare('SELECT name FROM kysely_migration ORDER BY name').all() as { name: string }[]).map((r) => r.name);
    expect(migrations()).toEqual(Object.keys(MIGRATIONS).sort());
    const first = s1.orders.commitIntent(intent());
    s1.close();

    const s2 = await open(file);
    expect((s2.raw.prepare('SELECT name FROM kysely_migration').all() as unknown[]).length).toBe(Object.keys(MIGRATIONS).length);
    expect(s2.orders.byCloid(first.cloid)?.coin).toBe('BTC');
    expect(s2.raw.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  it('runs in WAL mode with foreign keys, a busy timeout and synchronous NORMAL (FULL on request)', async () => {
    const s = await open();
    expect(s.raw.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(s.raw.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(s.raw.pragma('busy_timeout', { simple: true })).toBe(5000);
    expect(s.raw.pragma('synchronous', { simple: true })).toBe(1);
    // The intent commit raises synchronous to FULL only around itself.
    s.orders.commitIntent(intent());
    expect(s.raw.pragma('synchronous', { simple: true })).toBe(1);
    const full = await open(path.join(dir, 'full.sqlite'), { synchronous: 'FULL', busyTimeoutMs: 1234 });
    expect(full.raw.pragma('synchronous', { simple: true })).toBe(2);
    expect(full.raw.pragma('busy_timeout', { simple: true })).toBe(1234);
    full.orders.commitIntent(intent());
    expect(full.raw.pragma('synchronous', { simple: true })).toBe(2);
  });

  it('creates the data dir 0700 and the database, WAL and SHM files 0600', async () => {
    const data = path.join(dir, 'nested', 'data');
    const file = path.join(data, 'keel.sqlite');
    const s = await open(file);
    s.orders.commitIntent(intent());
    expect(mode(data)).toBe(0o700);
    expect(mode(file)).toBe(0o600);
    expect(mode(`${file}-wal`)).toBe(0o600);
    expect(mode(`${file}-shm`)).toBe(0o600);
  });

  it('tightens an existing database file that is world-readable', async () => {
    const file = path.join(dir, 'old.sqlite');
    writeFileSync(file, '');
    chmodSync(file, 0o644);
    chmodSync(dir, 0o755);
    await open(file);
    expect(mode(file)).toBe(0o600);
    // A directory the operator already had is left as it was.
    expect(mode(dir)).toBe(0o755);
  });

  it('refuses a runtime prefix that is not 8 lowercase hex', async () => {
    await expect(openStore({ path: path.join(dir, 'bad.sqlite'), newRuntimePrefix: () => 'XYZ' })).rejects.toBeInstanceOf(StoreError);
  });
});

describe('cloid allocation', () => {
  it('keeps the prefix and strictly increases the counter across reopen, even without a clean close', async () => {
    const file = path.join(dir, 'keel.sqlite');
    const s1 = await open(file, { newRuntimePrefix: () => 'deadbeef' });
    const a = [s1.orders.commitIntent(intent()), s1.orders.commitIntent(intent()), s1.orders.commitIntent(intent())];
    expect(a.map((i) => i.cloid)).toEqual(['0xdeadbeef000000000000000000000001', '0xdeadbeef000000000000000000000002', '0xdeadbeef000000000000000000000003']);
    // No close: a second connection opens the same file as a restarted process would.
    const s2 = await open(file, { newRuntimePrefix: () => 'cafecafe' });
    expect(s2.orders.runtimePrefix).toBe('deadbeef');
    const b = s2.orders.commitIntent(intent());
    expect(b.cloid).toBe('0xdeadbeef000000000000000000000004');
    // The first connection sees the counter the second advanced: allocation reads it in its transaction.
    expect(s1.orders.commitIntent(intent()).cloid).toBe('0xdeadbeef000000000000000000000005');
    expect(s2.orders.lastCounter()).toBe(5);
  });

  it('gives every cloid the wire form 0x + 32 lowercase hex with the database prefix', async () => {
    const s = await open();
    const cloids = s.orders.commitIntents([intent(), intent({ side: 'sell' }), intent({ coin: 'ETH', assetId: 1 })]).map((i) => i.cloid);
    for (const c of cloids) {
      expect(c).toMatch(/^0x[0-9a-f]{32}$/);
      expect(c.slice(2, 10)).toBe(s.orders.runtimePrefix);
    }
    expect(new Set(cloids).size).toBe(3);
  });

  it('stores the intent exactly as committed', async () => {
    const s = await open();
    const entry = s.orders.commitIntent(intent({ expiresAfter: 1_700_000_010_000 }));
    const stop = s.orders.commitIntent(
      intent({ side: 'sell', px: dec('57000'), reduceOnly: true, kind: 'stop_loss', parentCloid: entry.cloid, trigger: { triggerPx: dec('57500'), tpsl: 'sl', isMarket: true } }),
    );
    const row = s.orders.byCloid(stop.cloid)!;
    expect(row).toMatchObject({ cloid: stop.cloid, side: 'sell', reduceOnly: true, kind: 'stop_loss', parentCloid: entry.cloid, state: 'intent', tif: 'Gtc' });
    expect(row.px.toFixed()).toBe('57000');
    expect(row.trigger?.triggerPx.toFixed()).toBe('57500');
    expect(row.trigger?.tpsl).toBe('sl');
    expect(row.trigger?.isMarket).toBe(true);
    expect(row.filledSz.isZero()).toBe(true);
    expect(s.orders.byCloid(entry.cloid)?.expiresAfter).toBe(1_700_000_010_000);
    expect(s.orders.children(entry.cloid).map((o) => o.cloid)).toEqual([stop.cloid]);
  });

  it('refuses invalid intents, and a failed commit consumes no counter value', async () => {
    const s = await open();
    expect(() => s.orders.commitIntent(intent({ sz: dec('0') }))).toThrow(StoreError);
    expect(() => s.orders.commitIntent(intent({ px: dec('-1') }))).toThrow(/price must be positive/);
    // The parent must exist (foreign key): the whole transaction, counter bump included, rolls back.
    expect(() => s.orders.commitIntent(intent({ parentCloid: `0x${'ab'.repeat(16)}` }))).toThrow(/FOREIGN KEY/);
    expect(s.orders.lastCounter()).toBe(0);
    expect(s.orders.commitIntent(intent()).cloid.endsWith('1')).toBe(true);
  });

  it('refuses to commit an intent inside an open transaction, where it would not be durable', async () => {
    const s = await open();
    let caught: unknown;
    try {
      s.transaction(() => s.orders.commitIntent(intent()));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(StoreError);
    expect((caught as StoreError).kind).toBe('nested_intent_commit');
    expect(s.orders.lastCounter()).toBe(0);
  });
});

describe('order lifecycle', () => {
  it('applies patches, sets resolvedAt on a terminal state, clears an error on null', async () => {
    const s = await open();
    const i = s.orders.commitIntent(intent());
    expect(s.orders.updateState(i.cloid, { state: 'submitting', submittedAt: 5, expiresAfter: 9, updatedAt: 5 })).toBe(true);
    expect(s.orders.updateState(i.cloid, { state: 'unknown', lastError: 'timeout', updatedAt: 6 })).toBe(true);
    let o = s.orders.byCloid(i.cloid)!;
    expect(o).toMatchObject({ state: 'unknown', lastError: 'timeout', submittedAt: 5, expiresAfter: 9, updatedAt: 6 });
    expect(o.resolvedAt).toBeUndefined();
    s.orders.updateState(i.cloid, { state: 'partially_filled', oid: 77, filledSz: dec('0.004'), avgPx: dec('60001'), lastError: null, updatedAt: 7 });
    o = s.orders.byCloid(i.cloid)!;
    expect(o.lastError).toBeUndefined();
    expect(o.oid).toBe(77);
    expect(o.filledSz.toFixed()).toBe('0.004');
    expect(s.orders.byOid(77)?.cloid).toBe(i.cloid);
    s.orders.updateState(i.cloid, { state: 'filled', filledSz: dec('0.01'), updatedAt: 8 });
    o = s.orders.byCloid(i.cloid)!;
    expect(o).toMatchObject({ state: 'filled', resolvedAt: 8, oid: 77, submittedAt: 5 });
    expect(o.avgPx?.toFixed()).toBe('60001');
    expect(s.orders.updateState(`0x${'0'.repeat(32)}`, { state: 'filled' })).toBe(false);
  });

  it('unresolved() returns exactly the non-terminal orders; open() the ones working on the venue', async () => {
    const s = await open();
    const byState = new Map<string, string>();
    for (const state of ORDER_STATES) {
      const i = s.orders.commitIntent(intent());
      s.orders.updateState(i.cloid, { state });
      byState.set(i.cloid, state);
    }
    const expected = [...byState].filter(([, st]) => !TERMINAL_ORDER_STATES.has(st as never)).map(([c]) => c);
    expect(s.orders.unresolved().map((o) => o.cloid)).toEqual(expected);
    expect(s.orders.unresolved().map((o) => o.state)).toEqual(['intent', 'submitting', 'resting', 'partially_filled', 'cancelling', 'unknown']);
    expect(s.orders.open().map((o) => o.state)).toEqual(['resting', 'partially_filled', 'cancelling']);
    expect(s.orders.open('ETH')).toEqual([]);
    expect(s.orders.recent(2).map((o) => o.state)).toEqual(['unknown', 'rejected']);
  });

  it('the order state CHECK constraint refuses a state outside the lifecycle', async () => {
    const s = await open();
    const i = s.orders.commitIntent(intent());
    expect(() => s.orders.updateState(i.cloid, { state: 'lost' as never })).toThrow(/CHECK/);
  });
});

describe('fills', () => {
  it('deduplicates by (tid, oid) and reads back by time, cloid and oid', async () => {
    const s = await open();
    expect(s.fills.insert(fill())).toBe(true);
    expect(s.fills.insert(fill({ px: dec('1') }))).toBe(false);
    // The same trade id on another order (both sides of a self-cross) is another fill.
    expect(s.fills.insert(fill({ oid: 11, side: 'sell', cloid: `0x${'1'.repeat(32)}`, time: 1000 }))).toBe(true);
    expect(s.fills.insert(fill({ tid: 2, time: 2000, fee: dec('-0.01'), crossed: false }))).toBe(true);
    const all = s.fills.since(0);
    expect(all.map((f) => [f.tid, f.oid])).toEqual([
      [1, 10],
      [1, 11],
      [2, 10],
    ]);
    expect(all[0]!.px.toFixed()).toBe('60000');
    expect(all[2]).toMatchObject({ crossed: false });
    expect(all[2]!.fee.toFixed()).toBe('-0.01');
    expect(s.fills.since(1500).map((f) => f.tid)).toEqual([2]);
    expect(s.fills.byCloid(`0x${'1'.repeat(32)}`).map((f) => f.oid)).toEqual([11]);
    expect(s.fills.byOid(10).length).toBe(2);
    expect(s.fills.has(2, 10)).toBe(true);
    expect(s.fills.latestTime()).toBe(2000);
  });
});

describe('positions, trades, equity, state, modes, audit', () => {
  it('positions: upsert replaces the row, protective state round-trips, flat is refused', async () => {
    const s = await open();
    const [entry, stop, tp1, tp2] = s.orders.commitIntents([intent(), intent(), intent(), intent()]).map((i) => i.cloid);
    s.positions.upsert({ coin: 'BTC', szi: dec('0.01'), entryPx: dec('60000'), entryCloid: entry, openedAt: 10, entryFees: dec('0.27'), stage: 'open', stopCloid: stop, tpCloids: [tp1!, tp2!], initialStopPx: dec('59000'), takeProfitPx: dec('62000'), rUnit: dec('1000'), updatedAt: 11 });
    let p = s.positions.get('BTC')!;
    expect(p).toMatchObject({ coin: 'BTC', stage: 'open', stopCloid: stop, tpCloids: [tp1, tp2], entryCloid: entry, openedAt: 10, updatedAt: 11 });
    expect(p.szi.toFixed()).toBe('0.01');
    expect(p.rUnit?.toFixed()).toBe('1000');
    expect(p.trailing).toBeUndefined();
    s.positions.upsert({ ...p, szi: dec('0.005'), stage: 'tp1_done', tpCloids: [tp2!], trailing: { distance: dec('500'), activatePx: dec('61000'), extremePx: dec('61200') }, updatedAt: 12 });
    p = s.positions.get('BTC')!;
    expect(p.stage).toBe('tp1_done');
    expect(p.tpCloids).toEqual([tp2]);
    expect(p.trailing?.distance.toFixed()).toBe('500');
    expect(p.trailing?.extremePx?.toFixed()).toBe('61200');
    s.positions.upsert({ coin: 'ETH', szi: dec('-2'), entryPx: dec('3000'), entryFees: dec('0'), stage: 'unprotected', tpCloids: [] });
    expect(s.positions.all().map((x) => [x.coin, x.szi.toFixed()])).toEqual([
      ['BTC', '0.005'],
      ['ETH', '-2'],
    ]);
    expect(() => s.positions.upsert({ ...p, coin: '' })).toThrow(StoreError);
    // A planned position (entry not filled yet) is a zero-size row carrying the protection plan.
    s.positions.upsert({ coin: 'SOL', szi: dec('0'), entryPx: dec('0'), entryCloid: entry, entryFees: dec('0'), stage: 'unprotected', tpCloids: [], initialStopPx: dec('140'), rUnit: dec('10') });
    expect(s.positions.get('SOL')?.szi.isZero()).toBe(true);
    expect(s.positions.get('SOL')?.initialStopPx?.toFixed()).toBe('140');
    expect(s.positions.remove('ETH')).toBe(true);
    expect(s.positions.remove('ETH')).toBe(false);
    expect(s.positions.get('ETH')).toBeUndefined();
  });

  it('trades: insert, list, realized PnL since a time; the same exit fill twice is one trade', async () => {
    const s = await open();
    const base = { coin: 'BTC', direction: 'long' as const, sz: dec('0.5'), entryPx: dec('60000'), exitPx: dec('61000'), grossPnl: dec('500'), fees: dec('27.225'), netPnl: dec('472.775'), openedAt: 100, closedAt: 200 };
    const ids = { entryCloid: `0x${'a'.repeat(32)}`, exitCloid: `0x${'b'.repeat(32)}` };
    const r1 = s.trades.insert({ ...base, ...ids, exitFill: { tid: 7, oid: 70 } });
    expect(r1.inserted).toBe(true);
    expect(s.trades.insert({ ...base, ...ids, exitFill: { tid: 7, oid: 70 } })).toEqual({ inserted: false });
    s.trades.insert({ ...base, coin: 'ETH', direction: 'short', netPnl: dec('-100.5'), closedAt: 300 });
    expect(s.trades.list().map((x) => x.coin)).toEqual(['BTC', 'ETH']);
    expect(s.trades.list()[0]).toMatchObject({ ...ids, exitFill: { tid: 7, oid: 70 } });
    // One exit order filling in two pieces realises two trades (same cloids, different fills).
    expect(s.trades.insert({ ...base, ...ids, netPnl: dec('0'), closedAt: 201, exitFill: { tid: 8, oid: 70 } }).inserted).toBe(true);
    expect(s.trades.list({ coin: 'BTC' }).length).toBe(2);
    expect(s.trades.list({ coin: 'ETH' })[0]).toMatchObject({ direction: 'short', closedAt: 300 });
    expect(s.trades.list()[0]!.fees.toFixed()).toBe('27.225');
    expect(s.trades.realizedSince(0).toFixed()).toBe('372.275');
    expect(s.trades.realizedSince(250).toFixed()).toBe('-100.5');
  });

  it('equity: latest is the newest snapshot', async () => {
    const s = await open();
    expect(s.equity.latest()).toBeUndefined();
    const snap = (time: number, v: string) => ({ time, accountValue: dec(v), marginUsed: dec('10'), unrealizedPnl: dec('-1.5'), realizedPnlDay: dec('2'), drawdown: dec('0.01') });
    s.equity.insert(snap(2, '1000'));
    s.equity.insert(snap(1, '900'));
    expect(s.equity.latest()?.accountValue.toFixed()).toBe('1000');
    expect(s.equity.since(0).map((e) => e.time)).toEqual([1, 2]);
    expect(s.equity.latest()?.unrealizedPnl.toFixed()).toBe('-1.5');
  });

  it('runtime state: typed keys are validated; the cloid keys are reserved', async () => {
    const s = await open();
    expect(s.state.get('gate')).toBeUndefined();
    s.state.set('gate', 'reducing');
    s.state.set('last_fill_time', 1234);
    s.state.set('day_start', { day: 1, equity: '1000.5' });
    expect(s.state.get('gate')).toBe('reducing');
    expect(s.state.get('last_fill_time')).toBe(1234);
    expect(s.state.get('day_start')).toEqual({ day: 1, equity: '1000.5' });
    // setJson validates the typed keys too, so get() never meets a value it cannot read.
    expect(() => s.state.setJson('day_start', { time: 1, equity: 'lots' })).toThrow(StoreError);
    expect(() => s.state.set('gate', 'open' as never)).toThrow(StoreError);
    expect(() => s.state.setJson('cloid_counter', 0)).toThrow(/reserved|managed/);
    s.state.setJson('custom', { a: [1, 2] });
    expect(s.state.getJson('custom')).toEqual({ a: [1, 2] });
    // A corrupt stored value is an error, never returned as if valid.
    s.raw.prepare("UPDATE runtime_state SET value = '\"sideways\"' WHERE key = 'gate'").run();
    expect(() => s.state.get('gate')).toThrow(StoreError);
  });

  it('modes: append records the transition and the persisted mode together', async () => {
    const file = path.join(dir, 'm.sqlite');
    const s = await open(file);
    expect(s.modes.current()).toBeUndefined();
    s.modes.append({ time: 1, to: 'Normal', reason: 'boot' });
    s.modes.append({ time: 2, from: 'Normal', to: 'Critical', reason: 'order breaker open' });
    s.close();
    const s2 = await open(file);
    expect(s2.modes.latest()).toMatchObject({ from: 'Normal', to: 'Critical', reason: 'order breaker open', time: 2 });
    expect(s2.modes.current()).toBe('Critical');
    expect(s2.state.get('mode')).toBe('Critical');
    expect(s2.modes.list().map((m) => m.to)).toEqual(['Critical', 'Normal']);
    expect(() => s2.modes.append({ time: 3, to: 'Panic' as never, reason: 'x' })).toThrow(/CHECK/);
    expect(s2.modes.current()).toBe('Critical');
  });

  it('audit: append and list newest first, filtered by action', async () => {
    const s = await open();
    s.audit.append({ time: 1, actor: 'operator', action: 'pause', detail: { via: 'cli' } });
    s.audit.append({ time: 2, actor: 'watchdog', action: 'kill', detail: { reason: 'drawdown' } });
    expect(s.audit.list().map((a) => a.action)).toEqual(['kill', 'pause']);
    expect(s.audit.list({ action: 'pause' })[0]).toMatchObject({ actor: 'operator', detail: { via: 'cli' } });
  });

  it('transaction() groups repository calls and rolls all back when one throws', async () => {
    const s = await open();
    s.positions.upsert({ coin: 'BTC', szi: dec('1'), entryPx: dec('1'), entryFees: dec('0'), stage: 'open', tpCloids: [] });
    expect(() =>
      s.transaction(() => {
        s.trades.insert({ coin: 'BTC', direction: 'long', sz: dec('1'), entryPx: dec('1'), exitPx: dec('2'), grossPnl: dec('1'), fees: dec('0'), netPnl: dec('1'), openedAt: 1, closedAt: 2 });
        s.positions.remove('BTC');
        throw new Error('crash between the two');
      }),
    ).toThrow('crash between the two');
    expect(s.trades.list()).toEqual([]);
    expect(s.positions.get('BTC')).toBeDefined();
    s.transaction(() => {
      s.trades.insert({ coin: 'BTC', direction: 'long', sz: dec('1'), entryPx: dec('1'), exitPx: dec('2'), grossPnl: dec('1'), fees: dec('0'), netPnl: dec('1'), openedAt: 1, closedAt: 2 });
      s.positions.remove('BTC');
    });
    expect(s.trades.list().length).toBe(1);
    expect(s.positions.get('BTC')).toBeUndefined();
  });
});

describe('migration chain', () => {
  it('upgrades a database left at 0001 to the latest, keeping its rows', async () => {
    const { openRetainedDatabase } = await import('../../src/store/native-lifetime.ts');
    const { Kysely, Migrator, SqliteDialect } = await import('kysely');
    const { MIGRATIONS } = await import('../../migrations/index.ts');
    const file = path.join(dir, 'old-schema.sqlite');
    const raw = openRetainedDatabase(file, {});
    const old = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) });
    const first = MIGRATIONS['0001_initial']!;
    const r = await new Migrator({ db: old, provider: { getMigrations: async () => ({ '0001_initial': first }) } }).migrateToLatest();
    expect(r.error).toBeUndefined();
    raw
      .prepare("INSERT INTO trades (coin, direction, sz, entry_px, exit_px, gross_pnl, fees, net_pnl, opened_at, closed_at) VALUES ('BTC', 'long', '1', '1', '2', '1', '0', '1', 1, 2)")
      .run();
    raw.close();

    const s = await open(file);
    expect((s.raw.prepare('SELECT name FROM kysely_migration ORDER BY name').all() as { name: string }[]).map((x) => x.name)).toEqual(Object.keys(MIGRATIONS).sort());
    expect(s.trades.list().map((x) => [x.coin, x.netPnl.toFixed(), x.exitFill])).toEqual([['BTC', '1', undefined]]);
    expect(s.trades.insert({ coin: 'BTC', direction: 'long', sz: dec('1'), entryPx: dec('1'), exitPx: dec('2'), grossPnl: dec('1'), fees: dec('0'), netPnl: dec('1'), openedAt: 1, closedAt: 3, exitFill: { tid: 1, oid: 1 } }).inserted).toBe(true);
  });
});
