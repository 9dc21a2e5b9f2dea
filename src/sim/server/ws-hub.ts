/**
 * WebSocket /ws: Hyperliquid's protocol (hyperliquid-api.md §5). Greeting text on connect,
 * ping → pong, subscribe / unsubscribe acknowledged with the subscription echoed verbatim (the
 * SDK matches acks by echo), `post` requests answered on channel `post`, and channel messages
 * fanned out from engine events and market blocks.
 *
 * Faults on the feed (per connection, seeded): disconnects, silent stalls (nothing sent, not even
 * pongs), stale / duplicated / reordered market-data messages and bad ticks. User channels
 * (orderUpdates, userFills, user) are never corrupted: they carry the truth about orders, and the
 * real exchange's failure mode for them is loss of the connection, not lies.
 */
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { ExchangeEvent } from '../types.ts';
import type { Faults } from './faults.ts';
import type { HandlerResult } from './info.ts';
import type { CandleInterval } from '../market/index.ts';

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/);
const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;

/** The subscriptions served; extra keys the client sent are kept for the echo. */
const Subscription = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('allMids'), dex: z.string().nullish() }),
  z.looseObject({ type: z.literal('l2Book'), coin: z.string(), nSigFigs: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(5)]).nullish(), mantissa: z.union([z.literal(1), z.literal(2), z.literal(5)]).nullish() }),
  z.looseObject({ type: z.literal('trades'), coin: z.string() }),
  z.looseObject({ type: z.literal('candle'), coin: z.string(), interval: z.enum(INTERVALS) }),
  z.looseObject({ type: z.literal('orderUpdates'), user: address }),
  z.looseObject({ type: z.literal('userFills'), user: address, aggregateByTime: z.boolean().nullish() }),
  z.looseObject({ type: z.literal('userEvents'), user: address }),
]);
type Subscription = z.infer<typeof Subscription>;

const ClientMessage = z.discriminatedUnion('method', [
  z.object({ method: z.literal('ping') }),
  z.object({ method: z.literal('subscribe'), subscription: z.record(z.string(), z.unknown()) }),
  z.object({ method: z.literal('unsubscribe'), subscription: z.record(z.string(), z.unknown()) }),
  z.object({ method: z.literal('post'), id: z.number().int().nonnegative(), request: z.object({ type: z.enum(['info', 'action']), payload: z.unknown() }) }),
]);

export const MAX_SUBSCRIPTIONS = 1000;
export const MAX_USERS_PER_CONNECTION = 10;
export const MAX_INFLIGHT_POSTS = 100;
export const MAX_CONNECTIONS_PER_IP = 10;
export const IDLE_TIMEOUT_MS = 60_000;

/** What the hub needs from the rest of the simulator. */
export interface WsHubDeps {
  readonly faults: Faults;
  readonly now: () => number;
  readonly handleInfo: (payload: unknown) => HandlerResult;
  readonly handleAction: (payload: unknown) => HandlerResult;
  /** Fault-aware execution of a post (latency / drop / lost response), resolved by the server. */
  readonly postFault: () => Promise<'ok' | 'drop' | 'lost' | 'outage'>;
  readonly snapshot: {
    allMids(): Record<string, string>;
    l2Book(coin: string, nSigFigs?: number, mantissa?: number): { coin: string; time: number; levels: unknown[] } | null;
    recentTrades(coin: string): unknown[];
    userFills(user: string, aggregateByTime: boolean): unknown[];
    candle(coin: string, interval: CandleInterval): unknown | undefined;
  };
  readonly bookIntervalMs: number;
}

interface Conn {
  readonly ws: WebSocket;
  readonly ip: string;
  /** Canonical key → the subscription as the client sent it. */
  readonly subs: Map<string, { sub: Subscription; raw: Record<string, unknown> }>;
  stalledUntil: number;
  lastHeard: number;
  inflight: number;
  /** Last market-data frame per channel key, for the stale-feed fault. */
  readonly lastFrame: Map<string, string>;
  /** A held frame for the reorder fault. */
  held: string | undefined;
  readonly lastBook: Map<string, number>;
}

