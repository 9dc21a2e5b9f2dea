/**
 * The adapter's parse edge against a deliberately broken venue on loopback (real SDK, real
 * sockets): malformed query answers are VenueError('invalid_response'), an unreadable order
 * answer is `unknown` (the order may exist), and malformed stream messages are dropped, counted
 * and logged once while good ones still flow. Plus the schemas' domain conversions.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ethers } from 'ethers';
import { dec } from '../../src/domain/decimal.ts';
import { createHyperliquidVenue, VenueError, type HyperliquidVenue } from '../../src/venue/index.ts';
import { ClearinghouseStateSchema, FrontendOrderSchema, OrderStatusSchema, toAccountState, toVenueOrder, toVenueOrderStatus, venueErrorOf } from '../../src/venue/hyperliquid-schemas.ts';

let server: http.Server;
let wss: WebSocketServer;
let url: string;
/** What the broken venue answers, per info type / for exchange. */
const answers: Record<string, unknown> = {};
const sockets: WebSocket[] = [];
const warnings: string[] = [];
let venue: HyperliquidVenue;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const type = req.url === '/exchange' ? 'exchange' : (JSON.parse(body) as { type: string }).type;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(answers[type] ?? null));
    });
  });
  wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => {
    sockets.push(ws);
    ws.on('message', (m) => {
      const msg = JSON.parse(String(m)) as { method: string; subscription?: unknown };
      if (msg.method === 'subscribe') ws.send(JSON.stringify({ channel: 'subscriptionResponse', data: { method: 'subscribe', subscription: msg.subscription } }));
      if (msg.method === 'ping') ws.send('{"channel":"pong"}');
    });
  }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const log = { debug() {}, info() {}, error() {}, warn: (_o: object, m: string) => void warnings.push(m) };
  venue = createHyperliquidVenue({ network: 'paper', apiUrl: url, wallet: new ethers.Wallet(ethers.id('keel-test:edge')), account: '0x' + '11'.repeat(20), timeoutMs: 2_000, log });
});
afterAll(async () => {
  await venue.close();
  wss.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('malformed answers', () => {
  it('turns bad query answers into VenueError(invalid_response), never garbage', async () => {
    answers['meta'] = { universe: [{ name: 'BTC', szDecimals: 'five', maxLeverage: 50 }] };
    answers['allMids'] = { BTC: 'NaN' };
    answers['clearinghouseState'] = { assetPositions: [], marginSummary: { accountValue: '1e5', totalNtlPos: '0', totalMarginUsed: '0' }, withdrawable: '1', time: 1 };
    answers['orderStatus'] = { status: 'order', order: { status: 'open' } };
    answers['frontendOpenOrders'] = [{ coin: 'BTC', side: 'X', limitPx: '1', sz: '1', oid: 1, timestamp: 1, origSz: '1' }];
    for (const q of [() => venue.instruments(), () => venue.mids(), () => venue.accountState(), () => venue.orderStatus('0x' + 'ab'.repeat(16)), () => venue.openOrders()]) {
      const err = await q().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VenueError);
      expect((err as VenueError).kind).toBe('invalid_response');
    }
  });

  it('an unreadable "ok" answer to an order is unknown: the order may exist', async () => {
    answers['exchange'] = { status: 'ok', response: { type: 'order', data: { statuses: [{ resting: { oid: 'x' } }] } } };
    const intent = { cloid: '0x' + 'cd'.repeat(16), coin: 'BTC', assetId: 0, side: 'buy' as const, sz: dec('0.001'), px: dec(50_000), reduceOnly: false, tif: 'Gtc' as const, kind: 'entry' as const, createdAt: 0 };
    const r = await venue.place(intent, { expiresAfter: Date.now() + 5_000 });
    expect(r.kind).toBe('unknown');
    expect((r as { cause: string }).cause).toMatch(/^invalid_response/);
    answers['exchange'] = { status: 'err', response: 'Must deposit before performing actions. User: 0x11' };
    expect(await venue.place(intent, { expiresAfter: Date.now() + 5_000 })).toEqual({ kind: 'rejected', error: 'Must deposit before performing actions. User: 0x11' });
  });
});

describe('malformed stream messages', () => {
  it('drops, counts and logs once; good messages still arrive', async () => {
    const candles: number[] = [];
    const sub = await venue.subscribeMarket(['BTC'], ['1m'], { onCandle: (c) => candles.push(c.c) });
    const ws = sockets[sockets.length - 1]!;
    const good = { t: 60_000, T: 119_999, s: 'BTC', i: '1m', o: '1', c: '2', h: '3', l: '0.5', v: '10', n: 3 };
    ws.send(JSON.stringify({ channel: 'candle', data: { ...good, c: 'garbage' } }));
    ws.send(JSON.stringify({ channel: 'candle', data: { ...good, h: '0.1' } })); // high below low
    ws.send(JSON.stringify({ channel: 'candle', data: good }));
    const deadline = Date.now() + 3_000;
    while (candles.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(candles).toEqual([2]);
    expect(venue.droppedMessages()).toEqual({ candle: 2 });
    expect(warnings.filter((w) => w.startsWith('venue: dropped malformed message'))).toHaveLength(1);
    await sub.unsubscribe();
  });
});

describe('schemas', () => {
  it('maps account state, orders and statuses into domain values', () => {
    const st = toAccountState(
      ClearinghouseStateSchema.parse({
        assetPositions: [
          { type: 'oneWay', position: { coin: 'ETH', szi: '-0.5', leverage: { type: 'cross', value: 10 }, entryPx: '2000.5', unrealizedPnl: '-3.25', liquidationPx: null, marginUsed: '100' } },
          { type: 'oneWay', position: { coin: 'BTC', szi: '0.0', leverage: { type: 'cross', value: 20 }, entryPx: '0', unrealizedPnl: '0', liquidationPx: null, marginUsed: '0' } },
        ],
        marginSummary: { accountValue: '1000.5', totalNtlPos: '1000', totalRawUsd: '1', totalMarginUsed: '100' },
        withdrawable: '900',
        time: 5,
      }),
    );
    expect(st.positions).toHaveLength(1);
    expect(st.positions[0]!.szi.eq('-0.5')).toBe(true);
    expect(st.positions[0]!.liquidationPx).toBeUndefined();
    expect(st.accountValue.eq('1000.5')).toBe(true);

    const o = toVenueOrder(FrontendOrderSchema.parse({ coin: 'BTC', side: 'A', limitPx: '60000.0', sz: '0.01', oid: 7, timestamp: 1, origSz: '0.02', isTrigger: true, triggerPx: '61000.0', reduceOnly: true, cloid: '0x' + 'AB'.repeat(16) }));
    expect(o).toMatchObject({ side: 'sell', isTrigger: true, reduceOnly: true, cloid: '0x' + 'ab'.repeat(16) });
    expect(o.triggerPx!.eq(61_000)).toBe(true);

    const order = { coin: 'BTC', side: 'B', limitPx: '1', sz: '0', oid: 9, timestamp: 1, origSz: '1', cloid: null };
    expect(toVenueOrderStatus(OrderStatusSchema.parse({ status: 'order', order: { order, status: 'marginCanceled', statusTimestamp: 3 } }))).toMatchObject({ found: true, oid: 9, status: 'other', rawStatus: 'marginCanceled' });
    expect(toVenueOrderStatus(OrderStatusSchema.parse({ status: 'unknownOid' }))).toEqual({ found: false });
    expect(OrderStatusSchema.safeParse({ status: 'order', order: { order: { ...order, sz: '-1' }, status: 'open', statusTimestamp: 3 } }).success).toBe(false);
  });

  it('reads the venue string from either error shape', () => {
    expect(venueErrorOf({ status: 'err', response: 'Invalid nonce' })).toEqual({ scope: 'top', error: 'Invalid nonce' });
    expect(venueErrorOf({ status: 'ok', response: { type: 'order', data: { statuses: [{ error: 'Order has zero size.' }] } } })).toEqual({ scope: 'order', error: 'Order has zero size.' });
    expect(venueErrorOf({ nope: 1 })).toBeUndefined();
  });
});
