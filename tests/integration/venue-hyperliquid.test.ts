/**
 * The Hyperliquid adapter against the real simulator over loopback, through the real SDK: every
 * query and action of the VenuePort in domain types, rejections as values, a lost response that
 * is `unknown` and then found by cloid, outages and rate limits as VenueErrors, and the
 * WebSocket subscriptions.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Decimal, dec } from '../../src/domain/decimal.ts';
import type { OrderIntent } from '../../src/domain/types.ts';
import { createHyperliquidVenue, VenueError, type HyperliquidVenue } from '../../src/venue/index.ts';
import { cloidOf, startRig, until, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;
let venue: HyperliquidVenue;
let seq = 0;
const nextCloid = () => cloidOf(0x5000 + ++seq);
const act = () => ({ expiresAfter: rig.sim.clock.now() + 5_000 });

async function setFaults(body: Record<string, number>): Promise<void> {
  const r = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  expect(r.status).toBe(200);
}

async function book(): Promise<{ bid: Decimal; ask: Decimal }> {
  const b = await rig.info.l2Book({ coin: 'BTC' });
  return { bid: dec(b!.levels[0][0]!.px), ask: dec(b!.levels[1][0]!.px) };
}

function btc(over: Partial<OrderIntent> & Pick<OrderIntent, 'side' | 'px' | 'sz'>): OrderIntent {
  return { cloid: nextCloid(), coin: 'BTC', assetId: 0, reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: rig.sim.clock.now(), ...over };
}

beforeAll(async () => {
  rig = await startRig('venue', { bookIntervalMs: 0 });
  rig.sim.step(1_000);
  venue = createHyperliquidVenue({
    network: 'paper',
    apiUrl: rig.sim.url,
    wallet: rig.agent,
    account: rig.master.address,
    timeoutMs: 3_000,
    now: () => rig.sim.clock.now(),
    ws: { reconnectDelayMs: () => 50, resubscribeDelayMs: 100 },
  });
});
afterEach(async () => {
  await setFaults({});
});
afterAll(async () => {
  await venue.close();
  await rig.close();
});

describe('queries', () => {
  it('lists instruments with asset ids, lot decimals and majors', async () => {
    const list = await venue.instruments();
    const meta = await rig.info.meta();
    const btcI = list.find((i) => i.coin === 'BTC')!;
    expect(btcI).toEqual({ coin: 'BTC', assetId: meta.universe.findIndex((u) => u.name === 'BTC'), szDecimals: 5, maxLeverage: meta.universe.find((u) => u.name === 'BTC')!.maxLeverage, isMajor: true });
    expect(list.find((i) => i.coin === 'ETH')!.isMajor).toBe(true);
    expect(list.filter((i) => i.coin !== 'BTC' && i.coin !== 'ETH').every((i) => !i.isMajor)).toBe(true);
  });

  it('reads mids as Decimals keyed by coin', async () => {
    const mids = await venue.mids();
    const btcMid = mids.get('BTC')!;
    expect(btcMid).toBeInstanceOf(Decimal);
    const { bid, ask } = await book();
    expect(btcMid.gte(bid) && btcMid.lte(ask)).toBe(true);
  });

  it('reads candles oldest first, every bar but the one in progress closed', async () => {
    const now = rig.sim.clock.now();
    const candles = await venue.candles('BTC', '1m', now - 10 * 60_000);
    expect(candles.length).toBeGreaterThanOrEqual(10);
    for (let i = 1; i < candles.length; i++) expect(candles[i]!.t - candles[i - 1]!.t).toBe(60_000);
    const last = candles[candles.length - 1]!;
    expect(last.closed).toBe(false);
    expect(candles.slice(0, -1).every((c) => c.closed)).toBe(true);
    expect(last).toMatchObject({ coin: 'BTC', interval: '1m', T: last.t + 59_999 });
    expect(last.h).toBeGreaterThanOrEqual(Math.max(last.o, last.c));
    await expect(venue.candles('BTC', '7m', now - 60_000)).rejects.toMatchObject({ name: 'VenueError', kind: 'rejected' });
  });

  it('reads the account of the master address', async () => {
    const a = await venue.accountState();
    expect(a.accountValue.gt(0)).toBe(true);
    expect(a.withdrawable.gt(0)).toBe(true);
    expect(a.positions.every((p) => !p.szi.isZero())).toBe(true);
    expect(venue.account).toBe(rig.user);
  });
});

describe('actions', () => {
  it('rests an order, sees it in open orders and by cloid, cancels it, and a second cancel is not_found', async () => {
    const { bid } = await book();
    const intent = btc({ side: 'buy', px: bid.mul(0.95).toDecimalPlaces(0), sz: dec('0.001') });
    const r = await venue.place(intent, act());
    expect(r.kind).toBe('resting');
    const oid = (r as { oid: number }).oid;
    const open = await venue.openOrders();
    const mine = open.find((o) => o.cloid === intent.cloid)!;
    expect(mine).toMatchObject({ oid, coin: 'BTC', side: 'buy', reduceOnly: false, isTrigger: false });
    expect(mine.px.eq(intent.px)).toBe(true);
    expect(mine.sz.eq('0.001')).toBe(true);
    const st = await venue.orderStatus(intent.cloid);
    expect(st).toMatchObject({ found: true, oid, status: 'open', rawStatus: 'open' });

    expect(await venue.cancel('BTC', intent.cloid, act())).toEqual({ kind: 'cancelled' });
    const again = await venue.cancel('BTC', intent.cloid, act());
    expect(again.kind).toBe('not_found');
    expect((again as { error: string }).error).toMatch(/never placed, already canceled, or filled/);
    expect(await venue.orderStatus(intent.cloid)).toMatchObject({ found: true, status: 'canceled' });
    expect(await venue.orderStatus(cloidOf(0xfffff))).toEqual({ found: false });
  });

  it('fills a taker order and reports the fill, the position and the fills history', async () => {
    const { ask } = await book();
    const intent = btc({ side: 'buy', px: ask.mul(1.01).toDecimalPlaces(0), sz: dec('0.01'), tif: 'Ioc' });
    const r = await venue.place(intent, act());
    expect(r.kind).toBe('filled');
    const f = r as { oid: number; totalSz: Decimal; avgPx: Decimal };
    expect(f.totalSz.eq('0.01')).toBe(true);
    expect(f.avgPx.gte(ask)).toBe(true);
    const fills = await venue.fills(0);
    const mine = fills.filter((x) => x.cloid === intent.cloid);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((x) => x.oid === f.oid && x.side === 'buy' && x.crossed && x.fee.gt(0))).toBe(true);
    expect(mine.reduce((s, x) => s.plus(x.sz), dec(0)).eq('0.01')).toBe(true);
    for (let i = 1; i < fills.length; i++) expect(fills[i]!.time).toBeGreaterThanOrEqual(fills[i - 1]!.time);
    const acct = await venue.accountState();
    expect(acct.positions.find((p) => p.coin === 'BTC')!.szi.gte('0.01')).toBe(true);
  });

  it('places a reduce-only stop-loss trigger and lists it with its trigger price', async () => {
    const { bid } = await book();
    const triggerPx = bid.mul(0.9).toDecimalPlaces(0);
    const intent = btc({ side: 'sell', px: triggerPx.mul(0.95).toDecimalPlaces(0), sz: dec('0.01'), reduceOnly: true, kind: 'stop_loss', trigger: { triggerPx, tpsl: 'sl', isMarket: true } });
    const r = await venue.place(intent, act());
    expect(['resting', 'waiting']).toContain(r.kind);
    const o = (await venue.openOrders()).find((x) => x.cloid === intent.cloid)!;
    expect(o).toMatchObject({ side: 'sell', reduceOnly: true, isTrigger: true });
    expect(o.triggerPx!.eq(triggerPx)).toBe(true);
    expect(await venue.cancel('BTC', intent.cloid, act())).toEqual({ kind: 'cancelled' });
  });

  it('returns a rejection as a value carrying the venue string', async () => {
    const { ask } = await book();
    const r = await venue.place(btc({ side: 'buy', px: ask.plus(5), sz: dec('0.001'), tif: 'Alo' }), act());
    expect(r.kind).toBe('rejected');
    expect((r as { error: string }).error).toMatch(/^Post only order would have immediately matched, bbo was /);
    const tooSmall = await venue.place(btc({ side: 'buy', px: ask.mul(0.9).toDecimalPlaces(0), sz: dec('0.00001') }), act());
    expect(tooSmall).toEqual({ kind: 'rejected', error: 'Order must have minimum value of $10.' });
  });

  it('a lost response is unknown, and orderStatus by cloid then finds the order (no resubmission)', async () => {
    const { bid } = await book();
    const intent = btc({ side: 'buy', px: bid.mul(0.95).toDecimalPlaces(0), sz: dec('0.001') });
    await setFaults({ lostResponse: 1 });
    const r = await venue.place(intent, act());
    expect(r.kind).toBe('unknown');
    expect((r as { cause: string }).cause).toMatch(/^transport/);
    await setFaults({});
    const st = await venue.orderStatus(intent.cloid);
    expect(st).toMatchObject({ found: true, status: 'open' });
    const state = (await (await fetch(`${rig.sim.url}/_sim/state`)).json()) as { orders: { cloid?: string }[] };
    expect(state.orders.filter((o) => o.cloid === intent.cloid)).toHaveLength(1);
    expect((await venue.cancel('BTC', intent.cloid, act())).kind).toBe('cancelled');
  });

  it('an outage makes queries throw VenueError(transport) and place return unknown', async () => {
    await setFaults({ outage: 1 });
    const err = await venue.mids().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VenueError);
    expect((err as VenueError).kind).toBe('transport');
    await expect(venue.orderStatus(cloidOf(1))).rejects.toMatchObject({ kind: 'transport' });
    const r = await venue.place(btc({ side: 'buy', px: dec(1000), sz: dec('0.01') }), act());
    expect(r.kind).toBe('unknown');
    expect((await venue.cancel('BTC', cloidOf(1), act())).kind).toBe('unknown');
  });

  it('a 429 is VenueError(rate_limited) for queries and unknown for orders', async () => {
    await setFaults({ rateLimit: 1 });
    await expect(venue.accountState()).rejects.toMatchObject({ name: 'VenueError', kind: 'rate_limited' });
    const r = await venue.place(btc({ side: 'buy', px: dec(1000), sz: dec('0.01') }), act());
    expect(r.kind).toBe('unknown');
    expect((r as { cause: string }).cause).toMatch(/^rate_limited/);
  });

  it('an expired action is refused by the venue and reported as a rejection', async () => {
    const r = await venue.place(btc({ side: 'buy', px: dec(1000), sz: dec('0.01') }), { expiresAfter: rig.sim.clock.now() - 1 });
    expect(r.kind).toBe('rejected');
  });

  it('updates leverage and arms / clears the dead-man switch', async () => {
    expect(await venue.updateLeverage('BTC', 5, act())).toEqual({ ok: true });
    const pos = (await venue.accountState()).positions.find((p) => p.coin === 'BTC');
    if (pos) expect(pos.leverage).toBe(5);
    expect(await venue.updateLeverage('NOPE', 5, act())).toEqual({ ok: false, error: 'unknown coin NOPE' });
    const armed = await venue.scheduleCancel(rig.sim.clock.now() + 60_000, act());
    expect(armed).toEqual({ ok: true });
    expect(await venue.scheduleCancel(undefined, act())).toEqual({ ok: true });
    const tooSoon = await venue.scheduleCancel(rig.sim.clock.now() + 1, act());
    expect(tooSoon.ok).toBe(false);
  });
});

describe('subscriptions', () => {
  it('streams mids, books, trades and candles as domain values, and reports the connection', async () => {
    const states: string[] = [];
    const off = venue.onConnectionState((s) => states.push(s));
    const got = { mids: [] as Map<string, Decimal>[], books: 0, trades: 0, candles: [] as { coin: string; t: number; closed: boolean }[] };
    const sub = await venue.subscribeMarket(['BTC'], ['1m'], {
      onMids: (m) => got.mids.push(new Map(m)),
      onBook: (coin, bid, ask) => {
        if (coin === 'BTC' && bid && ask && bid.lt(ask)) got.books++;
      },
      onTrades: (coin, trades) => {
        if (coin === 'BTC' && trades.every((t) => t.px.gt(0) && t.sz.gt(0))) got.trades++;
      },
      onCandle: (c) => got.candles.push(c),
    });
    await until(() => (got.mids.length > 2 && got.books > 1 && got.trades > 0 && got.candles.length > 1 ? true : undefined), { sim: rig.sim, stepMs: 200 });
    expect(states).toContain('up');
    expect([...got.mids[0]!.keys()]).toEqual(['BTC']);
    expect(got.candles.every((c) => c.coin === 'BTC' && !c.closed)).toBe(true);

    // Connection loss: the adapter reports down, the SDK reconnects and resubscribes.
    await setFaults({ wsDisconnect: 1 });
    rig.sim.step(100);
    await until(() => (states.includes('down') ? true : undefined));
    await setFaults({});
    const before = got.mids.length;
    await until(() => (venue.connectionState() === 'up' && got.mids.length > before + 1 ? true : undefined), { sim: rig.sim, stepMs: 100 });
    expect(states.filter((s) => s === 'up').length).toBeGreaterThanOrEqual(2);
    off();
    await sub.unsubscribe();
    expect(venue.droppedMessages()).toEqual({});
  });

  it('streams the account fills (snapshot first) and order updates with cloids', async () => {
    const fills: { n: number; snapshot: boolean; cloids: (string | undefined)[] }[] = [];
    const updates: { cloid?: string; status: string }[] = [];
    const sub = await venue.subscribeUser({
      onFills: (fs, isSnapshot) => fills.push({ n: fs.length, snapshot: isSnapshot, cloids: fs.map((f) => f.cloid) }),
      onOrderUpdates: (us) => updates.push(...us),
    });
    await until(() => (fills.length > 0 ? true : undefined));
    expect(fills[0]!.snapshot).toBe(true);
    const { ask } = await book();
    const intent = btc({ side: 'buy', px: ask.mul(1.01).toDecimalPlaces(0), sz: dec('0.002'), tif: 'Ioc' });
    expect((await venue.place(intent, act())).kind).toBe('filled');
    await until(() => (fills.some((f) => !f.snapshot && f.cloids.includes(intent.cloid)) && updates.some((u) => u.cloid === intent.cloid && u.status === 'filled') ? true : undefined));
    await sub.unsubscribe();
  });
});
