/**
 * The Hyperliquid adapter: `VenuePort` over the real SDK (@nktkas/hyperliquid 0.33.3) —
 * HttpTransport for info and exchange, a lazily opened WebSocketTransport for subscriptions.
 *
 * Invariants:
 *  - SDK types never leave this module; every response and message is parsed by
 *    hyperliquid-schemas.ts into domain types, and garbage becomes `VenueError('invalid_response')`
 *    (queries), `unknown` (actions: the venue may have acted) or a dropped, counted message
 *    (subscriptions) — never a throw into the SDK's event dispatch.
 *  - Actions never throw. A venue refusal is a value (`rejected` / `not_found` / `ok:false`); a
 *    timeout, lost answer, 5xx, 429, abort or dropped connection is `unknown`, because the order may
 *    exist. Nothing here ever retries an order: resolution is the caller's, by `orderStatus(cloid)`.
 *  - Every action carries the caller's `expiresAfter`, so an unknown action has a deadline after
 *    which "unknownOid" proves it never happened.
 *  - Subscriptions survive reconnects (the SDK resubscribes); one the venue refuses after a
 *    reconnect is re-established here after a delay rather than silently lost.
 */
import { ApiRequestError, ExchangeClient, HttpRequestError, HttpTransport, InfoClient, SubscriptionClient, ValidationError, WebSocketTransport } from '@nktkas/hyperliquid';
import type { Wallet } from 'ethers';
import type { z } from 'zod';
import { toWire, type Decimal } from '../domain/decimal.ts';
import type { AccountState, Candle, CancelResult, Cloid, Coin, Fill, Instrument, OrderIntent, PlaceResult, VenueOrder, VenueOrderStatus } from '../domain/types.ts';
import { VenueError, type ActOptions, type MarketHandlers, type Subscription, type UserHandlers, type VenuePort } from './port.ts';
import {
  AllMidsSchema,
  CancelResponseSchema,
  CandleSnapshotSchema,
  CandleWireSchema,
  ClearinghouseStateSchema,
  DefaultResponseSchema,
  FillsSchema,
  FrontendOpenOrdersSchema,
  MetaSchema,
  OrderResponseSchema,
  OrderStatusSchema,
  WsAllMidsSchema,
  WsBookSchema,
  WsOrderUpdatesSchema,
  WsTradesSchema,
  WsUserFillsSchema,
  describeIssues,
  intervalSchema,
  toAccountState,
  toCandle,
  toFill,
  toInstruments,
  toMids,
  toVenueOrder,
  toVenueOrderStatus,
  venueErrorOf,
} from './hyperliquid-schemas.ts';

/** The pino-compatible subset the adapter logs through. */
export interface VenueLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface HyperliquidVenueOptions {
  readonly network: 'paper' | 'testnet' | 'mainnet';
  /** HTTP base URL; the WebSocket is `<apiUrl>/ws` with http→ws. */
  readonly apiUrl: string;
  /** The AGENT key: it signs, the master account is who it acts for. */
  readonly wallet: Wallet;
  /** Master account address. */
  readonly account: string;
  /** Per-request timeout (HTTP and WebSocket requests), default 10 s. */
  readonly timeoutMs?: number;
  readonly log?: VenueLogger;
  /** Clock for the `closed` flag of candle snapshots (default Date.now). */
  readonly now?: () => number;
  readonly ws?: {
    /** Delay before reconnect attempt n (0-based); default min(2ⁿ·200 ms, 5 s). */
    readonly reconnectDelayMs?: (attempt: number) => number;
    readonly connectionTimeoutMs?: number;
    readonly keepAliveIntervalMs?: number;
    readonly keepAliveTimeoutMs?: number;
    /** Delay before re-establishing a subscription the venue refused after a reconnect (default 1 s). */
    readonly resubscribeDelayMs?: number;
  };
}

/** The adapter's surface: the port plus observability of what it dropped. */
export interface HyperliquidVenue extends VenuePort {
  /** Messages dropped as malformed, per channel. */
  droppedMessages(): Readonly<Record<string, number>>;
  /** Current WebSocket state; `idle` before anything asked for the socket. */
  connectionState(): 'idle' | 'up' | 'down';
}

const FILLS_PAGE = 2000;
const MAX_FILL_PAGES = 50;
const NOOP_LOG: VenueLogger = { debug() {}, info() {}, warn() {}, error() {} };

