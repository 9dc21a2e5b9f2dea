/**
 * The bare pipeline of the tick-to-order benchmark: the least a program can do between a market
 * data message and an order. It receives the simulator's candle messages on one WebSocket, parses
 * them, and on the first message of each new 1m bar signs an IOC order with the same SDK keel uses
 * (`ExchangeClient.order` over `HttpTransport`, an expiresAfter like keel's) and posts it. No
 * actors, no risk, no database, no logging. With several coins it orders one coin per bar, in
 * turn (bar index modulo the number of coins), so it sends one order per tick.
 * The cloid is the prefix followed by the bar's index (open time / 60 000): the benchmark ties each
 * order to the exact frame that triggered it.
 *
 * Usage: node bench/bare-pipeline.ts <apiUrl> <coin:assetId,...> <seconds> <cloidPrefix 8 hex> <privateKey>
 * Exits after <seconds>; prints one JSON line with how many orders it sent.
 */
import { ethers } from 'ethers';
import { ExchangeClient, HttpTransport } from '@nktkas/hyperliquid';

const [apiUrl, coinsArg, secondsArg, prefix, key] = process.argv.slice(2);
if (!apiUrl || !coinsArg || !secondsArg || !prefix || !key) throw new Error('usage: bare-pipeline.ts <apiUrl> <coin:assetId,...> <seconds> <cloidPrefix> <privateKey>');
const coins = coinsArg.split(',').map((x) => {
  const [coin, asset] = x.split(':');
  return { coin: coin!, asset: Number(asset) };
});
const wallet = new ethers.Wallet(key);
const exchange = new ExchangeClient({ transport: new HttpTransport({ apiUrl, isTestnet: true, timeout: 4_000 }), wallet });

/** Hyperliquid's perp price rule: 5 significant figures. */
function price(x: number): string {
  return String(Number(x.toPrecision(5)));
}

const lastT = new Map<string, number>();
let sent = 0;
const ws = new WebSocket(`${apiUrl.replace(/^http/, 'ws')}/ws`);
ws.addEventListener('open', () => {
  for (const { coin } of coins) ws.send(JSON.stringify({ method: 'subscribe', subscription: { type: 'candle', coin, interval: '1m' } }));
});
ws.addEventListener('message', (e) => {
  let m: unknown;
  try {
    m = JSON.parse(String(e.data));
  } catch {
    return;
  }
  if (typeof m !== 'object' || m === null || (m as { channel?: unknown }).channel !== 'candle') return;
  const c = (m as { data?: { t?: unknown; c?: unknown; s?: unknown } }).data;
  if (typeof c?.t !== 'number' || typeof c.c !== 'string' || typeof c.s !== 'string') return;
  const k = coins.findIndex((x) => x.coin === c.s);
  if (k < 0) return;
  const prev = lastT.get(c.s);
  if (c.t === prev) return;
  lastT.set(c.s, c.t);
  if (prev === undefined) return; // the snapshot after subscribing is not a new bar
  const bar = Math.floor(c.t / 60_000);
  if (bar % coins.length !== k) return;
  const close = Number(c.c);
  if (!Number.isFinite(close) || close <= 0) return;
  const asset = coins[k]!.asset;
  const cloid = `0x${prefix}${bar.toString(16).padStart(24, '0')}` as `0x${string}`;
  sent++;
  exchange
    .order({ orders: [{ a: asset, b: true, p: price(close), s: '0.001', r: false, t: { limit: { tif: 'Ioc' } }, c: cloid }], grouping: 'na' }, { expiresAfter: Date.now() + 5_000 })
    .catch(() => {}); // the benchmark's simulator rejects every order: only its arrival counts
});

setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ sent })}\n`);
  ws.close();
  process.exit(0);
}, Number(secondsArg) * 1000);
