/**
 * The resilient venue: a `VenuePort` decorator that puts a circuit breaker around each endpoint
 * class and spends request weight from the budget before anything is sent.
 *
 *  - queries (instruments, mids, candles, accountState, openOrders, orderStatus, fills) → `info`;
 *  - place, cancel, scheduleCancel, updateLeverage → `exchange`;
 *  - subscribeMarket / subscribeUser (subscribe requests over the WebSocket) → `ws`.
 *
 * Invariants (on top of the port's contract, which it keeps: actions never throw):
 *  - Nothing here retries anything, least of all an order: an action's unknown outcome goes back
 *    to the order actor, which resolves it by cloid.
 *  - A timed-out action is abandoned through its AbortSignal and reported `unknown`: the request
 *    may have reached the exchange.
 *  - An action that was certainly not sent says so: an open `exchange` breaker makes `place` return
 *    `rejected` with 'circuit open: exchange' (not `unknown`), because opossum refuses before the
 *    request exists, so there is nothing to resolve — the order actor can close the intent at once
 *    instead of polling `orderStatus` against an exchange it has just declared sick. The same holds
 *    for an action whose caller aborted, or whose `expiresAfter` passed, while it waited for weight.
 *    A cancel that was not sent is `unknown` (the order may still rest), and `scheduleCancel` /
 *    `updateLeverage` are `ok: false`.
 *  - The venue refusing (an order's error string, a 'rejected' VenueError) is an answer, not a
 *    sickness: it never counts against a breaker. Transport errors, 5xx, 429, unreadable answers
 *    and timeouts do; a 429 also tells the budget to back off.
 *  - Queries take no AbortSignal in the port, so a timed-out query is abandoned by racing it
 *    against the breaker's timeout: the caller gets a `VenueError('transport')` at once, and the
 *    HTTP request itself is bounded by the adapter's own timeout (`timeoutMs`, 10 s by default).
 *    Keep the breaker's `info.timeoutMs` below that so the breaker, not the adapter, decides.
 */
import type { Decimal } from '../domain/decimal.ts';
import type { AccountState, Candle, CancelResult, Cloid, Coin, Fill, Instrument, OrderIntent, PlaceResult, VenueOrder, VenueOrderStatus } from '../domain/types.ts';
import { exchangeWeight, infoBaseWeight, infoResultWeight } from '../sim/server/rate-limits.ts';
import { createBreakers, type BreakerChange, type BreakerClass, type BreakerOutcome, type BreakerSettings, type BreakerState, type EndpointBreaker } from './breakers.ts';
import type { VenueLogger } from './hyperliquid-venue.ts';
import { VenueError, type ActOptions, type MarketHandlers, type Subscription, type UserHandlers, type VenuePort } from './port.ts';
import type { WeightBudget } from './weight-budget.ts';

export interface ResilientVenueOptions {
  /** Shared by everything in this process that talks to the venue's REST API. */
  readonly budget: WeightBudget;
  readonly breakers?: Partial<Record<BreakerClass, Partial<BreakerSettings>>>;
  /** The clock `expiresAfter` is measured on (default Date.now). */
  readonly now?: () => number;
  readonly log?: VenueLogger;
}

export interface ResilientVenue extends VenuePort {
  breakerStates(): Record<BreakerClass, BreakerState>;
  /** Every breaker transition, in order; returns the unsubscribe. */
  onBreakerChange(listener: (change: BreakerChange) => void): () => void;
  /** Rolling counters per breaker (for metrics). */
  breakerStats(): Record<BreakerClass, ReturnType<EndpointBreaker['stats']>>;
}

const NOOP_LOG: VenueLogger = { debug() {}, info() {}, warn() {}, error() {} };
const CIRCUIT_OPEN = { info: 'circuit open: info', exchange: 'circuit open: exchange', ws: 'circuit open: ws' } as const;
/** Prefixes the adapter gives `ok:false` errors that are transport failures, not venue refusals. */
const TRANSPORT_ERROR = /^(transport|rate_limited|invalid_response)\b/;
/** Above this many fills the adapter pages, each page a further userFillsByTime request. */
const FILLS_PAGE = 2000;

