/**
 * Emergency flatten against the real simulator through the real adapter and a real SQLite store:
 * two coins of positions and a dozen resting orders (plain, trigger, and one placed by hand
 * without a cloid) end flat with nothing open; 30 % of requests failing (seeded) still ends flat
 * without ever growing a position; a slippage cap the market cannot meet reports what remains at
 * the deadline. Time is the simulator's manual clock, moved by flatten's backoff.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ExchangeClient } from '@nktkas/hyperliquid';
import type { ethers } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOidCanceller } from '../../src/cli/flatten-command.ts';
import { dec, roundPrice, toWire, type Decimal } from '../../src/domain/decimal.ts';
import type { Instrument, OrderIntent, Side } from '../../src/domain/types.ts';
import { flatten, type FlattenOptions } from '../../src/ops/flatten.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { createHyperliquidVenue, type HyperliquidVenue } from '../../src/venue/index.ts';
import { cloidOf, startRig, walletFor, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;
let dir: string;
let store: Store;
let instruments: Instrument[];
let seq = 0;
const silent = { info() {}, warn() {}, error() {} };

interface Account {
  readonly master: ethers.Wallet;
  readonly agent: ethers.Wallet;
  readonly user: string;
  readonly venue: HyperliquidVenue;
}

beforeAll(async () => {
  rig = await startRig('flatten', { bookIntervalMs: 0 });
  rig.sim.step(1_000);
  dir = mkdtempSync(path.join(tmpdir(), 'keel-flatten-'));
  store = await openStore({ path: path.join(dir, 'keel.sqlite'), clock: () => rig.sim.clock.now() });
});
afterAll(async () => {
  store.close();
  await rig.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh funded account with an approved agent, so each test starts from its own state. */
async function newAccount(label: string): Promise<Account> {
  const master = walletFor(`flatten:${label}:master`);
  const agent = walletFor(`flatten:${label}:agent`);
  rig.sim.fund(master.address, 200_000);
  await new ExchangeClient({ transport: rig.http, wallet: master }).approveAgent({ agentAddress: agent.address, agentName: 'keel' });
  const venue = createHyperliquidVenue({ network: 'paper', apiUrl: rig.sim.url, wallet: agent, account: master.address, timeoutMs: 3_000, now: () => rig.sim.clock.now() });
  instruments ??= await venue.instruments();
  return { master, agent, user: master.address.toLowerCase(), venue };
}

const inst = (coin: string): Instrument => instruments.find((i) => i.coin === coin)!;
const px = (coin: string, v: Decimal) => roundPrice(v, inst(coin).szDecimals);

function intent(coin: string, side: Side, sz: string, price: Decimal, over: Partial<OrderIntent> = {}): OrderIntent {
  return { cloid: cloidOf(0x7000 + ++seq), coin, assetId: inst(coin).assetId, side, sz: dec(sz), px: px(coin, price), reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: rig.sim.clock.now(), ...over };
}

const POSITIONS = { BTC: { side: 'buy' as const, sz: '0.05' }, ETH: { side: 'sell' as const, sz: '0.5' } };

/**
 * Two positions (BTC long, ETH short), four resting limit orders and two reduce-only triggers per
 * coin, and one order the operator placed by hand (master key, no cloid): 13 open orders.
 */
async function seed(a: Account): Promise<void> {
  const act = () => ({ expiresAfter: rig.sim.clock.now() + 5_000 });
  const mids = await a.venue.mids();
  for (const [coin, p] of Object.entries(POSITIONS)) {
    const mid = mids.get(coin)!;
    const r = await a.venue.place(intent(coin, p.side, p.sz, mid.mul(p.side === 'buy' ? 1.01 : 0.99), { tif: 'Ioc' }), act());
    expect(r.kind).toBe('filled');
    const small = coin === 'BTC' ? '0.002' : '0.1';
    for (let i = 0; i < 2; i++) {
      expect((await a.venue.place(intent(coin, 'buy', small, mid.mul(0.9 - i * 0.01)), act())).kind).toBe('resting');
      expect((await a.venue.place(intent(coin, 'sell', small, mid.mul(1.1 + i * 0.01)), act())).kind).toBe('resting');
    }
    const close = p.side === 'buy' ? 'sell' : 'buy';
    const slPx = px(coin, mid.mul(close === 'sell' ? 0.8 : 1.2));
    const tpPx = px(coin, mid.mul(close === 'sell' ? 1.2 : 0.8));
    for (const [tpsl, trig] of [['sl', slPx], ['tp', tpPx]] as const) {
      const r = await a.venue.place(intent(coin, close, p.sz, trig, { reduceOnly: true, kind: tpsl === 'sl' ? 'stop_loss' : 'take_profit', trigger: { triggerPx: trig, tpsl, isMarket: true } }), act());
      expect(['resting', 'waiting']).toContain(r.kind);
    }
  }
  const manual = new ExchangeClient({ transport: rig.http, wallet: a.master });
  const btcMid = mids.get('BTC')!;
  await manual.order({ orders: [{ a: inst('BTC').assetId, b: true, p: toWire(px('BTC', btcMid.mul(0.85))), s: '0.002', r: false, t: { limit: { tif: 'Gtc' } } }], grouping: 'na' });
  const open = await a.venue.openOrders();
  expect(open).toHaveLength(13);
  expect(open.filter((o) => o.cloid === undefined)).toHaveLength(1);
  expect(open.filter((o) => o.isTrigger)).toHaveLength(4);
}

