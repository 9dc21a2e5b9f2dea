/**
 * The real SDK (@nktkas/hyperliquid, ethers wallets) against the simulator over loopback:
 * every exchange action and its error cases, as a client would see them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiRequestError, ExchangeClient, HttpRequestError, HttpTransport } from '@nktkas/hyperliquid';
import { cloidOf, startRig, until, walletFor, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;
const BTC = 0;
let nonceSeq = 0;
/** noop takes its nonce explicitly; keep them unique and near the exchange clock. */
const freshNonce = () => rig.sim.clock.now() + 1_000_000 + ++nonceSeq;

async function book(coin = 'BTC') {
  const b = await rig.info.l2Book({ coin });
  const bid = Number(b!.levels[0][0]!.px);
  const ask = Number(b!.levels[1][0]!.px);
  return { bid, ask, mid: (bid + ask) / 2 };
}

/** A BTC price valid under the 5-significant-figure rule at the current level (integers). */
const px = (x: number) => String(Math.round(x));

beforeAll(async () => {
  rig = await startRig('exchange');
});
afterAll(async () => {
  await rig.close();
});

describe('order placement', () => {
  it('rests a Gtc bid below the market with its cloid, and reports it everywhere', async () => {
    const { bid } = await book();
    const cloid = cloidOf(1);
    const r = await rig.ex.order({ orders: [{ a: BTC, b: true, p: px(bid * 0.98), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloid }], grouping: 'na' });
    const st = r.response.data.statuses[0] as { resting: { oid: number; cloid?: string } };
    expect(st.resting.oid).toBeTypeOf('number');
    expect(st.resting.cloid).toBe(cloid);
    const open = await rig.info.openOrders({ user: rig.user });
    expect(open.some((o) => o.oid === st.resting.oid && o.cloid === cloid && o.side === 'B' && o.coin === 'BTC')).toBe(true);
    const fe = await rig.info.frontendOpenOrders({ user: rig.user });
    const o = fe.find((x) => x.oid === st.resting.oid)!;
    expect(o.orderType).toBe('Limit');
    expect(o.isTrigger).toBe(false);
    const byOid = await rig.info.orderStatus({ user: rig.user, oid: st.resting.oid });
    const byCloid = await rig.info.orderStatus({ user: rig.user, oid: cloid });
    expect(byOid.status).toBe('order');
    expect(byCloid).toEqual(byOid);
    if (byOid.status === 'order') expect(byOid.order.status).toBe('open');
    const unknown = await rig.info.orderStatus({ user: rig.user, oid: cloidOf(999_999) });
    expect(unknown.status).toBe('unknownOid');
  });

  it('fills an Ioc buy against the ask and shows the fill, position, fees and PnL', async () => {
    const { ask } = await book();
    const r = await rig.ex.order({ orders: [{ a: BTC, b: true, p: px(ask * 1.01), s: '0.01', r: false, t: { limit: { tif: 'Ioc' } }, c: cloidOf(2) }], grouping: 'na' });
    const st = r.response.data.statuses[0] as { filled: { totalSz: string; avgPx: string; oid: number } };
    expect(st.filled.totalSz).toBe('0.01');
    expect(Number(st.filled.avgPx)).toBeGreaterThanOrEqual(ask);
    expect(Number(st.filled.avgPx)).toBeLessThanOrEqual(Number(px(ask * 1.01)));
    const fills = await rig.info.userFills({ user: rig.user });
    const mine = fills.filter((f) => f.oid === st.filled.oid);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((f) => f.crossed && f.side === 'B' && f.dir === 'Open Long' && Number(f.fee) > 0)).toBe(true);
    const byTime = await rig.info.userFillsByTime({ user: rig.user, startTime: 0 });
    expect(byTime.map((f) => f.tid)).toEqual(expect.arrayContaining(mine.map((f) => f.tid)));
    const state = await rig.info.clearinghouseState({ user: rig.user });
    const pos = state.assetPositions.find((p) => p.position.coin === 'BTC')!;
    expect(pos.position.szi).toBe('0.01');
    expect(Number(state.marginSummary.accountValue)).toBeGreaterThan(0);
  });

  it('rejects a post-only order that would cross, with the bbo in the message', async () => {
    const { ask } = await book();
    const err = await rig.ex.order({ orders: [{ a: BTC, b: true, p: px(ask + 5), s: '0.001', r: false, t: { limit: { tif: 'Alo' } } }], grouping: 'na' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiRequestError);
    expect((err as Error).message).toMatch(/^order 0: Post only order would have immediately matched, bbo was /);
  });

  it('answers the per-order error strings of the real venue', async () => {
    const { bid, ask } = await book();
    const cases: [Parameters<ExchangeClient['order']>[0]['orders'][number], RegExp][] = [
      [{ a: BTC, b: true, p: `${Math.round(bid * 0.98)}.5`, s: '0.001', r: false, t: { limit: { tif: 'Gtc' } } }, /Price must be divisible by tick size\./],
      [{ a: BTC, b: true, p: px(bid * 0.98), s: '0.0001', r: false, t: { limit: { tif: 'Gtc' } } }, /Order must have minimum value of \$10\./],
      [{ a: BTC, b: true, p: px(bid * 0.98), s: '500', r: false, t: { limit: { tif: 'Gtc' } } }, /Insufficient margin to place order\./],
      [{ a: BTC, b: true, p: px(ask * 1.01), s: '0.001', r: true, t: { limit: { tif: 'Ioc' } } }, /Reduce only order would increase position\./],
      [{ a: BTC, b: true, p: px(bid * 0.9), s: '0.001', r: false, t: { limit: { tif: 'Ioc' } } }, /Order could not immediately match against any resting orders\./],
    ];
    for (const [order, msg] of cases) {
      const err = await rig.ex.order({ orders: [order], grouping: 'na' }).catch((e: unknown) => e);
      expect(err, JSON.stringify(order)).toBeInstanceOf(ApiRequestError);
      expect((err as Error).message).toMatch(msg);
    }
  });

  it('places a reduce-only sell that closes part of the long', async () => {
    const { bid } = await book();
    const r = await rig.ex.order({ orders: [{ a: BTC, b: false, p: px(bid * 0.99), s: '0.004', r: true, t: { limit: { tif: 'Ioc' } } }], grouping: 'na' });
    expect(r.response.data.statuses[0]).toHaveProperty('filled');
    const state = await rig.info.clearinghouseState({ user: rig.user });
    expect(state.assetPositions.find((p) => p.position.coin === 'BTC')!.position.szi).toBe('0.006');
    const fills = await rig.info.userFills({ user: rig.user });
    expect(fills[0]!.dir).toBe('Close Long');
  });

  it('accepts tp / sl triggers (market and limit) and a normalTpsl group', async () => {
    const { bid, ask } = await book();
    const r = await rig.ex.order({
      orders: [
        { a: BTC, b: false, p: px(bid * 0.9), s: '0.002', r: true, t: { trigger: { isMarket: true, triggerPx: px(bid * 0.95), tpsl: 'sl' } } },
        { a: BTC, b: false, p: px(ask * 1.1), s: '0.002', r: true, t: { trigger: { isMarket: false, triggerPx: px(ask * 1.05), tpsl: 'tp' } } },
      ],
      grouping: 'na',
    });
    expect(r.response.data.statuses).toEqual(['waitingForTrigger', 'waitingForTrigger']);
    const fe = await rig.info.frontendOpenOrders({ user: rig.user });
    expect(fe.filter((o) => o.isTrigger).length).toBeGreaterThanOrEqual(2);

    const grouped = await rig.ex.order({
      orders: [
        { a: BTC, b: true, p: px(bid * 0.97), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(30) },
        { a: BTC, b: false, p: px(bid * 0.9), s: '0.001', r: true, t: { trigger: { isMarket: true, triggerPx: px(bid * 0.93), tpsl: 'sl' } } },
        { a: BTC, b: false, p: px(ask * 1.1), s: '0.001', r: true, t: { trigger: { isMarket: true, triggerPx: px(ask * 1.05), tpsl: 'tp' } } },
      ],
      grouping: 'normalTpsl',
    });
    expect(grouped.response.data.statuses[0]).toHaveProperty('resting');
    expect(grouped.response.data.statuses.slice(1)).toEqual(['waitingForFill', 'waitingForFill']);

    const pos = await rig.ex.order({
      orders: [{ a: BTC, b: false, p: px(bid * 0.9), s: '0.006', r: true, t: { trigger: { isMarket: true, triggerPx: px(bid * 0.94), tpsl: 'sl' } } }],
      grouping: 'positionTpsl',
    });
    expect(pos.response.data.statuses).toEqual(['waitingForTrigger']);
  });

  it('cancels by oid and by cloid, and says when an order was never placed', async () => {
    const { bid } = await book();
    const placed = await rig.ex.order({
      orders: [
        { a: BTC, b: true, p: px(bid * 0.96), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(40) },
        { a: BTC, b: true, p: px(bid * 0.96), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(41) },
      ],
      grouping: 'na',
    });
    const oid = (placed.response.data.statuses[0] as { resting: { oid: number } }).resting.oid;
    const c1 = await rig.ex.cancel({ cancels: [{ a: BTC, o: oid }] });
    expect(c1.response.data.statuses).toEqual(['success']);
    const c2 = await rig.ex.cancelByCloid({ cancels: [{ asset: BTC, cloid: cloidOf(41) }] });
    expect(c2.response.data.statuses).toEqual(['success']);
    const again = await rig.ex.cancel({ cancels: [{ a: BTC, o: oid }] }).catch((e: unknown) => e);
    expect((again as Error).message).toBe('cancel 0: Order was never placed, already canceled, or filled.');
    const st = await rig.info.orderStatus({ user: rig.user, oid: cloidOf(41) });
    expect(st.status === 'order' && st.order.status).toBe('canceled');
  });

  it('modifies and batch-modifies resting orders', async () => {
    const { bid } = await book();
    const placed = await rig.ex.order({ orders: [{ a: BTC, b: true, p: px(bid * 0.95), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(50) }], grouping: 'na' });
    const oid = (placed.response.data.statuses[0] as { resting: { oid: number } }).resting.oid;
    await rig.ex.modify({ oid, order: { a: BTC, b: true, p: px(bid * 0.94), s: '0.002', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(50) } });
    const st = await rig.info.orderStatus({ user: rig.user, oid: cloidOf(50) });
    expect(st.status === 'order' && st.order.order.sz).toBe('0.002');
    const bm = await rig.ex.batchModify({ modifies: [{ oid: cloidOf(50), order: { a: BTC, b: true, p: px(bid * 0.93), s: '0.003', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(50) } }] });
    expect(bm.response.data.statuses[0]).toHaveProperty('resting');
    const open = await rig.info.openOrders({ user: rig.user });
    const o = open.find((x) => x.cloid === cloidOf(50))!;
    expect(o.sz).toBe('0.003');
    expect(o.limitPx).toBe(px(bid * 0.93));
  });

  it('updates leverage, arms and clears the dead-man switch, and burns a nonce with noop', async () => {
    await rig.ex.updateLeverage({ asset: BTC, isCross: true, leverage: 10 });
    const state = await rig.info.clearinghouseState({ user: rig.user });
    const pos = state.assetPositions.find((p) => p.position.coin === 'BTC');
    expect(pos?.position.leverage).toEqual({ type: 'cross', value: 10 });
    const tooHigh = await rig.ex.updateLeverage({ asset: BTC, isCross: true, leverage: 1000 }).catch((e: unknown) => e);
    expect(tooHigh).toBeInstanceOf(ApiRequestError);

    const early = await rig.ex.scheduleCancel({ time: rig.sim.clock.now() + 1000 }).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(ApiRequestError);
    await rig.ex.scheduleCancel({ time: rig.sim.clock.now() + 10_000 });
    await rig.ex.scheduleCancel();
    await rig.ex.noop({ nonce: freshNonce() });
  });

  it('runs the dead-man switch: at its time every open order is cancelled with scheduledCancel', async () => {
    const { bid } = await book();
    await rig.ex.order({ orders: [{ a: BTC, b: true, p: px(bid * 0.9), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(60) }], grouping: 'na' });
    await rig.ex.scheduleCancel({ time: rig.sim.clock.now() + 6_000 });
    rig.sim.step(7_000);
    const open = await rig.info.openOrders({ user: rig.user });
    expect(open.filter((o) => !o.reduceOnly)).toEqual([]);
    const st = await rig.info.orderStatus({ user: rig.user, oid: cloidOf(60) });
    expect(st.status === 'order' && st.order.status).toBe('scheduledCancel');
  });
});

