/**
 * Every fault class of POST /_sim/faults, switched on and observed from the SDK's side.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ApiRequestError, HttpRequestError } from '@nktkas/hyperliquid';
import { cloidOf, startRig, until, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;
const BTC = 0;

async function setFaults(body: Record<string, number>): Promise<void> {
  const r = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  expect(r.status).toBe(200);
}

/** A raw socket that records frames, for observing the feed exactly as sent. */
async function rawSocket(subscription: Record<string, unknown>) {
  const ws = new WebSocket(rig.sim.wsUrl);
  const frames: string[] = [];
  let closed = false;
  ws.addEventListener('message', (e) => frames.push(String(e.data)));
  ws.addEventListener('close', () => (closed = true));
  await new Promise((r) => ws.addEventListener('open', r));
  ws.send(JSON.stringify({ method: 'subscribe', subscription }));
  await until(() => frames.find((f) => f.includes('subscriptionResponse')));
  return { ws, frames, isClosed: () => closed, data: (ch: string) => frames.filter((f) => f.startsWith(`{"channel":"${ch}"`)) };
}

async function bestAsk(): Promise<number> {
  const b = await rig.info.l2Book({ coin: 'BTC' });
  return Number(b!.levels[1][0]!.px);
}

beforeAll(async () => {
  rig = await startRig('faults', { bookIntervalMs: 0 });
  rig.sim.step(500);
});
afterEach(async () => {
  await setFaults({});
});
afterAll(async () => {
  await rig.close();
});

describe('HTTP faults', () => {
  it('latency delays answers', async () => {
    await setFaults({ latency: 1, latencyMs: 300 });
    const t = performance.now();
    await rig.info.allMids();
    expect(performance.now() - t).toBeGreaterThanOrEqual(290);
  });

  it('dropConnection closes the socket without an answer', async () => {
    await setFaults({ dropConnection: 1 });
    const err = await rig.info.allMids().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpRequestError);
  });

  it('lostResponse executes the order but loses the answer; orderStatus by cloid proves it exists', async () => {
    const ask = await bestAsk();
    await setFaults({ lostResponse: 1 });
    const err = await rig.ex.order({ orders: [{ a: BTC, b: true, p: String(Math.round(ask * 0.95)), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: cloidOf(900) }], grouping: 'na' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpRequestError);
    await setFaults({});
    const st = await rig.info.orderStatus({ user: rig.user, oid: cloidOf(900) });
    expect(st.status === 'order' && st.order.status).toBe('open');
  });

  it('rateLimit answers 429', async () => {
    await setFaults({ rateLimit: 1 });
    const err = await rig.info.allMids().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^429/);
  });

  it('http5xx answers a server error', async () => {
    await setFaults({ http5xx: 1 });
    const err = await rig.info.allMids().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpRequestError);
    expect((err as Error).message).toMatch(/^5\d\d/);
  });

  it('outage takes down HTTP and refuses WebSocket connections', async () => {
    await setFaults({ outage: 1 });
    const err = await rig.info.allMids().catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/^502/);
    const ws = new WebSocket(rig.sim.wsUrl);
    const outcome = await new Promise<string>((r) => {
      ws.addEventListener('open', () => r('open'));
      ws.addEventListener('error', () => r('error'));
    });
    expect(outcome).toBe('error');
    await setFaults({});
    expect(await rig.info.allMids()).toHaveProperty('BTC');
  });

  it('partialFill fills only part of a taker order', async () => {
    const ask = await bestAsk();
    await setFaults({ partialFill: 1 });
    const r = await rig.ex.order({ orders: [{ a: BTC, b: true, p: String(Math.round(ask * 1.01)), s: '0.01', r: false, t: { limit: { tif: 'Ioc' } } }], grouping: 'na' });
    const st = r.response.data.statuses[0] as { filled: { totalSz: string } };
    expect(Number(st.filled.totalSz)).toBeGreaterThan(0);
    expect(Number(st.filled.totalSz)).toBeLessThan(0.01);
  });

  it('reject refuses orders with a real rejection string', async () => {
    const ask = await bestAsk();
    await setFaults({ reject: 1 });
    const err = await rig.ex.order({ orders: [{ a: BTC, b: true, p: String(Math.round(ask * 0.95)), s: '0.001', r: false, t: { limit: { tif: 'Gtc' } } }], grouping: 'na' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiRequestError);
    expect((err as Error).message).toMatch(/^order 0: (Insufficient margin|Order price cannot|Order could not)/);
  });
});

describe('WebSocket faults', () => {
  it('wsDisconnect drops connections', async () => {
    const s = await rawSocket({ type: 'allMids' });
    await setFaults({ wsDisconnect: 1 });
    await until(() => (s.isClosed() ? true : undefined), { sim: rig.sim });
  });

  it('wsStall goes silent without closing: no data, no pong', async () => {
    const s = await rawSocket({ type: 'allMids' });
    await setFaults({ wsStall: 1, stallMs: 60_000 });
    rig.sim.step(200);
    const before = s.frames.length;
    s.ws.send('{"method":"ping"}');
    for (let i = 0; i < 10; i++) rig.sim.step(100);
    await new Promise((r) => setTimeout(r, 100));
    expect(s.frames.length).toBe(before);
    expect(s.isClosed()).toBe(false);
    s.ws.close();
  });

  it('staleFeed repeats an old message while the market moves', async () => {
    const s = await rawSocket({ type: 'l2Book', coin: 'BTC' });
    rig.sim.step(200);
    await setFaults({ staleFeed: 1 });
    for (let i = 0; i < 5; i++) rig.sim.step(100);
    await until(() => (s.data('l2Book').length >= 6 ? true : undefined));
    const last = s.data('l2Book').slice(-4);
    expect(new Set(last).size).toBe(1);
    s.ws.close();
  });

  it('duplicateFeed sends messages twice', async () => {
    const s = await rawSocket({ type: 'l2Book', coin: 'BTC' });
    await setFaults({ duplicateFeed: 1 });
    for (let i = 0; i < 3; i++) rig.sim.step(100);
    await until(() => (s.data('l2Book').length >= 6 ? true : undefined));
    const frames = s.data('l2Book').slice(1);
    expect(frames[0]).toBe(frames[1]);
    s.ws.close();
  });

  it('reorderFeed delivers messages out of order', async () => {
    const s = await rawSocket({ type: 'l2Book', coin: 'BTC' });
    await setFaults({ reorderFeed: 1 });
    for (let i = 0; i < 6; i++) rig.sim.step(100);
    await until(() => (s.data('l2Book').length >= 5 ? true : undefined));
    const times = s.data('l2Book').map((f) => (JSON.parse(f) as { data: { time: number } }).data.time);
    expect(times.some((t, i) => i > 0 && t < times[i - 1]!)).toBe(true);
    s.ws.close();
  });

  it('badTick sends a price far off the market', async () => {
    const s = await rawSocket({ type: 'allMids' });
    await setFaults({ badTick: 1 });
    rig.sim.step(100);
    await until(() => (s.data('allMids').length >= 2 ? true : undefined));
    const truth = await rig.info.allMids();
    const mids = s.data('allMids').slice(1).map((f) => (JSON.parse(f) as { data: { mids: Record<string, string> } }).data.mids);
    // Each corrupted message moves one coin's price at least 30 % away from the truth.
    const offMarket = mids.filter((m) => Object.entries(m).some(([coin, px]) => Math.abs(Number(px) / Number(truth[coin]) - 1) > 0.3));
    expect(offMarket.length).toBeGreaterThan(0);
    s.ws.close();
  });
});