function canonical(sub: Record<string, unknown>): string {
  const norm: Record<string, unknown> = {};
  for (const k of Object.keys(sub).sort()) {
    const v = sub[k];
    if (v === null || v === undefined || v === false) continue; // null/absent/false options mean the same subscription
    norm[k] = typeof v === 'string' && /^0x[0-9a-fA-F]+$/.test(v) ? v.toLowerCase() : v;
  }
  return JSON.stringify(norm);
}

export class WsHub {
  readonly #deps: WsHubDeps;
  readonly #conns = new Set<Conn>();
  #refuse = false;

  constructor(deps: WsHubDeps) {
    this.#deps = deps;
  }

  get connectionCount(): number {
    return this.#conns.size;
  }

  /** Whether a new connection from `ip` may open (per-IP cap, outage). */
  accepts(ip: string): boolean {
    if (this.#refuse || this.#deps.faults.rate('outage') >= 1) return false;
    let n = 0;
    for (const c of this.#conns) if (c.ip === ip) n++;
    return n < MAX_CONNECTIONS_PER_IP;
  }

  attach(ws: WebSocket, ip: string): void {
    const conn: Conn = { ws, ip, subs: new Map(), stalledUntil: 0, lastHeard: performance.now(), inflight: 0, lastFrame: new Map(), held: undefined, lastBook: new Map() };
    this.#conns.add(conn);
    ws.on('close', () => this.#conns.delete(conn));
    ws.on('error', () => this.#conns.delete(conn));
    ws.on('message', (data, isBinary) => {
      conn.lastHeard = performance.now();
      if (isBinary) return;
      void this.#onMessage(conn, data.toString());
    });
    ws.send('Websocket connection established.');
  }

  closeAll(): void {
    this.#refuse = true;
    for (const c of this.#conns) c.ws.terminate();
    this.#conns.clear();
  }

  #send(conn: Conn, frame: string): void {
    if (conn.stalledUntil > this.#deps.now()) return;
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(frame);
  }

  #error(conn: Conn, text: string): void {
    this.#send(conn, JSON.stringify({ channel: 'error', data: text }));
  }

  async #onMessage(conn: Conn, text: string): Promise<void> {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.#error(conn, `Error parsing JSON into valid websocket request: ${text.slice(0, 200)}`);
      return;
    }
    const msg = ClientMessage.safeParse(json);
    if (!msg.success) {
      this.#error(conn, `Error parsing JSON into valid websocket request: ${text.slice(0, 200)}`);
      return;
    }
    const m = msg.data;
    switch (m.method) {
      case 'ping':
        this.#send(conn, '{"channel":"pong"}');
        return;
      case 'subscribe':
        this.#subscribe(conn, m.subscription);
        return;
      case 'unsubscribe':
        this.#unsubscribe(conn, m.subscription);
        return;
      case 'post':
        await this.#post(conn, m.id, m.request.type, m.request.payload);
        return;
    }
  }

  #subscribe(conn: Conn, raw: Record<string, unknown>): void {
    const parsed = Subscription.safeParse(raw);
    if (!parsed.success) {
      this.#error(conn, `Invalid subscription ${JSON.stringify(raw)}`);
      return;
    }
    const key = canonical(raw);
    if (conn.subs.has(key)) {
      this.#error(conn, `Already subscribed: ${JSON.stringify(raw)}`);
      return;
    }
    if (conn.subs.size >= MAX_SUBSCRIPTIONS) {
      this.#error(conn, `Cannot track more than ${MAX_SUBSCRIPTIONS} total subscriptions`);
      return;
    }
    const sub = parsed.data;
    if ('user' in sub) {
      const users = new Set<string>();
      for (const s of conn.subs.values()) if ('user' in s.sub) users.add(String(s.sub.user).toLowerCase());
      users.add(String(sub.user).toLowerCase());
      if (users.size > MAX_USERS_PER_CONNECTION) {
        this.#error(conn, `Cannot track more than ${MAX_USERS_PER_CONNECTION} total users`);
        return;
      }
    }
    conn.subs.set(key, { sub, raw });
    this.#send(conn, JSON.stringify({ channel: 'subscriptionResponse', data: { method: 'subscribe', subscription: raw } }));
    this.#sendInitial(conn, sub);
  }

  #unsubscribe(conn: Conn, raw: Record<string, unknown>): void {
    const key = canonical(raw);
    if (!conn.subs.delete(key)) {
      this.#error(conn, `Already unsubscribed: ${JSON.stringify(raw)}`);
      return;
    }
    this.#send(conn, JSON.stringify({ channel: 'subscriptionResponse', data: { method: 'unsubscribe', subscription: raw } }));
  }

