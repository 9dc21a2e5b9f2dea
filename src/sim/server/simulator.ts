/**
 * The simulator process: one HTTP server on loopback serving Hyperliquid's `/info`, `/exchange`
 * and `/ws`, plus the `/_sim/*` control surface, over a market replay and the matching engine.
 *
 * Invariants:
 *  - Every response to `/info` and `/exchange` carries `Content-Type: application/json` (the SDK
 *    refuses anything else), except the real API's plain-text 422 and the faults that imitate a
 *    broken proxy.
 *  - The market advances in numbered blocks; block n's content depends only on (seed, n, speed
 *    history), so the same seed and the same stepped inputs give the same market and fills.
 *  - Nothing a client sends can crash the process: every input is parsed at the edge.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { z } from 'zod';
import { Exchange } from '../engine/index.ts';
import { MarketReplay, loadCandleSeries, bundledDataDir } from '../market/index.ts';
import { AgentRegistry, NonceTracker } from '../auth/index.ts';
import { dec } from '../../domain/decimal.ts';
import type { ExchangeEvent, MarketBlock } from '../types.ts';
import { ExchangeClock } from './clock.ts';
import { Faults, FaultSettingsSchema, FAULT_CLASSES } from './faults.ts';
import { AddressLimiter, IpWeightLimiter, exchangeWeight, infoBaseWeight, infoResultWeight, IP_WEIGHT_PER_MINUTE } from './rate-limits.ts';
import { handleInfo, DESERIALIZE_ERROR, type HandlerResult, type InfoContext } from './info.ts';
import { handleExchange, type ExchangeContext } from './exchange.ts';
import { WsHub } from './ws-hub.ts';

export interface SimulatorOptions {
  host?: string;
  port?: number;
  seed?: number;
  /** Market ms replayed per exchange ms (1 = real time). */
  speed?: number;
  /** Exchange ms per block. */
  blockMs?: number;
  /** Directory of candle files with a markets.json manifest; the bundled real data by default. */
  dataDir?: string;
  chain?: 'Mainnet' | 'Testnet';
  /** `manual`: time moves only through POST /_sim/clock {"step"} (deterministic runs). */
  clock?: 'wall' | 'manual';
  /** Start time of the exchange clock in manual mode (defaults to now). */
  startTime?: number;
  ipWeightPerMinute?: number;
  addressInitialBuffer?: number;
  /** Minimum interval between l2Book pushes per subscription (the venue: ≥ 500 ms). */
  bookIntervalMs?: number;
  /** History bars (1m) available before block 0. */
  historyBars?: number;
  log?: (line: string) => void;
  /**
   * Benchmark timestamps (default off; `KEEL_SIM_STAMPS=1` turns them on): when the first 1m candle
   * frame of each new bar was handed to the sockets, and when each order with a cloid reached
   * `/exchange`, both on this process's clock; read with `GET /_sim/stamps`. Bounded (last 100,000).
   */
  stamps?: boolean;
}

export interface Simulator {
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  readonly exchange: Exchange;
  readonly market: MarketReplay;
  readonly faults: Faults;
  readonly clock: ExchangeClock;
  readonly hub: WsHub;
  /** Advances a manual clock by `ms`, running the blocks that fall due. */
  step(ms: number): void;
  /** Funds (creates) an account. */
  fund(address: string, usdc: number | string): void;
  close(): Promise<void>;
}

const FundBody = z.object({ address: z.string().regex(/^0x[0-9a-fA-F]{40}$/), usdc: z.union([z.number().positive().finite(), z.string().regex(/^\d+(\.\d+)?$/)]) }).strict();
const ClockBody = z.union([
  z.object({ speed: z.number().positive().max(100_000) }).strict(),
  z.object({ step: z.number().int().positive().max(7 * 86_400_000) }).strict(),
  z.object({ mode: z.enum(['wall', 'manual']) }).strict(),
]);