async function setFaults(body: Record<string, number>): Promise<void> {
  const r = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  expect(r.status).toBe(200);
}

function truthOf(user: string) {
  const gt = rig.sim.exchange.groundTruth();
  const acct = gt.accounts.find((x) => x.address === user)!;
  return {
    positions: acct.positions.filter((p) => !dec(p.szi).isZero()),
    openOrders: gt.openOrders.filter((o) => o.user === user),
    orders: gt.orders.filter((o) => o.user === user),
    fills: gt.fills.filter((f) => f.user === user),
    scheduledCancel: acct.scheduledCancel,
  };
}

function options(over: Partial<FlattenOptions> = {}): FlattenOptions {
  return {
    deadlineMs: 30_000,
    slippagePct: 1,
    instruments,
    now: () => rig.sim.clock.now(),
    // The backoff moves the simulator's clock: the market and the dead-man switch advance with it.
    sleep: async (ms) => {
      rig.sim.step(ms);
      await delay(1);
    },
    log: silent,
    commitIntent: (i) => store.orders.commitIntent(i),
    ...over,
  };
}

/** Every flatten order the venue saw was a reduce-only IOC, and no coin was closed beyond its size. */
function expectOnlyReducingCloses(user: string, closeCloids: ReadonlySet<string>): void {
  const t = truthOf(user);
  const closes = t.orders.filter((o) => o.cloid !== null && closeCloids.has(o.cloid));
  expect(closes.length).toBeGreaterThan(0);
  for (const o of closes) expect({ reduceOnly: o.reduceOnly, tif: o.tif, isTrigger: o.isTrigger }).toEqual({ reduceOnly: true, tif: 'Ioc', isTrigger: false });
  for (const [coin, p] of Object.entries(POSITIONS)) {
    const closed = t.fills.filter((f) => f.coin === coin && f.cloid && closeCloids.has(f.cloid)).reduce((s, f) => s.plus(f.sz), dec(0));
    expect(closed.eq(p.sz), `${coin} closed ${closed.toFixed()} of ${p.sz}`).toBe(true);
  }
}

