/**
 * The market-data source of the feed-throughput benchmark: a minimal Hyperliquid-protocol
 * WebSocket server (greeting, subscribe acknowledged by echo, ping → pong) that, on
 * `POST /_blast {"rate": msgs/s, "seconds": s}`, sends the simulator's message mix (allMids, then per
 * coin a candle and a trades message every block, an l2Book every tenth block; a new 1m bar every
 * 20 blocks) at that rate to every subscriber, in 1 ms slices, and answers with what it sent.
 * The keel simulator itself tops out near 8,000 messages/s to one client (bench:sim), far under
 * the 50,000/s target, so this stands in for it. `/info` answers the few REST reads the feed makes
 * with empty data. Prints `listening on http://127.0.0.1:<port>`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const COINS = ['BTC', 'ETH'];
const conns = new Set<WebSocket>();
const px: Record<string, number> = { BTC: 17_000, ETH: 1_200 };
let block = 0;
let tid = 0;
let seed = 42;
const rnd = () => {
  seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
  return seed / 0x7fffffff;
};
const fmt = (x: number) => String(Number(x.toPrecision(5)));
const T0 = Math.floor(Date.now() / 60_000) * 60_000;
const bar: Record<string, { t: number; o: number; h: number; l: number; v: number; n: number }> = {};

/** The messages of the next block, as the simulator would send them. */
function nextBlock(): string[] {
  block++;
  const out: string[] = [];
  const t = T0 + Math.floor(block / 20) * 60_000;
  for (const c of COINS) px[c] = px[c]! * (1 + (rnd() - 0.5) * 0.0004);
  out.push(JSON.stringify({ channel: 'allMids', data: { mids: Object.fromEntries(COINS.map((c) => [c, fmt(px[c]!)])) } }));
  for (const c of COINS) {
    const p = px[c]!;
    let b = bar[c];
    if (!b || b.t !== t) b = bar[c] = { t, o: p, h: p, l: p, v: 0, n: 0 };
    b.h = Math.max(b.h, p);
    b.l = Math.min(b.l, p);
    b.v += 0.5 + rnd();
    b.n += 2;
    out.push(JSON.stringify({ channel: 'candle', data: { t, T: t + 59_999, s: c, i: '1m', o: fmt(b.o), c: fmt(p), h: fmt(b.h), l: fmt(b.l), v: b.v.toFixed(5), n: b.n } }));
    const users = ['0x000000000000000000000000000000000000dead', '0x000000000000000000000000000000000000beef'];
    out.push(JSON.stringify({ channel: 'trades', data: [{ coin: c, side: rnd() < 0.5 ? 'A' : 'B', px: fmt(p), sz: '0.05', hash: `0x${'ab'.repeat(32)}`, time: Date.now(), tid: ++tid, users }] }));
    if (block % 10 === 0) {
      const lv = (side: number) => Array.from({ length: 10 }, (_, i) => ({ px: fmt(p * (1 + side * (i + 1) * 0.0001)), sz: '1.5', n: 3 }));
      out.push(JSON.stringify({ channel: 'l2Book', data: { coin: c, time: Date.now(), levels: [lv(-1), lv(1)] } }));
    }
  }
  return out;
}

let queue: string[] = [];
function take(): string {
  if (queue.length === 0) queue = nextBlock();
  return queue.shift()!;
}

async function blast(rate: number, seconds: number): Promise<{ sent: number; ms: number; maxBufferedKb: number }> {
  const t0 = performance.now();
  let sent = 0;
  let maxBuffered = 0;
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (sent < due) {
      const frame = take();
      for (const ws of conns) ws.send(frame);
      sent++;
    }
    for (const ws of conns) maxBuffered = Math.max(maxBuffered, ws.bufferedAmount);
    await new Promise((r) => setImmediate(r));
  }
  return { sent, ms: performance.now() - t0, maxBufferedKb: maxBuffered / 1024 };
}

const server = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    const reply = (x: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(x));
    };
    if (req.url === '/_blast') {
      const { rate, seconds } = JSON.parse(body) as { rate: number; seconds: number };
      void blast(rate, seconds).then(reply);
      return;
    }
    const type = (() => {
      try {
        return (JSON.parse(body) as { type?: string }).type;
      } catch {
        return undefined;
      }
    })();
    reply(type === 'allMids' ? {} : []);
  });
});
const wss = new WebSocketServer({ server, path: '/ws' });
wss.on('connection', (ws) => {
  conns.add(ws);
  ws.on('close', () => conns.delete(ws));
  ws.send('Websocket connection established.');
  ws.on('message', (data) => {
    let m: { method?: string; subscription?: unknown };
    try {
      m = JSON.parse(String(data)) as typeof m;
    } catch {
      return;
    }
    if (m.method === 'ping') ws.send('{"channel":"pong"}');
    else if (m.method === 'subscribe' || m.method === 'unsubscribe') ws.send(JSON.stringify({ channel: 'subscriptionResponse', data: { method: m.method, subscription: m.subscription } }));
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`feed source: listening on http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