describe('authentication, nonces and expiry', () => {
  it('refuses a signer that is neither an account nor an agent', async () => {
    const stranger = new ExchangeClient({ transport: rig.http, wallet: walletFor('stranger') });
    const err = await stranger.noop({ nonce: freshNonce() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiRequestError);
    expect((err as Error).message).toBe(`L1 error: User or API Wallet ${walletFor('stranger').address.toLowerCase()} does not exist.`);
  });

  it('refuses a reused nonce', async () => {
    const fixed = freshNonce();
    await rig.ex.noop({ nonce: fixed });
    const err = await rig.ex.noop({ nonce: fixed }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/Invalid nonce/);
    expect((err as Error).message).toContain(String(fixed));
  });

  it('refuses an expired action and accepts an unexpired one', async () => {
    const err = await rig.ex.noop({ nonce: freshNonce() }, { expiresAfter: rig.sim.clock.now() - 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiRequestError);
    expect((err as Error).message).toMatch(/expire/i);
    await rig.ex.noop({ nonce: freshNonce() }, { expiresAfter: rig.sim.clock.now() + 5_000 });
  });

  it('maps the agent to its master: orders from the agent land on the master account', async () => {
    const gt = (await (await fetch(`${rig.sim.url}/_sim/state`)).json()) as { orders: { user: string; cloid: string | null }[] };
    const o = gt.orders.find((x) => x.cloid === cloidOf(1))!;
    expect(o.user).toBe(rig.user);
  });

  it('answers a malformed body with the real 422', async () => {
    const res = await fetch(`${rig.sim.url}/exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"action":{"type":"order"},"nonce":"x"}' });
    expect(res.status).toBe(422);
    expect(await res.text()).toBe('Failed to deserialize the JSON body into the target type');
  });
});

describe('rate limits', () => {
  it('answers 429 once the IP request weight is spent', async () => {
    const r2 = await startRig('ratelimit', { ipWeightPerMinute: 100 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        // meta weighs 20: five pass, the sixth is refused.
        const res = await fetch(`${r2.sim.url}/info`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"meta"}' });
        statuses.push(res.status);
      }
      expect(statuses.slice(0, 4).every((s) => s === 200)).toBe(true);
      expect(statuses.slice(-2)).toEqual([429, 429]);
      const err = await r2.info.meta().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HttpRequestError);
      expect((err as Error).message).toMatch(/^429/);
    } finally {
      await r2.close();
    }
  });

  it('limits actions per address beyond the initial buffer plus traded volume', async () => {
    const r3 = await startRig('addrlimit', { addressInitialBuffer: 3 });
    try {
      // The agent approval was request 1 of the 3.
      const n0 = r3.sim.clock.now() + 1_000;
      await r3.ex.noop({ nonce: n0 + 1 });
      await r3.ex.noop({ nonce: n0 + 2 });
      await r3.ex.noop({ nonce: n0 + 3 }); // over the cap: one request per 10 s still passes
      const err = await r3.ex.noop({ nonce: n0 + 4 }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(/^Too many cumulative requests sent/);
      const rl = await r3.info.userRateLimit({ user: r3.user });
      expect(rl.nRequestsCap).toBe(3);
      expect(rl.nRequestsUsed).toBeGreaterThanOrEqual(4);
    } finally {
      await r3.close();
    }
  });
});

describe('the HTTP transport contract', () => {
  it('always answers JSON with the right content type', async () => {
    const res = await fetch(`${rig.sim.url}/info`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"allMids"}' });
    expect(res.headers.get('content-type')).toContain('application/json');
    // A second SDK client (mainnet signing) is just another unknown signer to a testnet simulator.
    const mainnet = new ExchangeClient({ transport: new HttpTransport({ apiUrl: rig.sim.url, isTestnet: false }), wallet: rig.agent });
    const err = await mainnet.noop({ nonce: freshNonce() }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/does not exist/);
  });
});

export { until };