describe('flatten against the simulator', () => {
  it('cancels every order (triggers and a manual one included) and closes both positions; intents committed before sending', async () => {
    const a = await newAccount('clean');
    await seed(a);
    const venueHadItAtCommit: boolean[] = [];
    const canceller = createOidCanceller({ apiUrl: rig.sim.url, wallet: a.agent, network: 'paper', timeoutMs: 3_000, venue: a.venue });
    const r = await flatten(
      a.venue,
      options({
        cancelByOid: canceller.cancelByOid,
        commitIntent: (i) => {
          const committed = store.orders.commitIntent(i);
          venueHadItAtCommit.push(truthOf(a.user).orders.some((o) => o.cloid === committed.cloid));
          return committed;
        },
      }),
    );

    expect(r.flat).toBe(true);
    expect(r.reason).toBeUndefined();
    expect(r.cancelled).toBe(13);
    expect(r.remaining).toMatchObject({ positions: [], orders: [] });
    const t = truthOf(a.user);
    expect(t.positions).toEqual([]);
    expect(t.openOrders).toEqual([]);
    // The manual order was cancelled, not filled.
    expect(t.orders.find((o) => o.cloid === null)!.status).toBe('canceled');

    expect(r.closeOrders.map((c) => c.coin).sort()).toEqual(['BTC', 'ETH']);
    expect(venueHadItAtCommit).toEqual([false, false]);
    for (const c of r.closeOrders) {
      expect(c.result?.kind).toBe('filled');
      expect(c.sz.eq(c.positionSzi.abs())).toBe(true);
      const row = store.orders.byCloid(c.cloid)!;
      expect(row).toMatchObject({ kind: 'flatten', reduceOnly: true, tif: 'Ioc', coin: c.coin, side: c.side });
    }
    // Closes are capped at 1 % from the mid: a sell never below 0.99 · mid, a buy never above 1.01 · mid.
    const btc = r.closeOrders.find((c) => c.coin === 'BTC')!;
    const eth = r.closeOrders.find((c) => c.coin === 'ETH')!;
    expect(btc.side).toBe('sell');
    expect(eth.side).toBe('buy');
    expectOnlyReducingCloses(a.user, new Set(r.closeOrders.map((c) => c.cloid)));
  });

  it('without cancel-by-oid, arms the dead-man switch for the manual order and still ends flat', async () => {
    const a = await newAccount('deadman');
    await seed(a);
    const r = await flatten(a.venue, options());
    expect(r.flat).toBe(true);
    expect(r.deadManArmedFor).toBeDefined();
    expect(r.cancelled).toBe(12);
    const t = truthOf(a.user);
    expect(t.positions).toEqual([]);
    expect(t.openOrders).toEqual([]);
    expect(t.orders.find((o) => o.cloid === null)!.status).toBe('scheduledCancel');
  });

  it('with 30 % of requests failing (5xx and lost responses, seeded) gets flat within the deadline, never growing a position', async () => {
    const a = await newAccount('faults');
    await seed(a);
    const canceller = createOidCanceller({ apiUrl: rig.sim.url, wallet: a.agent, network: 'paper', timeoutMs: 3_000, venue: a.venue });
    await setFaults({ http5xx: 0.15, lostResponse: 0.15 });
    let r;
    try {
      r = await flatten(a.venue, options({ deadlineMs: 60_000, concurrency: 1, cancelByOid: canceller.cancelByOid }));
    } finally {
      await setFaults({});
    }
    expect(r.flat).toBe(true);
    expect(r.failures).toBeGreaterThan(0);
    expect(r.loops).toBeGreaterThan(1);
    expect(r.elapsedMs).toBeLessThanOrEqual(60_000);
    const t = truthOf(a.user);
    expect(t.positions).toEqual([]);
    expect(t.openOrders).toEqual([]);
    expectOnlyReducingCloses(a.user, new Set(r.closeOrders.map((c) => c.cloid)));
    // Every close sent was committed first: the venue knows no flatten cloid the store does not.
    for (const c of r.closeOrders) expect(store.orders.byCloid(c.cloid)?.kind).toBe('flatten');
  });

  it('partial fills: each further close is sized to what the venue still reports, never more', async () => {
    const a = await newAccount('partial');
    await seed(a);
    const canceller = createOidCanceller({ apiUrl: rig.sim.url, wallet: a.agent, network: 'paper', timeoutMs: 3_000, venue: a.venue });
    await setFaults({ partialFill: 0.6 });
    let r;
    try {
      r = await flatten(a.venue, options({ concurrency: 1, cancelByOid: canceller.cancelByOid }));
    } finally {
      await setFaults({});
    }
    expect(r.flat).toBe(true);
    expect(truthOf(a.user)).toMatchObject({ positions: [], openOrders: [] });
    // Partial fills happened: more closes than positions.
    expect(r.closeOrders.length).toBeGreaterThan(2);
    for (const coin of Object.keys(POSITIONS)) {
      const closes = r.closeOrders.filter((c) => c.coin === coin);
      let left = dec(POSITIONS[coin as keyof typeof POSITIONS].sz);
      for (const c of closes) {
        expect(c.positionSzi.abs().eq(left), `${coin}: sized from ${c.positionSzi.toFixed()}, venue had ${left.toFixed()}`).toBe(true);
        expect(c.sz.eq(left)).toBe(true);
        if (c.result?.kind === 'filled') left = left.minus(c.result.totalSz);
      }
      expect(left.isZero()).toBe(true);
    }
    expectOnlyReducingCloses(a.user, new Set(r.closeOrders.map((c) => c.cloid)));
  });

  it('a slippage cap the book cannot meet leaves the positions, and the report says so at the deadline', async () => {
    const a = await newAccount('capped');
    await seed(a);
    const canceller = createOidCanceller({ apiUrl: rig.sim.url, wallet: a.agent, network: 'paper', timeoutMs: 3_000, venue: a.venue });
    const start = rig.sim.clock.now();
    const r = await flatten(a.venue, options({ deadlineMs: 2_000, slippagePct: 0.0001, cancelByOid: canceller.cancelByOid }));
    expect(r.flat).toBe(false);
    expect(r.reason).toMatch(/^deadline passed: 2 position\(s\) \(.*BTC 0\.05.*\) and 0 open order\(s\) remain$/);
    expect(r.remaining.orders).toEqual([]);
    expect(r.remaining.positions.map((p) => [p.coin, p.szi.toFixed()]).sort()).toEqual([
      ['BTC', '0.05'],
      ['ETH', '-0.5'],
    ]);
    expect(r.closeOrders.length).toBeGreaterThanOrEqual(2);
    expect(r.closeOrders.every((c) => c.result?.kind === 'rejected')).toBe(true);
    expect(rig.sim.clock.now() - start).toBeGreaterThanOrEqual(2_000);
    const t = truthOf(a.user);
    expect(t.positions).toHaveLength(2);
    expect(t.openOrders).toEqual([]);
  });

  it('a zero deadline reads nothing and says so', async () => {
    const a = await newAccount('zero');
    const r = await flatten(a.venue, options({ deadlineMs: 0 }));
    expect(r).toMatchObject({ flat: false, loops: 0, reason: 'deadline passed before the venue could be read' });
  });

  it('an account with nothing open is flat after one loop', async () => {
    const a = await newAccount('empty');
    const r = await flatten(a.venue, options());
    expect(r).toMatchObject({ flat: true, loops: 1, cancelled: 0, closeOrders: [] });
  });
});