  /** What the real server sends right after the ack. */
  #sendInitial(conn: Conn, sub: Subscription): void {
    const s = this.#deps.snapshot;
    switch (sub.type) {
      case 'allMids':
        if (!sub.dex) this.#send(conn, JSON.stringify({ channel: 'allMids', data: { mids: s.allMids() } }));
        return;
      case 'l2Book': {
        const book = s.l2Book(sub.coin, sub.nSigFigs ?? undefined, sub.mantissa ?? undefined);
        if (book) this.#send(conn, JSON.stringify({ channel: 'l2Book', data: book }));
        return;
      }
      case 'trades': {
        const trades = s.recentTrades(sub.coin);
        if (trades.length > 0) this.#send(conn, JSON.stringify({ channel: 'trades', data: trades }));
        return;
      }
      case 'candle': {
        const c = s.candle(sub.coin, sub.interval);
        if (c) this.#send(conn, JSON.stringify({ channel: 'candle', data: c }));
        return;
      }
      case 'userFills':
        this.#send(conn, JSON.stringify({ channel: 'userFills', data: { isSnapshot: true, user: sub.user.toLowerCase(), fills: s.userFills(sub.user.toLowerCase(), sub.aggregateByTime ?? false) } }));
        return;
      case 'orderUpdates':
      case 'userEvents':
        return;
    }
  }

  async #post(conn: Conn, id: number, type: 'info' | 'action', payload: unknown): Promise<void> {
    if (conn.inflight >= MAX_INFLIGHT_POSTS) {
      this.#error(conn, `too many pending post requests id=${id}`);
      return;
    }
    conn.inflight++;
    try {
      const fault = await this.#deps.postFault();
      if (fault === 'drop' || fault === 'outage') {
        conn.ws.terminate();
        return;
      }
      const result = type === 'info' ? this.#deps.handleInfo(payload) : this.#deps.handleAction(payload);
      if (fault === 'lost') return;
      let response: unknown;
      if (result.kind === 'http') response = { type: 'error', payload: result.text };
      else if (type === 'info') response = { type: 'info', payload: { type: (payload as { type?: unknown }).type, data: result.body } };
      else response = { type: 'action', payload: result.body };
      this.#send(conn, JSON.stringify({ channel: 'post', data: { id, response } }));
    } finally {
      conn.inflight--;
    }
  }

  // ── fan-out ─────────────────────────────────────────────────────────────────────────────

  /** Per-block connection faults and idle timeouts; call once per block. */
  housekeeping(): void {
    const f = this.#deps.faults;
    const now = this.#deps.now();
    // Idleness is about the connection, so it is judged on the wall clock even when the exchange
    // clock is stepped manually (a long step must not look like a silent client).
    const wall = performance.now();
    for (const c of [...this.#conns]) {
      if (wall - c.lastHeard > IDLE_TIMEOUT_MS || f.fires('wsDisconnect') || (f.rate('outage') > 0 && f.fires('outage'))) {
        c.ws.terminate();
        this.#conns.delete(c);
        continue;
      }
      if (c.stalledUntil <= now && f.fires('wsStall')) c.stalledUntil = now + f.settings.stallMs;
    }
  }

  /** Market data frame with feed faults applied. `key` names the stream (channel + coin). */
  #sendMarket(conn: Conn, key: string, frame: string, corrupt: () => string): void {
    const f = this.#deps.faults;
    let out = frame;
    if (f.fires('badTick')) out = corrupt();
    if (f.fires('staleFeed')) {
      const prev = conn.lastFrame.get(key);
      if (prev !== undefined) out = prev;
    } else {
      conn.lastFrame.set(key, frame);
    }
    if (conn.held !== undefined) {
      this.#send(conn, out);
      this.#send(conn, conn.held);
      conn.held = undefined;
      return;
    }
    if (f.fires('reorderFeed')) {
      conn.held = out;
      return;
    }
    this.#send(conn, out);
    if (f.fires('duplicateFeed')) this.#send(conn, out);
  }

  /** Publishes one block's market data (mids, books, candles) to subscribers. */
  publishMarket(coins: readonly string[]): void {
    if (this.#conns.size === 0) return;
    const s = this.#deps.snapshot;
    const now = this.#deps.now();
    let midsFrame: string | undefined;
    let mids: Record<string, string> | undefined;
    const bookCache = new Map<string, { coin: string; time: number; levels: unknown[] } | null>();
    const candleCache = new Map<string, unknown>();
    for (const c of this.#conns) {
      for (const { sub } of c.subs.values()) {
        switch (sub.type) {
          case 'allMids': {
            if (sub.dex) break;
            mids ??= s.allMids();
            midsFrame ??= JSON.stringify({ channel: 'allMids', data: { mids } });
            const m = mids;
            this.#sendMarket(c, 'allMids', midsFrame, () => JSON.stringify({ channel: 'allMids', data: { mids: this.#badMids(m) } }));
            break;
          }
          case 'l2Book': {
            if (!coins.includes(sub.coin)) break;
            const bkey = `${sub.coin}|${sub.nSigFigs ?? ''}|${sub.mantissa ?? ''}`;
            const last = c.lastBook.get(bkey) ?? -Infinity;
            if (now - last < this.#deps.bookIntervalMs) break;
            c.lastBook.set(bkey, now);
            let book = bookCache.get(bkey);
            if (book === undefined) {
              book = s.l2Book(sub.coin, sub.nSigFigs ?? undefined, sub.mantissa ?? undefined);
              bookCache.set(bkey, book);
            }
            if (book === null) break;
            const b = book;
            this.#sendMarket(c, `l2Book|${bkey}`, JSON.stringify({ channel: 'l2Book', data: b }), () => JSON.stringify({ channel: 'l2Book', data: this.#badBook(b) }));
            break;
          }
          case 'candle': {
            if (!coins.includes(sub.coin)) break;
            const ckey = `${sub.coin}|${sub.interval}`;
            let candle = candleCache.get(ckey);
            if (candle === undefined) {
              candle = s.candle(sub.coin, sub.interval) ?? null;
              candleCache.set(ckey, candle);
            }
            if (candle === null) break;
            const cd = candle as Record<string, unknown>;
            this.#sendMarket(c, `candle|${ckey}`, JSON.stringify({ channel: 'candle', data: cd }), () => JSON.stringify({ channel: 'candle', data: this.#badCandle(cd) }));
            break;
          }
          default:
            break;
        }
      }
    }
  }

  /** Routes engine events to user and trade subscribers. */
  publishEvents(events: readonly ExchangeEvent[]): void {
    if (this.#conns.size === 0 || events.length === 0) return;
    // Group per user so one block's updates arrive as one message per channel, as on the venue.
    const orderUpdates = new Map<string, unknown[]>();
    const fills = new Map<string, unknown[]>();
    const userEvents: { user: string; data: unknown }[] = [];
    const trades = new Map<string, unknown[]>();
    for (const e of events) {
      switch (e.kind) {
        case 'orderUpdate':
          pushTo(orderUpdates, e.user, e.update);
          break;
        case 'fill':
          pushTo(fills, e.user, e.fill);
          break;
        case 'funding':
          userEvents.push({ user: e.user, data: { funding: e.funding } });
          break;
        case 'liquidation':
          userEvents.push({ user: e.user, data: { liquidation: e.liquidation } });
          break;
        case 'nonUserCancel':
          userEvents.push({ user: e.user, data: { nonUserCancel: e.cancels } });
          break;
        case 'trades':
          for (const t of e.trades) pushTo(trades, e.coin, t);
          break;
        default:
          break;
      }
    }
    for (const c of this.#conns) {
      for (const { sub } of c.subs.values()) {
        switch (sub.type) {
          case 'orderUpdates': {
            const u = orderUpdates.get(sub.user.toLowerCase());
            if (u) this.#send(c, JSON.stringify({ channel: 'orderUpdates', data: u }));
            break;
          }
          case 'userFills': {
            const u = fills.get(sub.user.toLowerCase());
            if (u) this.#send(c, JSON.stringify({ channel: 'userFills', data: { user: sub.user.toLowerCase(), fills: u } }));
            break;
          }
          case 'userEvents': {
            const user = sub.user.toLowerCase();
            const u = fills.get(user);
            if (u) this.#send(c, JSON.stringify({ channel: 'user', data: { fills: u } }));
            for (const ev of userEvents) if (ev.user === user) this.#send(c, JSON.stringify({ channel: 'user', data: ev.data }));
            break;
          }
          case 'trades': {
            const t = trades.get(sub.coin);
            if (t) {
              const frame = JSON.stringify({ channel: 'trades', data: t });
              this.#sendMarket(c, `trades|${sub.coin}`, frame, () => JSON.stringify({ channel: 'trades', data: this.#badTrades(t) }));
            }
            break;
          }
          default:
            break;
        }
      }
    }
  }

  // Bad ticks: a price far off the market (×0.5 or ×1.5 … ×2), in this one message only.
  #badFactor(): number {
    const d = this.#deps.faults.draw('badTick');
    return d < 0.5 ? 0.5 - d * 0.4 : 1.5 + (d - 0.5);
  }
  #scale(px: string, k: number): string {
    const v = Number(px) * k;
    return String(Number(v.toPrecision(5)));
  }
  #badMids(m: Record<string, string>): Record<string, string> {
    const k = this.#badFactor();
    const out: Record<string, string> = {};
    const keys = Object.keys(m);
    const victim = keys[Math.floor(this.#deps.faults.draw('badTick') * keys.length)];
    for (const key of keys) out[key] = key === victim ? this.#scale(m[key]!, k) : m[key]!;
    return out;
  }
  #badBook(b: { coin: string; time: number; levels: unknown[] }): unknown {
    const k = this.#badFactor();
    const levels = (b.levels as { px: string; sz: string; n: number }[][]).map((side) => side.map((l) => ({ ...l, px: this.#scale(l.px, k) })));
    return { ...b, levels };
  }
  #badCandle(c: Record<string, unknown>): unknown {
    const k = this.#badFactor();
    return { ...c, c: this.#scale(String(c['c']), k), h: k > 1 ? this.#scale(String(c['c']), k) : c['h'], l: k < 1 ? this.#scale(String(c['c']), k) : c['l'] };
  }
  #badTrades(t: unknown[]): unknown[] {
    const k = this.#badFactor();
    return (t as { px: string }[]).map((x, i) => (i === 0 ? { ...x, px: this.#scale(x.px, k) } : x));
  }
}

function pushTo<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}