const isRefusal = (e: unknown) => e instanceof VenueError && e.kind === 'rejected';
const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Wraps a venue (normally the Hyperliquid adapter) with breakers and the weight budget.
 *
 * @example
 * const budget = new WeightBudget({ seed });
 * const venue = createResilientVenue(createHyperliquidVenue(cfg), { budget, log });
 * venue.onBreakerChange((c) => mode.send(c.state === 'open' ? { type: 'health.breakerOpen', breaker: c.breaker } : ...));
 */
export function createResilientVenue(inner: VenuePort, opts: ResilientVenueOptions): ResilientVenue {
  return new ResilientVenueImpl(inner, opts);
}

class ResilientVenueImpl implements ResilientVenue {
  readonly #inner: VenuePort;
  readonly #budget: WeightBudget;
  readonly #b: Readonly<Record<BreakerClass, EndpointBreaker>>;
  readonly #now: () => number;
  readonly #log: VenueLogger;
  readonly #listeners = new Set<(c: BreakerChange) => void>();

  constructor(inner: VenuePort, opts: ResilientVenueOptions) {
    this.#inner = inner;
    this.#budget = opts.budget;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log ?? NOOP_LOG;
    this.#b = createBreakers(opts.breakers);
    for (const b of Object.values(this.#b)) {
      b.onChange((c) => {
        const level = c.state === 'open' ? 'warn' : 'info';
        this.#log[level]({ breaker: c.breaker, state: c.state, previous: c.previous }, 'venue: circuit breaker');
        for (const l of [...this.#listeners]) {
          try {
            l(c);
          } catch (e) {
            this.#log.error({ err: message(e) }, 'venue: breaker listener threw');
          }
        }
      });
    }
  }

  get network() {
    return this.#inner.network;
  }
  get url() {
    return this.#inner.url;
  }
  get account() {
    return this.#inner.account;
  }

  breakerStates(): Record<BreakerClass, BreakerState> {
    return { info: this.#b.info.state, exchange: this.#b.exchange.state, ws: this.#b.ws.state };
  }

  onBreakerChange(listener: (change: BreakerChange) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  breakerStats(): Record<BreakerClass, ReturnType<EndpointBreaker['stats']>> {
    return { info: this.#b.info.stats(), exchange: this.#b.exchange.stats(), ws: this.#b.ws.stats() };
  }

  // ── queries ─────────────────────────────────────────────────────────────────────────────

  /** One info request: fail fast when open, pay the weight, run through the breaker. */
  async #query<T>(type: string, call: () => Promise<T>, extraWeight?: (v: T) => number): Promise<T> {
    const info = this.#b.info;
    if (info.rejecting) throw new VenueError('transport', `${type}: ${CIRCUIT_OPEN.info}`);
    try {
      await this.#budget.acquire(infoBaseWeight(type));
    } catch (e) {
      throw new VenueError('transport', `${type}: not sent: ${message(e)}`, e);
    }
    const r = await info.run(() => call(), { isBenignError: isRefusal });
    switch (r.kind) {
      case 'ok':
        if (extraWeight) this.#budget.charge(extraWeight(r.value));
        return r.value;
      case 'threw':
        if (r.error instanceof VenueError && r.error.kind === 'rate_limited') this.#rateLimited(type);
        throw r.error;
      case 'timeout':
        this.#log.warn({ type, timeoutMs: r.timeoutMs }, 'venue: query timed out');
        throw new VenueError('transport', `${type}: no answer within ${r.timeoutMs} ms (abandoned)`);
      case 'open':
        throw new VenueError('transport', `${type}: ${CIRCUIT_OPEN.info}`);
      case 'failed':
        // Queries class failures by throwing; a returned value is always a good one.
        return r.value;
    }
  }

  instruments(): Promise<Instrument[]> {
    return this.#query('meta', () => this.#inner.instruments());
  }

  mids(): Promise<Map<Coin, Decimal>> {
    return this.#query('allMids', () => this.#inner.mids());
  }

  candles(coin: Coin, interval: string, startTime: number, endTime?: number): Promise<Candle[]> {
    return this.#query('candleSnapshot', () => this.#inner.candles(coin, interval, startTime, endTime), (cs) => infoResultWeight('candleSnapshot', cs.length));
  }

  accountState(): Promise<AccountState> {
    return this.#query('clearinghouseState', () => this.#inner.accountState());
  }

  openOrders(): Promise<VenueOrder[]> {
    return this.#query('frontendOpenOrders', () => this.#inner.openOrders());
  }

  orderStatus(cloid: Cloid): Promise<VenueOrderStatus> {
    return this.#query('orderStatus', () => this.#inner.orderStatus(cloid));
  }

  fills(startTime: number): Promise<Fill[]> {
    // The adapter pages past 2000 fills; later pages were paid for by nobody, so charge them.
    return this.#query('userFillsByTime', () => this.#inner.fills(startTime), (fs) => {
      const extraPages = Math.floor(fs.length / FILLS_PAGE);
      return infoResultWeight('userFillsByTime', fs.length) + extraPages * infoBaseWeight('userFillsByTime');
    });
  }

  // ── actions ─────────────────────────────────────────────────────────────────────────────

  /**
   * Pays an action's weight. Returns why it must not be sent, or undefined to go ahead: the
   * caller gave up while it waited, or the action expired (the exchange would refuse it anyway).
   */
  async #admit(what: string, opts: ActOptions): Promise<string | undefined> {
    try {
      await this.#budget.acquire(exchangeWeight(1), opts.signal);
    } catch (e) {
      return `not sent: ${message(e)}`;
    }
    if (this.#now() >= opts.expiresAfter) {
      this.#log.warn({ what, expiresAfter: opts.expiresAfter }, 'venue: action expired while waiting for request weight');
      return 'not sent: expired while waiting for request weight';
    }
    return undefined;
  }

  /** Runs an action; the caller maps the outcome. Records 429s with the budget. */
  async #act<T>(what: string, opts: ActOptions, call: (o: ActOptions) => Promise<T>, isFailure: (v: T) => boolean, isRateLimited: (v: T) => boolean): Promise<BreakerOutcome<T>> {
    const r = await this.#b.exchange.run((signal) => call({ ...opts, signal }), { ...(opts.signal ? { signal: opts.signal } : {}), isFailure });
    if (r.kind === 'failed' && isRateLimited(r.value)) this.#rateLimited(what);
    if (r.kind === 'timeout') this.#log.warn({ what, timeoutMs: r.timeoutMs }, 'venue: action timed out, abandoned; outcome unknown');
    return r;
  }