const LOOPBACK = new Set(['127.0.0.1', '::1', '::ffff:127.0.0.1']);
const MAX_BODY = 1 << 20;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const seed = opts.seed ?? 1;
  const blockMs = opts.blockMs ?? 100;
  const clock = new ExchangeClock(opts.clock ?? 'wall', Date.now, opts.startTime);
  const now = () => clock.now();
  const series = loadCandleSeries(opts.dataDir ?? bundledDataDir());
  const market = new MarketReplay({ seed, series, blockMs, speed: opts.speed ?? 1, startTime: clock.now(), historyBars: opts.historyBars ?? 300 });
  const exchange = new Exchange({ assets: series.map((s) => ({ name: s.coin, szDecimals: s.szDecimals, maxLeverage: s.maxLeverage })), clock });
  const faults = new Faults(seed);
  const agents = new AgentRegistry();
  const nonces = new NonceTracker();
  const addressLimits = new AddressLimiter(opts.addressInitialBuffer);
  const ipLimits = new IpWeightLimiter(opts.ipWeightPerMinute ?? IP_WEIGHT_PER_MINUTE);
  const chain = opts.chain ?? 'Testnet';
  const log = opts.log ?? (() => {});

  exchange.setFaultHooks({
    reject: () => (faults.fires('reject') ? faults.rejection() : undefined),
    partialFill: () => (faults.fires('partialFill') ? 0.1 + 0.8 * faults.draw('partialFill') : undefined),
  });

  // Engine events are queued while an operation runs and published once it finishes, so a block
  // or an action reaches subscribers as one message per channel.
  let pending: ExchangeEvent[] = [];
  exchange.onEvent((e) => {
    pending.push(e);
    if (e.kind === 'fill') addressLimits.addVolume(e.user, Number(e.fill.px) * Number(e.fill.sz));
  });

  const infoCtx: InfoContext = { exchange, market, addressLimits, agents, now };
  const exCtx: ExchangeContext = { exchange, agents, nonces, addressLimits, chain, now };

  const hub = new WsHub({
    faults,
    now,
    handleInfo: (p) => handleInfo(infoCtx, p),
    handleAction: (p) => runAction(p),
    postFault: async () => {
      if (faults.fires('outage')) return 'outage';
      if (faults.fires('dropConnection')) return 'drop';
      if (faults.fires('latency')) await sleep(faults.settings.latencyMs);
      return faults.fires('lostResponse') ? 'lost' : 'ok';
    },
    snapshot: {
      allMids: () => exchange.allMids(),
      l2Book: (coin, n, m) => exchange.l2Book(coin, n, m),
      recentTrades: (coin) => exchange.recentTrades(coin),
      userFills: (user, agg) => exchange.userFills(user, agg),
      candle: (coin, interval) => market.currentCandle(coin, interval),
    },
    bookIntervalMs: opts.bookIntervalMs ?? 500,
  });

  function flush(): void {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    hub.publishEvents(batch);
  }

  function runAction(payload: unknown): HandlerResult {
    try {
      return handleExchange(exCtx, payload);
    } finally {
      flush();
    }
  }

  const STAMP_CAP = 100_000;
  const stampClock = () => performance.timeOrigin + performance.now();
  const stamps = (opts.stamps ?? process.env['KEEL_SIM_STAMPS'] === '1') ? { bars: [] as { coin: string; t: number; at: number }[], orders: [] as { cloid: string; asset: number; at: number }[], lastT: new Map<string, number>() } : undefined;
  const keep = <T>(xs: T[], x: T): void => {
    if (xs.length >= STAMP_CAP) xs.splice(0, xs.length - STAMP_CAP + 1);
    xs.push(x);
  };

  // ── the block loop ──────────────────────────────────────────────────────────────────────
  let nextBlock = 0;
  const t0 = clock.now();
  function runDueBlocks(): void {
    const due = Math.floor((clock.now() - t0) / blockMs);
    // Catch up at most a bounded number of blocks per call so a long step cannot starve I/O.
    while (nextBlock <= due) {
      const blocks: MarketBlock[] = market.next();
      nextBlock++;
      for (const b of blocks) exchange.applyBlock(b);
      flush();
      hub.housekeeping();
      hub.publishMarket(blocks.map((b) => b.coin));
      if (stamps) {
        const at = stampClock();
        for (const b of blocks) {
          const t = market.currentCandle(b.coin, '1m')?.t;
          if (t === undefined || stamps.lastT.get(b.coin) === t) continue;
          stamps.lastT.set(b.coin, t);
          keep(stamps.bars, { coin: b.coin, t, at });
        }
      }
    }
  }
  runDueBlocks();
  const timer = setInterval(() => {
    if (clock.mode === 'wall') {
      try {
        runDueBlocks();
      } catch (e) {
        log(`block loop error: ${(e as Error).stack ?? String(e)}`);
      }
    }
  }, blockMs);
  timer.unref();

  // ── HTTP ────────────────────────────────────────────────────────────────────────────────
  function send(res: http.ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
    if (res.headersSent || res.destroyed) return;
    const text = contentType === 'application/json' ? JSON.stringify(body) : String(body);
    res.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
  }

  function sendResult(res: http.ServerResponse, r: HandlerResult): void {
    if (r.kind === 'http') send(res, r.status, r.text, 'text/plain; charset=utf-8');
    else send(res, 200, r.body);
  }

  async function readBody(req: http.IncomingMessage): Promise<string | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return undefined;
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  async function handleVenue(req: http.IncomingMessage, res: http.ServerResponse, endpoint: 'info' | 'exchange'): Promise<void> {
    const ip = req.socket.remoteAddress ?? 'unknown';
    const arrivedAt = stamps ? stampClock() : 0;
    if (faults.fires('outage')) return send(res, 502, '<html><body><h1>502 Bad Gateway</h1></body></html>', 'text/html');
    if (faults.fires('http5xx')) {
      const codes = [500, 502, 503, 504];
      return send(res, codes[Math.floor(faults.draw('http5xx') * codes.length)]!, 'upstream error', 'text/plain');
    }
    if (faults.fires('rateLimit')) return send(res, 429, null);
    if (faults.fires('dropConnection')) {
      req.socket.destroy();
      return;
    }
    if (faults.fires('latency')) await sleep(faults.settings.latencyMs);
    const text = await readBody(req);
    if (text === undefined) return send(res, 413, 'Payload Too Large', 'text/plain');
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return send(res, 400, `Failed to parse the request body as JSON`, 'text/plain; charset=utf-8');
    }
    let result: HandlerResult;
    if (endpoint === 'info') {
      const type = typeof (body as { type?: unknown })?.type === 'string' ? (body as { type: string }).type : '';
      if (!ipLimits.take(ip, infoBaseWeight(type), now())) return send(res, 429, null);
      result = handleInfo(infoCtx, body);
      if (result.kind === 'json' && result.items) ipLimits.charge(ip, infoResultWeight(type, result.items), now());
    } else {
      const action = (body as { action?: { orders?: unknown[]; cancels?: unknown[]; modifies?: unknown[] } })?.action;
      const batch = action?.orders?.length ?? action?.cancels?.length ?? action?.modifies?.length ?? 1;
      if (!ipLimits.take(ip, exchangeWeight(batch), now())) return send(res, 429, null);
      if (stamps && Array.isArray(action?.orders)) for (const o of action.orders as { a?: unknown; c?: unknown }[]) if (typeof o?.c === 'string') keep(stamps.orders, { cloid: o.c, asset: Number(o.a), at: arrivedAt });
      result = runAction(body);
    }
    if (faults.fires('lostResponse')) {
      // The request executed; the answer never arrives.
      req.socket.destroy();
      return;
    }
    sendResult(res, result);
  }

  async function handleSim(req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<void> {
    if (!LOOPBACK.has(req.socket.remoteAddress ?? '')) return send(res, 403, { error: 'simulator control is loopback only' });
    const readJson = async (): Promise<{ ok: true; value: unknown } | { ok: false }> => {
      const t = await readBody(req);
      if (t === undefined) return { ok: false };
      try {
        return { ok: true, value: t.length === 0 ? {} : JSON.parse(t) };
      } catch {
        return { ok: false };
      }
    };
    if (req.method === 'GET' && path === '/_sim/state') {
      return send(res, 200, { ...exchange.groundTruth(), block: nextBlock - 1, marketTime: market.marketTime(Math.max(0, nextBlock - 1)), clock: { mode: clock.mode, now: clock.now() }, faults: faults.settings });
    }
    if (req.method === 'GET' && path === '/_sim/stamps') return stamps ? send(res, 200, { bars: stamps.bars, orders: stamps.orders }) : send(res, 404, { error: 'stamps are off (start the simulator with KEEL_SIM_STAMPS=1)' });
    if (path === '/_sim/faults') {
      if (req.method === 'GET') return send(res, 200, { classes: FAULT_CLASSES, settings: faults.settings });
      if (req.method === 'POST') {
        const j = await readJson();
        const p = j.ok ? FaultSettingsSchema.safeParse(j.value) : undefined;
        if (!p?.success) return send(res, 400, { error: `invalid faults body: ${p ? p.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ') : 'not JSON'}` });
        faults.set(p.data);
        log(`faults set ${JSON.stringify(p.data)}`);
        return send(res, 200, { settings: faults.settings });
      }
    }
    if (req.method === 'POST' && path === '/_sim/accounts') {
      const j = await readJson();
      const p = j.ok ? FundBody.safeParse(j.value) : undefined;
      if (!p?.success) return send(res, 400, { error: 'body must be {"address":"0x…40 hex","usdc":positive number}' });
      fund(p.data.address, p.data.usdc);
      return send(res, 200, { address: p.data.address.toLowerCase(), funded: String(p.data.usdc) });
    }
    if (req.method === 'POST' && path === '/_sim/clock') {
      const j = await readJson();
      const p = j.ok ? ClockBody.safeParse(j.value) : undefined;
      if (!p?.success) return send(res, 400, { error: 'body must be {"speed":x}, {"step":ms} or {"mode":"wall"|"manual"}' });
      const b = p.data;
      if ('speed' in b) market.setSpeed(b.speed);
      else if ('step' in b) step(b.step);
      else if (b.mode === 'wall') clock.resume();
      else clock.step(0);
      return send(res, 200, { mode: clock.mode, now: clock.now(), block: nextBlock - 1, speed: market.speed });
    }
    return send(res, 404, { error: `no such simulator endpoint: ${req.method} ${path}` });
  }

  function step(ms: number): void {
    clock.step(ms);
    runDueBlocks();
  }

  function fund(address: string, usdc: number | string): void {
    exchange.fund(address.toLowerCase(), dec(usdc));
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const run = async () => {
      if (req.method === 'POST' && (path === '/info' || path === '/exchange')) return handleVenue(req, res, path === '/info' ? 'info' : 'exchange');
      if (path.startsWith('/_sim/')) return handleSim(req, res, path);
      if (path === '/info' || path === '/exchange') return send(res, 405, 'Method Not Allowed', 'text/plain');
      return send(res, 404, 'Not Found', 'text/plain');
    };
    run().catch((e: unknown) => {
      log(`request error: ${(e as Error).stack ?? String(e)}`);
      send(res, 500, { status: 'err', response: 'Internal error' });
    });
  });
  server.keepAliveTimeout = 65_000;

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_BODY });
  server.on('upgrade', (req, socket, head) => {
    const path = (req.url ?? '/').split('?')[0];
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (path !== '/ws' || !hub.accepts(ip)) {
      socket.write(path !== '/ws' ? 'HTTP/1.1 404 Not Found\r\n\r\n' : 'HTTP/1.1 503 Service Unavailable\r\n\r\n');
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => hub.attach(ws, ip));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const host = opts.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url,
    wsUrl: `${url.replace(/^http/, 'ws')}/ws`,
    port,
    exchange,
    market,
    faults,
    clock,
    hub,
    step,
    fund,
    close: async () => {
      clearInterval(timer);
      hub.closeAll();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export { DESERIALIZE_ERROR };