type Failure =
  | { readonly kind: 'venue'; readonly scope: 'order' | 'top'; readonly error: string }
  | { readonly kind: 'not_sent'; readonly error: string }
  | { readonly kind: 'refused'; readonly status: number; readonly error: string }
  | { readonly kind: 'rate_limited'; readonly error: string }
  | { readonly kind: 'transport'; readonly error: string };

/** What an SDK error tells us about whether the venue acted. */
function classify(e: unknown): Failure {
  if (e instanceof ApiRequestError) {
    const v = venueErrorOf(e.response);
    return v ? { kind: 'venue', ...v } : { kind: 'venue', scope: 'top', error: e.message };
  }
  // Raised before anything was sent: the SDK refused the parameters or the wallet failed to sign.
  if (e instanceof ValidationError) return { kind: 'not_sent', error: e.message };
  if (e instanceof Error && e.name === 'AbstractWalletError') return { kind: 'not_sent', error: e.message };
  if (e instanceof HttpRequestError) {
    const status = e.response?.status;
    if (status === 429) return { kind: 'rate_limited', error: e.message };
    // 400 / 422: the venue could not read the body, so it did not act on it.
    if (status === 400 || status === 422) return { kind: 'refused', status, error: e.message };
    return { kind: 'transport', error: e.message };
  }
  return { kind: 'transport', error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

function wsUrlOf(apiUrl: string): string {
  return `${apiUrl.replace(/\/+$/, '').replace(/^http/i, 'ws')}/ws`;
}

/**
 * Builds the adapter. Nothing connects until used: HTTP per request, the WebSocket on the first
 * subscription or connection-state listener.
 *
 * @example
 * const venue = createHyperliquidVenue({ network: 'paper', apiUrl: sim.url, wallet: agent, account: master.address });
 * const r = await venue.place(intent, { expiresAfter: now + 5_000 });
 * if (r.kind === 'unknown') await venue.orderStatus(intent.cloid); // never resubmit
 */
export function createHyperliquidVenue(opts: HyperliquidVenueOptions): HyperliquidVenue {
  return new HyperliquidVenueImpl(opts);
}

interface WsParts {
  readonly transport: WebSocketTransport;
  readonly subs: SubscriptionClient;
}

class HyperliquidVenueImpl implements HyperliquidVenue {
  readonly network: 'paper' | 'testnet' | 'mainnet';
  readonly url: string;
  readonly account: string;
  readonly #opts: HyperliquidVenueOptions;
  readonly #log: VenueLogger;
  readonly #now: () => number;
  readonly #http: HttpTransport;
  readonly #info: InfoClient;
  readonly #exchange: ExchangeClient;
  #ws: WsParts | undefined;
  #conn: 'idle' | 'up' | 'down' = 'idle';
  readonly #connListeners = new Set<(s: 'up' | 'down') => void>();
  readonly #dropped = new Map<string, number>();
  #instruments: Promise<Instrument[]> | undefined;
  #closed = false;

  constructor(opts: HyperliquidVenueOptions) {
    this.#opts = opts;
    this.network = opts.network;
    this.url = opts.apiUrl.replace(/\/+$/, '');
    this.account = opts.account.toLowerCase();
    this.#log = opts.log ?? NOOP_LOG;
    this.#now = opts.now ?? Date.now;
    // Paper trades against the local simulator, which verifies testnet signatures: a local
    // signature is then never valid on mainnet.
    this.#http = new HttpTransport({ apiUrl: this.url, isTestnet: opts.network !== 'mainnet', timeout: opts.timeoutMs ?? 10_000 });
    this.#info = new InfoClient({ transport: this.#http });
    this.#exchange = new ExchangeClient({ transport: this.#http, wallet: opts.wallet });
  }

  // ── queries ─────────────────────────────────────────────────────────────────────────────

  async #query<S extends z.ZodType, T>(what: string, call: () => Promise<unknown>, schema: S, map: (v: z.output<S>) => T): Promise<T> {
    let raw: unknown;
    try {
      raw = await call();
    } catch (e) {
      const f = classify(e);
      if (f.kind === 'rate_limited') throw new VenueError('rate_limited', `${what}: rate limited (${f.error})`, e);
      if (f.kind === 'transport') throw new VenueError('transport', `${what}: ${f.error}`, e);
      throw new VenueError('rejected', `${what}: ${f.error}`, e);
    }
    const p = schema.safeParse(raw);
    if (!p.success) {
      this.#log.warn({ what, issues: describeIssues(p.error) }, 'venue: invalid response');
      throw new VenueError('invalid_response', `${what}: ${describeIssues(p.error)}`, raw);
    }
    return map(p.data);
  }

  instruments(): Promise<Instrument[]> {
    const p = this.#query('meta', () => this.#info.meta(), MetaSchema, toInstruments);
    // Cache for asset-id lookups; a failed load is forgotten so the next call retries.
    this.#instruments = p;
    p.catch(() => {
      if (this.#instruments === p) this.#instruments = undefined;
    });
    return p;
  }

  async #assetId(coin: Coin): Promise<number | undefined> {
    const list = await (this.#instruments ?? this.instruments());
    return list.find((i) => i.coin === coin)?.assetId;
  }

  mids(): Promise<Map<Coin, Decimal>> {
    return this.#query('allMids', () => this.#info.allMids(), AllMidsSchema, (raw) => {
      const m = toMids(raw);
      if (m instanceof Map) return m;
      throw new VenueError('invalid_response', `allMids: ${m.error}`, raw);
    });
  }

  async candles(coin: Coin, interval: string, startTime: number, endTime?: number): Promise<Candle[]> {
    const iv = intervalSchema.safeParse(interval);
    if (!iv.success) throw new VenueError('rejected', `candles: unknown interval ${JSON.stringify(interval)}`);
    const now = this.#now();
    return this.#query(
      'candleSnapshot',
      () => this.#info.candleSnapshot({ coin, interval: iv.data, startTime, ...(endTime !== undefined ? { endTime } : {}) }),
      CandleSnapshotSchema,
      (rows) => {
        const sorted = [...rows].sort((a, b) => a.t - b.t);
        for (const r of sorted) {
          if (r.s !== coin || r.i !== interval) throw new VenueError('invalid_response', `candleSnapshot: got ${r.s}/${r.i} for ${coin}/${interval}`, r);
        }
        const latestT = sorted.length > 0 ? sorted[sorted.length - 1]!.t : -Infinity;
        // A bar is closed once a newer one exists or its close time is past; the last bar of a
        // snapshot is normally the one in progress.
        return sorted.map((r) => toCandle(r, r.T < latestT || r.T < now));
      },
    );
  }

  accountState(): Promise<AccountState> {
    return this.#query('clearinghouseState', () => this.#info.clearinghouseState({ user: this.account }), ClearinghouseStateSchema, toAccountState);
  }

  openOrders(): Promise<VenueOrder[]> {
    return this.#query('frontendOpenOrders', () => this.#info.frontendOpenOrders({ user: this.account }), FrontendOpenOrdersSchema, (os) => os.map(toVenueOrder));
  }

  orderStatus(cloid: Cloid): Promise<VenueOrderStatus> {
    return this.#query('orderStatus', () => this.#info.orderStatus({ user: this.account, oid: cloid as `0x${string}` }), OrderStatusSchema, toVenueOrderStatus);
  }

  async fills(startTime: number): Promise<Fill[]> {
    const byTid = new Map<number, Fill>();
    let start = startTime;
    for (let page = 0; page < MAX_FILL_PAGES; page++) {
      const batch = await this.#query('userFillsByTime', () => this.#info.userFillsByTime({ user: this.account, startTime: start }), FillsSchema, (fs) => fs.map(toFill));
      for (const f of batch) byTid.set(f.tid, f);
      if (batch.length < FILLS_PAGE) break;
      // A full page: continue from its newest time (fills at that ms repeat and dedupe by tid).
      const newest = Math.max(...batch.map((f) => f.time));
      start = newest > start ? newest : start + 1;
    }
    return [...byTid.values()].sort((a, b) => a.time - b.time || a.tid - b.tid);
  }

  // ── actions ─────────────────────────────────────────────────────────────────────────────

  async place(intent: OrderIntent, opts: ActOptions): Promise<PlaceResult> {
    const t = intent.trigger
      ? { trigger: { isMarket: intent.trigger.isMarket, triggerPx: toWire(intent.trigger.triggerPx), tpsl: intent.trigger.tpsl } }
      : { limit: { tif: intent.tif } };
    const order = { a: intent.assetId, b: intent.side === 'buy', p: toWire(intent.px), s: toWire(intent.sz), r: intent.reduceOnly, t, c: intent.cloid as `0x${string}` };
    let raw: unknown;
    try {
      raw = await this.#exchange.order({ orders: [order], grouping: 'na' }, { expiresAfter: opts.expiresAfter, ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (e) {
      const f = classify(e);
      switch (f.kind) {
        case 'venue':
        case 'not_sent':
        case 'refused':
          this.#log.info({ cloid: intent.cloid, error: f.error }, 'venue: order rejected');
          return { kind: 'rejected', error: f.error };
        default:
          this.#log.warn({ cloid: intent.cloid, cause: f.error }, 'venue: order outcome unknown');
          return { kind: 'unknown', cause: `${f.kind}: ${f.error}` };
      }
    }
    const p = OrderResponseSchema.safeParse(raw);
    if (!p.success) {
      // The venue answered "ok" with something we cannot read: it may well have placed the order.
      this.#log.error({ cloid: intent.cloid, issues: describeIssues(p.error) }, 'venue: unreadable order response');
      return { kind: 'unknown', cause: `invalid_response: ${describeIssues(p.error)}` };
    }
    const st = p.data.response.data.statuses[0]!;
    if (st.kind === 'resting') return { kind: 'resting', oid: st.oid };
    if (st.kind === 'filled') return { kind: 'filled', oid: st.oid, totalSz: st.totalSz, avgPx: st.avgPx };
    if (st.kind === 'waiting') return { kind: 'waiting' };
    return { kind: 'rejected', error: st.error };
  }

  async cancel(coin: Coin, cloid: Cloid, opts: ActOptions): Promise<CancelResult> {
    let asset: number | undefined;
    try {
      asset = await this.#assetId(coin);
    } catch (e) {
      return { kind: 'unknown', cause: `asset lookup failed: ${(e as Error).message}` };
    }
    if (asset === undefined) return { kind: 'not_found', error: `unknown coin ${coin}` };
    let raw: unknown;
    try {
      raw = await this.#exchange.cancelByCloid({ cancels: [{ asset, cloid: cloid as `0x${string}` }] }, { expiresAfter: opts.expiresAfter, ...(opts.signal ? { signal: opts.signal } : {}) });
    } catch (e) {
      const f = classify(e);
      // A per-order error is the venue saying there is nothing to cancel; a top-level error means
      // the cancel was not executed and the order may still be live.
      if (f.kind === 'venue' && f.scope === 'order') return { kind: 'not_found', error: f.error };
      return { kind: 'unknown', cause: `${f.kind}: ${f.error}` };
    }
    const p = CancelResponseSchema.safeParse(raw);
    if (!p.success) return { kind: 'unknown', cause: `invalid_response: ${describeIssues(p.error)}` };
    const st = p.data.response.data.statuses[0]!;
    return st === 'success' ? { kind: 'cancelled' } : { kind: 'not_found', error: st.error };
  }

  async #defaultAction(what: string, call: () => Promise<unknown>): Promise<{ ok: true } | { ok: false; error: string }> {
    let raw: unknown;
    try {
      raw = await call();
    } catch (e) {
      const f = classify(e);
      return { ok: false, error: f.kind === 'venue' ? f.error : `${f.kind}: ${f.error}` };
    }
    const p = DefaultResponseSchema.safeParse(raw);
    if (!p.success) return { ok: false, error: `invalid_response: ${what}: ${describeIssues(p.error)}` };
    return { ok: true };
  }

  scheduleCancel(time: number | undefined, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }> {
    const o = { expiresAfter: opts.expiresAfter, ...(opts.signal ? { signal: opts.signal } : {}) };
    return this.#defaultAction('scheduleCancel', () => (time === undefined ? this.#exchange.scheduleCancel(o) : this.#exchange.scheduleCancel({ time }, o)));
  }

  async updateLeverage(coin: Coin, leverage: number, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }> {
    let asset: number | undefined;
    try {
      asset = await this.#assetId(coin);
    } catch (e) {
      return { ok: false, error: `asset lookup failed: ${(e as Error).message}` };
    }
    if (asset === undefined) return { ok: false, error: `unknown coin ${coin}` };
    const a = asset;
    return this.#defaultAction('updateLeverage', () =>
      this.#exchange.updateLeverage({ asset: a, isCross: true, leverage }, { expiresAfter: opts.expiresAfter, ...(opts.signal ? { signal: opts.signal } : {}) }),
    );
  }

  // ── WebSocket ───────────────────────────────────────────────────────────────────────────

  #socket(): WsParts {
    if (this.#closed) throw new VenueError('transport', 'venue adapter is closed');
    if (this.#ws) return this.#ws;
    const w = this.#opts.ws ?? {};
    const transport = new WebSocketTransport({
      url: wsUrlOf(this.url),
      isTestnet: this.network !== 'mainnet',
      timeout: this.#opts.timeoutMs ?? 10_000,
      resubscribe: true,
      keepAlive: { interval: w.keepAliveIntervalMs ?? 30_000, timeout: w.keepAliveTimeoutMs ?? 10_000 },
      reconnect: {
        maxRetries: Infinity,
        connectionTimeout: w.connectionTimeoutMs ?? 10_000,
        reconnectionDelay: w.reconnectDelayMs ?? ((n: number) => Math.min(2 ** n * 200, 5_000)),
      },
    });
    transport.socket.addEventListener('open', () => this.#setConn('up'));
    transport.socket.addEventListener('close', () => this.#setConn('down'));
    this.#conn = 'down';
    this.#ws = { transport, subs: new SubscriptionClient({ transport }) };
    return this.#ws;
  }

  #setConn(s: 'up' | 'down'): void {
    if (this.#conn === s || this.#closed) return;
    this.#conn = s;
    this.#log.info({ state: s }, 'venue: websocket');
    for (const l of [...this.#connListeners]) {
      try {
        l(s);
      } catch (e) {
        this.#log.error({ err: String(e) }, 'venue: connection listener threw');
      }
    }
  }

  /** Parses one message; a malformed one is dropped, counted, and logged the first time per channel. */
  #parse<S extends z.ZodType>(channel: string, schema: S, data: unknown): z.output<S> | undefined {
    const p = schema.safeParse(data);
    if (p.success) return p.data;
    this.#drop(channel, describeIssues(p.error));
    return undefined;
  }

  #drop(channel: string, reason: string): void {
    const n = (this.#dropped.get(channel) ?? 0) + 1;
    this.#dropped.set(channel, n);
    if (n === 1) this.#log.warn({ channel, reason }, 'venue: dropped malformed message (logged once per channel)');
  }

  /** Runs a handler without letting it throw into the SDK's event dispatch. */
  #deliver(channel: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.#log.error({ channel, err: e instanceof Error ? e.stack : String(e) }, 'venue: subscription handler threw');
    }
  }

  /**
   * One SDK subscription that outlives a refusal: if the SDK gives it up (the venue refused the
   * resubscription after a reconnect), it is requested again after a delay until unsubscribed.
   */
  async #durable(label: string, start: (onError: (e: unknown) => void) => Promise<{ unsubscribe(): Promise<void> }>): Promise<Subscription> {
    let current: { unsubscribe(): Promise<void> } | undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const delay = this.#opts.ws?.resubscribeDelayMs ?? 1_000;
    const onError = (e: unknown) => {
      current = undefined;
      if (stopped || this.#closed) return;
      this.#log.warn({ label, err: e instanceof Error ? e.message : String(e) }, 'venue: subscription lost, re-subscribing');
      const retry = () => {
        timer = undefined;
        if (stopped || this.#closed) return;
        start(onError).then(
          (s) => {
            if (stopped) void s.unsubscribe().catch(() => {});
            else current = s;
          },
          () => {
            timer = setTimeout(retry, delay);
          },
        );
      };
      timer = setTimeout(retry, delay);
    };
    current = await start(onError);
    return {
      unsubscribe: async () => {
        stopped = true;
        if (timer) clearTimeout(timer);
        const c = current;
        current = undefined;
        if (c) await c.unsubscribe().catch(() => {});
      },
    };
  }

  async #all(starts: readonly (() => Promise<Subscription>)[]): Promise<Subscription> {
    const made: Subscription[] = [];
    try {
      for (const s of starts) made.push(await s());
    } catch (e) {
      await Promise.all(made.map((m) => m.unsubscribe().catch(() => {})));
      throw new VenueError('transport', `subscribe failed: ${e instanceof Error ? e.message : String(e)}`, e);
    }
    return { unsubscribe: async () => void (await Promise.all(made.map((m) => m.unsubscribe()))) };
  }

  async subscribeMarket(coins: readonly Coin[], intervals: readonly string[], handlers: MarketHandlers): Promise<Subscription> {
    const { subs } = this.#socket();
    const ivs = intervals.map((i) => {
      const p = intervalSchema.safeParse(i);
      if (!p.success) throw new VenueError('rejected', `subscribeMarket: unknown interval ${JSON.stringify(i)}`);
      return p.data;
    });
    const starts: (() => Promise<Subscription>)[] = [];
    const { onMids, onBook, onTrades, onCandle } = handlers;
    if (onMids) {
      const wanted = new Set(coins);
      starts.push(() =>
        this.#durable('allMids', (onError) =>
          subs.allMids(
            (raw) => {
              const at = this.#now();
              const p = this.#parse('allMids', WsAllMidsSchema, raw);
              if (!p) return;
              const m = toMids(p.mids);
              if (!(m instanceof Map)) return this.#drop('allMids', m.error);
              const out = new Map<Coin, Decimal>();
              for (const [c, px] of m) if (wanted.size === 0 || wanted.has(c)) out.set(c, px);
              this.#deliver('allMids', () => onMids(out, at));
            },
            { onError },
          ),
        ),
      );
    }
    for (const coin of coins) {
      if (onBook) {
        starts.push(() =>
          this.#durable(`l2Book:${coin}`, (onError) =>
            subs.l2Book(
              { coin },
              (raw) => {
                const at = this.#now();
                const p = this.#parse('l2Book', WsBookSchema, raw);
                if (!p || p.coin !== coin) return;
                this.#deliver('l2Book', () => onBook(coin, p.levels[0][0]?.px, p.levels[1][0]?.px, p.time, at));
              },
              { onError },
            ),
          ),
        );
      }
      if (onTrades) {
        starts.push(() =>
          this.#durable(`trades:${coin}`, (onError) =>
            subs.trades(
              { coin },
              (raw) => {
                const at = this.#now();
                const p = this.#parse('trades', WsTradesSchema, raw);
                if (!p) return;
                const mine = p.filter((t) => t.coin === coin).map((t) => ({ px: t.px, sz: t.sz, side: t.side, time: t.time, tid: t.tid }));
                if (mine.length > 0) this.#deliver('trades', () => onTrades(coin, mine, at));
              },
              { onError },
            ),
          ),
        );
      }
      if (onCandle) {
        for (const interval of ivs) {
          starts.push(() =>
            this.#durable(`candle:${coin}:${interval}`, (onError) =>
              subs.candle(
                { coin, interval },
                (raw) => {
                  const at = this.#now();
                  const p = this.#parse('candle', CandleWireSchema, raw);
                  if (!p || p.s !== coin || p.i !== interval) return;
                  // The channel pushes the bar in progress; closing is the feed's decision.
                  this.#deliver('candle', () => onCandle(toCandle(p, false), at));
                },
                { onError },
              ),
            ),
          );
        }
      }
    }
    return this.#all(starts);
  }

  async subscribeUser(handlers: UserHandlers): Promise<Subscription> {
    const { subs } = this.#socket();
    const user = this.account as `0x${string}`;
    const starts: (() => Promise<Subscription>)[] = [];
    const { onFills, onOrderUpdates } = handlers;
    if (onFills) {
      starts.push(() =>
        this.#durable('userFills', (onError) =>
          subs.userFills(
            { user },
            (raw) => {
              const p = this.#parse('userFills', WsUserFillsSchema, raw);
              if (!p) return;
              const fills = p.fills.map(toFill);
              this.#deliver('userFills', () => onFills(fills, p.isSnapshot === true));
            },
            { onError },
          ),
        ),
      );
    }
    if (onOrderUpdates) {
      starts.push(() =>
        this.#durable('orderUpdates', (onError) =>
          subs.orderUpdates(
            { user },
            (raw) => {
              const p = this.#parse('orderUpdates', WsOrderUpdatesSchema, raw);
              if (!p) return;
              const updates = p.map((u) => ({
                ...(u.order.cloid ? { cloid: u.order.cloid } : {}),
                oid: u.order.oid,
                coin: u.order.coin,
                status: u.status,
                sz: u.order.sz,
                origSz: u.order.origSz,
                time: u.statusTimestamp,
              }));
              this.#deliver('orderUpdates', () => onOrderUpdates(updates));
            },
            { onError },
          ),
        ),
      );
    }
    return this.#all(starts);
  }

  onConnectionState(listener: (state: 'up' | 'down') => void): () => void {
    this.#socket();
    this.#connListeners.add(listener);
    return () => void this.#connListeners.delete(listener);
  }

  connectionState(): 'idle' | 'up' | 'down' {
    return this.#conn;
  }

  droppedMessages(): Readonly<Record<string, number>> {
    return Object.fromEntries(this.#dropped);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connListeners.clear();
    this.#ws?.transport.close();
    this.#ws = undefined;
  }
}