  async place(intent: OrderIntent, opts: ActOptions): Promise<PlaceResult> {
    if (this.#b.exchange.rejecting) return { kind: 'rejected', error: CIRCUIT_OPEN.exchange };
    const refused = await this.#admit('place', opts);
    if (refused !== undefined) return { kind: 'rejected', error: refused };
    const r = await this.#act(
      'place',
      opts,
      (o) => this.#inner.place(intent, o),
      (v) => v.kind === 'unknown',
      (v) => v.kind === 'unknown' && v.cause.startsWith('rate_limited'),
    );
    switch (r.kind) {
      case 'ok':
      case 'failed':
        return r.value;
      case 'open':
        return { kind: 'rejected', error: CIRCUIT_OPEN.exchange };
      case 'timeout':
        return { kind: 'unknown', cause: `timeout: no answer within ${r.timeoutMs} ms (request abandoned)` };
      case 'threw':
        return { kind: 'unknown', cause: `threw: ${message(r.error)}` };
    }
  }

  async cancel(coin: Coin, cloid: Cloid, opts: ActOptions): Promise<CancelResult> {
    // Not sent is still `unknown` for a cancel: the order may be resting, so the caller must look.
    if (this.#b.exchange.rejecting) return { kind: 'unknown', cause: `not sent: ${CIRCUIT_OPEN.exchange}` };
    const refused = await this.#admit('cancel', opts);
    if (refused !== undefined) return { kind: 'unknown', cause: refused };
    const r = await this.#act(
      'cancel',
      opts,
      (o) => this.#inner.cancel(coin, cloid, o),
      (v) => v.kind === 'unknown',
      (v) => v.kind === 'unknown' && v.cause.startsWith('rate_limited'),
    );
    switch (r.kind) {
      case 'ok':
      case 'failed':
        return r.value;
      case 'open':
        return { kind: 'unknown', cause: `not sent: ${CIRCUIT_OPEN.exchange}` };
      case 'timeout':
        return { kind: 'unknown', cause: `timeout: no answer within ${r.timeoutMs} ms (request abandoned)` };
      case 'threw':
        return { kind: 'unknown', cause: `threw: ${message(r.error)}` };
    }
  }

