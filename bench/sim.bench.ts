/**
 * `npm run bench:sim`: how fast the simulator accepts and matches orders, and how many
 * market-data messages per second it pushes to one WebSocket client, so later benchmarks know the
 * simulator is not their bottleneck.
 *
 * The simulator runs as its own process (`keel sim`, manual clock), as in every other benchmark;
 * the load comes from this process over loopback. Orders are signed with the real SDK signing code
 * before the timed window so the figure is the simulator's, not the client's signing speed.
 * A second figure runs the matching engine in-process without HTTP or signatures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Pool } from 'undici';
import { ethers } from 'ethers';
import { signL1Action } from '@nktkas/hyperliquid/signing';
import { Exchange } from '../src/sim/engine/index.ts';
import { MarketReplay, loadBundledSeries } from '../src/sim/market/index.ts';
import { ExchangeClock } from '../src/sim/server/clock.ts';
import { dec } from '../src/domain/decimal.ts';
import type { OrderRequest } from '../src/sim/types.ts';

const root = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const outArg = args.indexOf('--out');
const out = outArg >= 0 ? args[outArg + 1]! : path.join(root, 'bench', 'sim-results.json');
const ORDERS = Number(process.env['BENCH_SIM_ORDERS'] ?? 3000);
const FEED_SECONDS = Number(process.env['BENCH_SIM_FEED_SECONDS'] ?? 5);

async function startSimProcess(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, [path.join(root, 'src/cli/main.ts'), 'sim', '--port', '0', '--clock', 'manual', '--block-ms', '10', '--book-interval-ms', '0', '--ip-weight', '10000000'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(buf);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (c) => reject(new Error(`sim exited ${c}`)));
  });
  return { url, proc };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function httpOrders(url: string) {
  const pool = new Pool(url, { connections: 8, pipelining: 1 });
  const post = async (p: string, body: unknown) => {
    const r = await pool.request({ path: p, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return r.body.json() as Promise<unknown>;
  };
  const master = new ethers.Wallet(ethers.id('bench:master'));
  await fetch(`${url}/_sim/accounts`, { method: 'POST', body: JSON.stringify({ address: master.address, usdc: 1e9 }) });
  const mids = (await post('/info', { type: 'allMids' })) as Record<string, string>;
  const mid = Number(mids['BTC']);
  let nonce = Date.now();
  // Sign everything first: half resting bids spread under the market, half crossing Iocs.
  const bodies: unknown[] = [];
  for (let i = 0; i < ORDERS; i++) {
    const crossing = i % 2 === 1;
    const px = crossing ? Math.round(mid * 1.02) : Math.round(mid * (0.9 + (i % 50) / 1000));
    const action = { type: 'order', orders: [{ a: 0, b: true, p: String(px), s: '0.001', r: false, t: { limit: { tif: crossing ? 'Ioc' : 'Gtc' } } }], grouping: 'na' };
    const n = ++nonce;
    const signature = await signL1Action({ wallet: master, action, nonce: n, isTestnet: true });
    bodies.push({ action, nonce: n, signature });
  }
  // Warm-up.
  for (let i = 0; i < 50; i++) await post('/info', { type: 'allMids' });
  const lat: number[] = [];
  let filled = 0;
  let resting = 0;
  let errors = 0;
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < bodies.length) {
        const b = bodies[next++];
        const t = performance.now();
        const r = (await post('/exchange', b)) as { status: string; response: { data?: { statuses: unknown[] } } };
        lat.push(performance.now() - t);
        const s = r.response?.data?.statuses?.[0];
        if (s && typeof s === 'object' && 'filled' in s) filled++;
        else if (s && typeof s === 'object' && 'resting' in s) resting++;
        else errors++;
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await pool.close();
  return { orders: bodies.length, ordersPerSecond: bodies.length / secs, filled, resting, errors, p50Ms: pct(lat, 50), p99Ms: pct(lat, 99) };
}

async function feed(url: string) {
  const ws = new WebSocket(`${url.replace('http', 'ws')}/ws`);
  let count = 0;
  let bytes = 0;
  ws.addEventListener('message', (e) => {
    count++;
    bytes += String(e.data).length;
  });
  await new Promise((r) => ws.addEventListener('open', r));
  for (const coin of ['BTC', 'ETH']) {
    ws.send(JSON.stringify({ method: 'subscribe', subscription: { type: 'l2Book', coin } }));
    ws.send(JSON.stringify({ method: 'subscribe', subscription: { type: 'trades', coin } }));
    ws.send(JSON.stringify({ method: 'subscribe', subscription: { type: 'candle', coin, interval: '1m' } }));
  }
  ws.send(JSON.stringify({ method: 'subscribe', subscription: { type: 'allMids' } }));
  await new Promise((r) => setTimeout(r, 200));
  // Drive the market as fast as the simulator will go: each step runs 50 blocks of 10 ms.
  const start = count;
  const t0 = performance.now();
  let steps = 0;
  while (performance.now() - t0 < FEED_SECONDS * 1000) {
    await fetch(`${url}/_sim/clock`, { method: 'POST', body: '{"step":500}' });
    steps++;
  }
  await new Promise((r) => setTimeout(r, 300));
  const secs = (performance.now() - t0) / 1000;
  ws.close();
  return { messages: count - start, messagesPerSecond: (count - start) / secs, blocksPerSecond: (steps * 50) / secs, mbPerSecond: bytes / secs / 1e6 };
}

function engineOnly() {
  const clock = new ExchangeClock('manual');
  const ex = new Exchange({ assets: [{ name: 'BTC', szDecimals: 5, maxLeverage: 40 }], clock });
  const users = Array.from({ length: 10 }, (_, i) => `0x${(i + 1).toString(16).padStart(40, '0')}`);
  for (const u of users) ex.fund(u, dec(1e9));
  // A two-sided book from users only, then alternating crossing orders.
  const mid = 17000;
  const n = 50_000;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const buy = i % 2 === 0;
    const px = buy ? mid - (i % 20) : mid + 1 + (i % 20);
    const crossing = i % 4 === 3;
    const o: OrderRequest = { asset: 0, isBuy: buy, px: dec(crossing ? (buy ? mid + 30 : mid - 30) : px), sz: dec('0.001'), reduceOnly: false, type: { kind: 'limit', tif: crossing ? 'Ioc' : 'Gtc' } };
    ex.placeOrders(users[i % users.length]!, [o], 'na');
  }
  const secs = (performance.now() - t0) / 1000;
  return { orders: n, ordersPerSecond: n / secs };
}

function marketOnly() {
  const series = loadBundledSeries();
  const r = new MarketReplay({ seed: 2, series, startTime: Date.UTC(2026, 0, 1), speed: 20 });
  for (let n = 0; n < 500; n++) r.next(); // warm caches and the JIT
  const blocks = 20_000;
  const t0 = performance.now();
  for (let n = 0; n < blocks; n++) r.next();
  const ms = performance.now() - t0;
  return { blocks, coins: series.length, microsPerCoinBlock: (ms * 1000) / blocks / series.length };
}

const { url, proc } = await startSimProcess();
try {
  const orders = await httpOrders(url);
  const feedR = await feed(url);
  const engine = engineOnly();
  const marketR = marketOnly();
  const results = { when: new Date().toISOString(), node: process.version, httpOrders: orders, wsFeed: feedR, engineOnly: engine, marketOnly: marketR };
  console.log('simulator benchmark');
  console.log(`  orders over HTTP (signed, verified, matched): ${orders.ordersPerSecond.toFixed(0)} orders/s  p50 ${orders.p50Ms.toFixed(2)} ms  p99 ${orders.p99Ms.toFixed(2)} ms  (${orders.filled} filled, ${orders.resting} resting, ${orders.errors} errors)`);
  console.log(`  matching engine alone:                        ${engine.ordersPerSecond.toFixed(0)} orders/s`);
  console.log(`  market replay alone:                          ${marketR.microsPerCoinBlock.toFixed(1)} µs per coin per block (budget 50)`);
  console.log(`  WebSocket market data to one client:          ${feedR.messagesPerSecond.toFixed(0)} msgs/s  (${feedR.blocksPerSecond.toFixed(0)} blocks/s, ${feedR.mbPerSecond.toFixed(1)} MB/s)`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2));
  console.log(`  written to ${path.relative(process.cwd(), out)}`);
} finally {
  proc.kill('SIGTERM');
}

