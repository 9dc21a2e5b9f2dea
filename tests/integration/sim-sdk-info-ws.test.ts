/**
 * The real SDK's InfoClient and SubscriptionClient against the simulator: every info request type,
 * every WebSocket channel, post requests over the socket, and the error behaviour.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpRequestError } from '@nktkas/hyperliquid';
import { cloidOf, startRig, until, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;
const BTC = 0;

beforeAll(async () => {
  rig = await startRig('info-ws');
  rig.sim.step(1_000);
});
afterAll(async () => {
  await rig.close();
});

async function post(body: unknown): Promise<Response> {
  return fetch(`${rig.sim.url}/info`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

describe('POST /info', () => {
  it('lists the perp universe with margin tables, and asset contexts index-aligned', async () => {
    const meta = await rig.info.meta();
    expect(meta.universe.map((u) => u.name)).toEqual(expect.arrayContaining(['BTC', 'ETH']));
    const btc = meta.universe.find((u) => u.name === 'BTC')!;
    expect(btc.szDecimals).toBe(5);
    expect(meta.marginTables.length).toBeGreaterThan(0);
    const [meta2, ctxs] = await rig.info.metaAndAssetCtxs();
    expect(ctxs.length).toBe(meta2.universe.length);
    for (const c of ctxs) {
      expect(Number(c.markPx)).toBeGreaterThan(0);
      expect(c.funding).toMatch(/^-?\d+(\.\d+)?$/);
      expect(Number(c.oraclePx)).toBeGreaterThan(0);
    }
  });

  it('answers allMids, l2Book (with aggregation) and candleSnapshot in the wire shapes', async () => {
    const mids = await rig.info.allMids();
    expect(Number(mids['BTC'])).toBeGreaterThan(1000);
    const book = await rig.info.l2Book({ coin: 'BTC' });
    expect(book!.coin).toBe('BTC');
    const [bids, asks] = book!.levels;
    expect(bids.length).toBeGreaterThan(0);
    expect(bids.length).toBeLessThanOrEqual(20);
    expect(Number(bids[0]!.px)).toBeLessThan(Number(asks[0]!.px));
    for (let i = 1; i < bids.length; i++) expect(Number(bids[i]!.px)).toBeLessThan(Number(bids[i - 1]!.px));
    const coarse = await rig.info.l2Book({ coin: 'BTC', nSigFigs: 3 });
    for (const l of coarse!.levels[0]) expect(Number(l.px) % 100).toBe(0);

    const now = rig.sim.market.marketTime(0);
    const candles = await rig.info.candleSnapshot({ coin: 'BTC', interval: '5m', startTime: now - 3_600_000 });
    expect(candles.length).toBeGreaterThanOrEqual(11);
    const c = candles[0]!;
    expect(c.s).toBe('BTC');
    expect(c.i).toBe('5m');
    expect(c.T).toBe(c.t + 5 * 60_000 - 1);
    expect(Number(c.h)).toBeGreaterThanOrEqual(Math.max(Number(c.o), Number(c.c)));
  });

  it('answers the account requests for an unknown user with empty shapes', async () => {
    const nobody = '0x000000000000000000000000000000000000dead';
    const st = await rig.info.clearinghouseState({ user: nobody });
    expect(st.assetPositions).toEqual([]);
    expect(st.marginSummary.accountValue).toMatch(/^0(\.0+)?$/);
    expect(await rig.info.openOrders({ user: nobody })).toEqual([]);
    expect(await rig.info.userFills({ user: nobody })).toEqual([]);
    expect((await rig.info.orderStatus({ user: nobody, oid: 1 })).status).toBe('unknownOid');
  });

  it('answers the start-up listings general clients ask for', async () => {
    const spot = await rig.info.spotMeta();
    expect(spot).toEqual({ universe: [], tokens: [] });
    const spotCtx = await rig.info.spotMetaAndAssetCtxs();
    expect(spotCtx).toEqual([{ universe: [], tokens: [] }, []]);
    const dexs = await rig.info.perpDexs();
    expect(dexs[0]).toBeNull();
    const rl = await rig.info.userRateLimit({ user: rig.user });
    expect(rl.nRequestsCap).toBeGreaterThanOrEqual(10_000);
  });

  it('answers an unknown or malformed request type with the real 422, and keeps serving', async () => {
    const r1 = await post({ type: 'noSuchRequest' });
    expect(r1.status).toBe(422);
    expect(await r1.text()).toBe('Failed to deserialize the JSON body into the target type');
    const r2 = await post({ type: 'clearinghouseState', user: 'not-an-address' });
    expect(r2.status).toBe(422);
    const r3 = await fetch(`${rig.sim.url}/info`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{not json' });
    expect(r3.status).toBe(400);
    const r4 = await post({ type: 'l2Book', coin: 'BTC', nSigFigs: 7 });
    expect(r4.status).toBe(422);
    expect(await rig.info.allMids()).toHaveProperty('BTC');
  });
});

describe('WebSocket /ws', () => {
  it('greets, answers ping, echoes subscriptions and reports errors', async () => {
    const ws = new WebSocket(rig.sim.wsUrl);
    const frames: string[] = [];
    ws.addEventListener('message', (e) => frames.push(String(e.data)));
    await new Promise((r) => ws.addEventListener('open', r));
    await until(() => (frames.length > 0 ? true : undefined));
    expect(frames[0]).toBe('Websocket connection established.');
    ws.send('{"method":"ping"}');
    await until(() => (frames.includes('{"channel":"pong"}') ? true : undefined));
    const sub = { type: 'l2Book', coin: 'BTC', nSigFigs: null, mantissa: null };
    ws.send(JSON.stringify({ method: 'subscribe', subscription: sub }));
    await until(() => frames.find((f) => f.includes('subscriptionResponse')));
    expect(JSON.parse(frames.find((f) => f.includes('subscriptionResponse'))!)).toEqual({ channel: 'subscriptionResponse', data: { method: 'subscribe', subscription: sub } });
    ws.send(JSON.stringify({ method: 'subscribe', subscription: sub }));
    await until(() => frames.find((f) => f.includes('Already subscribed')));
    ws.send(JSON.stringify({ method: 'subscribe', subscription: { type: 'bogus' } }));
    await until(() => frames.find((f) => f.includes('Invalid subscription')));
    ws.send(JSON.stringify({ method: 'unsubscribe', subscription: sub }));
    await until(() => frames.find((f) => f.includes('"method":"unsubscribe"')));
    ws.close();
  });

  it('streams every channel to the SDK: allMids, l2Book, trades, candle', async () => {
    const { subs } = rig.ws();
    const got = { mids: 0, book: 0, trades: 0, candle: 0 };
    await subs.allMids((e) => {
      if (e.mids['BTC']) got.mids++;
    });
    await subs.l2Book({ coin: 'BTC' }, (e) => {
      if (e.coin === 'BTC' && e.levels[0].length > 0) got.book++;
    });
    await subs.trades({ coin: 'BTC' }, (e) => {
      if (e.length > 0 && e[0]!.coin === 'BTC') got.trades++;
    });
    await subs.candle({ coin: 'BTC', interval: '1m' }, (e) => {
      if (e.s === 'BTC' && e.i === '1m') got.candle++;
    });
    await until(() => (got.mids > 2 && got.book > 1 && got.trades > 1 && got.candle > 1 ? true : undefined), { sim: rig.sim, stepMs: 200 });
  });

  it('streams orderUpdates, userFills (snapshot first) and user events for the account', async () => {
    const { subs } = rig.ws();
    const fills: { isSnapshot?: boolean; n: number }[] = [];
    const updates: string[] = [];
    const userEvents: string[] = [];
    await subs.userFills({ user: rig.user }, (e) => fills.push({ isSnapshot: e.isSnapshot, n: e.fills.length }));
    await subs.orderUpdates({ user: rig.user }, (e) => {
      for (const u of e) updates.push(`${u.order.cloid}:${u.status}`);
    });
    await subs.userEvents({ user: rig.user }, (e) => userEvents.push(Object.keys(e)[0]!));
    await until(() => (fills.length > 0 ? true : undefined));
    expect(fills[0]!.isSnapshot).toBe(true);

    const b = await rig.info.l2Book({ coin: 'BTC' });
    const ask = Number(b!.levels[1][0]!.px);
    await rig.ex.order({ orders: [{ a: BTC, b: true, p: String(Math.round(ask * 1.01)), s: '0.002', r: false, t: { limit: { tif: 'Ioc' } }, c: cloidOf(77) }], grouping: 'na' });
    await until(() => (fills.length > 1 && userEvents.includes('fills') && updates.some((u) => u.startsWith(cloidOf(77))) ? true : undefined));
    expect(fills[1]!.isSnapshot).toBeFalsy();
    expect(updates).toContain(`${cloidOf(77)}:filled`);
  });

  it('serves info and exchange requests posted over the socket', async () => {
    const { info, ex } = rig.ws();
    const mids = await info.allMids();
    expect(Number(mids['BTC'])).toBeGreaterThan(0);
    const b = await info.l2Book({ coin: 'BTC' });
    const bid = Number(b!.levels[0][0]!.px);
    const r = await ex.order({ orders: [{ a: BTC, b: true, p: String(Math.round(bid * 0.9)), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(78) }], grouping: 'na' });
    expect(r.response.data.statuses[0]).toHaveProperty('resting');
    const st = await info.orderStatus({ user: rig.user, oid: cloidOf(78) });
    expect(st.status).toBe('order');
  });

  it('answers a malformed post with an error response on the post channel', async () => {
    const ws = new WebSocket(rig.sim.wsUrl);
    const frames: string[] = [];
    ws.addEventListener('message', (e) => frames.push(String(e.data)));
    await new Promise((r) => ws.addEventListener('open', r));
    ws.send(JSON.stringify({ method: 'post', id: 5, request: { type: 'info', payload: { type: 'orderStatus', user: 'nope', oid: 1 } } }));
    ws.send(JSON.stringify({ method: 'post', id: 6, request: { type: 'action', payload: { action: { type: 'noop' } } } }));
    const p5 = await until(() => frames.find((f) => f.includes('"id":5')));
    const p6 = await until(() => frames.find((f) => f.includes('"id":6')));
    expect(JSON.parse(p5)).toEqual({ channel: 'post', data: { id: 5, response: { type: 'error', payload: 'Failed to deserialize the JSON body into the target type' } } });
    expect(JSON.parse(p6).data.response.type).toBe('error');
    ws.close();
  });
});

describe('simulator control', () => {
  it('exposes ground truth, funds accounts and refuses bad bodies with a clear error', async () => {
    const st = (await (await fetch(`${rig.sim.url}/_sim/state`)).json()) as { accounts: { address: string }[]; orders: unknown[]; fills: unknown[] };
    expect(st.accounts.some((a) => a.address === rig.user)).toBe(true);
    expect(st.orders.length).toBeGreaterThan(0);
    const bad = await fetch(`${rig.sim.url}/_sim/accounts`, { method: 'POST', body: '{"address":"0x12","usdc":-1}' });
    expect(bad.status).toBe(400);
    const badFaults = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: '{"nope":0.5}' });
    expect(badFaults.status).toBe(400);
    expect(((await badFaults.json()) as { error: string }).error).toMatch(/nope|unrecognized/i);
  });

  it('keeps serving after garbage on every surface', async () => {
    for (const body of ['', 'null', '[]', '{"type":null}', '{"type":"meta","dex":5}', '"x"']) {
      const r = await fetch(`${rig.sim.url}/info`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect([400, 422]).toContain(r.status);
      const e = await fetch(`${rig.sim.url}/exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect([400, 422]).toContain(e.status);
    }
    expect(await rig.info.allMids()).toHaveProperty('BTC');
  });
});

export { HttpRequestError };