  async #simpleAction(what: string, opts: ActOptions, call: (o: ActOptions) => Promise<{ ok: true } | { ok: false; error: string }>): Promise<{ ok: true } | { ok: false; error: string }> {
    if (this.#b.exchange.rejecting) return { ok: false, error: CIRCUIT_OPEN.exchange };
    const refused = await this.#admit(what, opts);
    if (refused !== undefined) return { ok: false, error: refused };
    const r = await this.#act(
      what,
      opts,
      call,
      (v) => !v.ok && TRANSPORT_ERROR.test(v.error),
      (v) => !v.ok && v.error.startsWith('rate_limited'),
    );
    switch (r.kind) {
      case 'ok':
      case 'failed':
        return r.value;
      case 'open':
        return { ok: false, error: CIRCUIT_OPEN.exchange };
      case 'timeout':
        return { ok: false, error: `timeout: no answer within ${r.timeoutMs} ms (request abandoned; it may have been applied)` };
      case 'threw':
        return { ok: false, error: `threw: ${message(r.error)}` };
    }
  }

  scheduleCancel(time: number | undefined, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }> {
    return this.#simpleAction('scheduleCancel', opts, (o) => this.#inner.scheduleCancel(time, o));
  }

  updateLeverage(coin: Coin, leverage: number, opts: ActOptions): Promise<{ ok: true } | { ok: false; error: string }> {
    return this.#simpleAction('updateLeverage', opts, (o) => this.#inner.updateLeverage(coin, leverage, o));
  }

  #rateLimited(what: string): void {
    const backoffMs = this.#budget.onRateLimited();
    this.#log.warn({ what, backoffMs }, 'venue: rate limited (429), backing off');
  }

  // ── WebSocket ───────────────────────────────────────────────────────────────────────────

  /**
   * Subscribe requests cost no REST weight. One that times out is abandoned; if its ack arrives
   * later, the subscription is undone so it cannot leak a second stream into the handlers.
   */
  async #subscribe(what: string, start: () => Promise<Subscription>): Promise<Subscription> {
    const ws = this.#b.ws;
    if (ws.rejecting) throw new VenueError('transport', `${what}: ${CIRCUIT_OPEN.ws}`);
    let abandoned = false;
    const r = await ws.run(
      () => {
        const p = start();
        p.then(
          (s) => {
            if (abandoned) void s.unsubscribe().catch(() => {});
          },
          () => {},
        );
        return p;
      },
      { isBenignError: isRefusal },
    );
    switch (r.kind) {
      case 'ok':
      case 'failed':
        return r.value;
      case 'threw':
        throw r.error;
      case 'timeout':
        abandoned = true;
        throw new VenueError('transport', `${what}: no subscription ack within ${r.timeoutMs} ms (abandoned)`);
      case 'open':
        throw new VenueError('transport', `${what}: ${CIRCUIT_OPEN.ws}`);
    }
  }

  subscribeMarket(coins: readonly Coin[], intervals: readonly string[], handlers: MarketHandlers): Promise<Subscription> {
    return this.#subscribe('subscribeMarket', () => this.#inner.subscribeMarket(coins, intervals, handlers));
  }

  subscribeUser(handlers: UserHandlers): Promise<Subscription> {
    return this.#subscribe('subscribeUser', () => this.#inner.subscribeUser(handlers));
  }

  onConnectionState(listener: (state: 'up' | 'down') => void): () => void {
    return this.#inner.onConnectionState(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    for (const b of Object.values(this.#b)) b.shutdown();
    await this.#inner.close();
  }
}
