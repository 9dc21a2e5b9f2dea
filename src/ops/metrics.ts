/**
 * keel's Prometheus metrics (`GET /metrics`): one `KeelMetrics` per process, over its OWN
 * prom-client `Registry` (never the global one, so tests and a second runtime in one process
 * cannot collide), with the process defaults and every `keel_*` series of issue 5.
 *
 * Invariants:
 * - Callers never type a label string: each metric has a typed method (`setMode`, `orderStatus`,
 *   `riskDenied`, ...) and every label value comes from a closed list here or from the configured
 *   coins. A value outside its set is counted under `other` where the set has one (coins, actors,
 *   feed channels, order states, reasons) and ignored where the type already rules it out (modes,
 *   sides, black-box kinds, alert channels and severities). So the number of series is fixed at
 *   construction (no cardinality leak from a venue error string or a stray coin).
 * - Every bounded label set is pre-initialised (counters at 0, 0/1 gauges at 0), so a series
 *   exists from the first scrape: dashboards and rules never see "no data" for "nothing happened",
 *   and `rate()` sees the first increment.
 * - Names follow Prometheus conventions: `keel_` prefix, base units (seconds, USD as `_usd`,
 *   ratios as `_ratio`), `_total` on counters, `_timestamp_seconds` for absolute times.
 * - Methods take the runtime's units (ms, Decimal) and convert at this edge; they never throw for
 *   a value (a non-finite number is dropped), because metrics must never break trading.
 * - Sources that keep their own counters (breakers, weight budget, black-box recorder) are read at
 *   scrape time through collect callbacks (`attachVenue`, `attachBudget`, `attachBlackbox`);
 *   their monotonic counts are turned into counter increments by delta, so a source replaced (or
 *   reset) never makes a counter go down. Opossum's stats are rolling-window counts, which fall as
 *   the window rolls, so they are gauges (`keel_breaker_window_calls`), and the breaker's own
 *   history is the transitions counter fed by `onBreakerChange`.
 *
 * @example
 * const metrics = new KeelMetrics({ coins: cfg.markets, network: cfg.network });
 * metrics.attachVenue(venue); metrics.attachBudget(budget);
 * metrics.setMode('Normal');
 * // in the HTTP server: res.writeHead(200, { 'content-type': metrics.contentType }); res.end(await metrics.metrics());
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decimal } from '../domain/decimal.ts';
import { DENIAL_REASONS, MODES, ORDER_STATES, type Coin, type DenialReason, type Mode, type OrderState, type Side } from '../domain/types.ts';
import { RECONCILE_ACTION_TYPES, type ReconcileReport } from '../domain/reconciliation.ts';

// ---------------------------------------------------------------------------------------------
// Closed label sets
// ---------------------------------------------------------------------------------------------

/** The supervisor's long-lived children (machines/supervisor.machine.ts CHILDREN) and the shells around them. */
export const METRIC_ACTORS = ['marketFeed', 'strategy', 'risk', 'orderManager', 'watchdog', 'reconciliation', 'blackbox'] as const;
export type MetricActor = (typeof METRIC_ACTORS)[number];

export const FEED_SOURCES = ['ws', 'rest'] as const;
export type MetricFeedSource = (typeof FEED_SOURCES)[number];
/** The feed path in use (the market-feed machine's `FeedPath`). */
export const FEED_PATHS = ['ws', 'rest', 'none'] as const;
export type MetricFeedPath = (typeof FEED_PATHS)[number];
export const FEED_CHANNELS = ['mids', 'candles', 'trades', 'book', 'user'] as const;
export type FeedChannel = (typeof FEED_CHANNELS)[number];

export const SIDES = ['buy', 'sell'] as const satisfies readonly Side[];

export const BREAKER_ENDPOINTS = ['info', 'exchange', 'ws'] as const;
export type MetricBreakerEndpoint = (typeof BREAKER_ENDPOINTS)[number];
/** Opossum's states, as src/venue/breakers.ts names them. */
export const BREAKER_STATES = ['closed', 'open', 'halfOpen'] as const;
export type MetricBreakerState = (typeof BREAKER_STATES)[number];
/** Opossum's rolling-window counters (EndpointBreaker.stats()). */
export const BREAKER_WINDOW_EVENTS = ['fires', 'successes', 'failures', 'timeouts', 'rejects'] as const;

export const RECONCILIATION_RESULTS = ['clean', 'dirty', 'error'] as const;
export type ReconciliationResult = (typeof RECONCILIATION_RESULTS)[number];
/** The reconciliation's action types, plus `pending` (an order whose outcome a run could not prove). */
export const RECONCILIATION_DIFFERENCE_KINDS = [...RECONCILE_ACTION_TYPES, 'pending'] as const;
export type ReconciliationDifferenceKind = (typeof RECONCILIATION_DIFFERENCE_KINDS)[number];

/** The black box's event kinds (src/store/blackbox-codec.ts BLACKBOX_KINDS). */
export const BLACKBOX_EVENT_KINDS = ['input', 'decision'] as const;
export type BlackboxEventKind = (typeof BLACKBOX_EVENT_KINDS)[number];

export const ALERT_CHANNELS = ['telegram', 'email'] as const;
export type AlertChannel = (typeof ALERT_CHANNELS)[number];
export const ALERT_SEVERITIES = ['critical', 'warning', 'info'] as const;
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number];

export const NETWORKS = ['paper', 'testnet', 'mainnet'] as const;
export type MetricNetwork = (typeof NETWORKS)[number];

export const OTHER = 'other';

/**
 * Venue refusal strings mapped to a fixed set of reasons, first match wins. The strings are
 * Hyperliquid's (docs/hyperliquid-api.md, "Per-order errors") and the resilient venue's own
 * ('circuit open: exchange', 'not sent: ...').
 */
const REJECTION_PATTERNS = [
  ['circuit_open', /circuit open/i],
  ['expired', /expired/i],
  ['not_sent', /^not sent\b/i],
  ['rate_limited', /rate.?limit|\b429\b/i],
  ['tick_size', /divisible by tick size/i],
  ['min_notional', /minimum value/i],
  ['margin', /insufficient margin/i],
  ['reduce_only', /reduce only order would increase/i],
  ['post_only', /post only order would have immediately matched/i],
  ['ioc_no_match', /could not immediately match/i],
  ['no_liquidity', /no liquidity/i],
  ['price_band', /price cannot be more than|too far from oracle/i],
  ['invalid_tpsl', /invalid tp\/sl/i],
  ['duplicate_cloid', /cloid already used/i],
  ['parent_failed', /parent order failed/i],
  ['invalid_order', /invalid (asset|size|price)|zero size|invalid leverage/i],
  ['signer', /does not exist|must deposit|agent removal/i],
  ['nonce', /\bnonce\b/i],
] as const satisfies readonly (readonly [string, RegExp])[];

export const REJECTION_REASONS = [...REJECTION_PATTERNS.map(([r]) => r), OTHER] as const;
export type RejectionReason = (typeof REJECTION_PATTERNS)[number][0] | typeof OTHER;

/** The bounded reason label for a venue's (or the resilient venue's) refusal string. */
export function rejectionReason(error: string): RejectionReason {
  for (const [reason, re] of REJECTION_PATTERNS) if (re.test(error)) return reason;
  return OTHER;
}

// ---------------------------------------------------------------------------------------------
// Sources read at scrape time (narrow views of ResilientVenue, WeightBudget, BlackboxRecorder)
// ---------------------------------------------------------------------------------------------

export interface BreakerSource {
  breakerStates(): Readonly<Record<MetricBreakerEndpoint, MetricBreakerState>>;
  breakerStats(): Readonly<Record<MetricBreakerEndpoint, { readonly fires: number; readonly successes: number; readonly failures: number; readonly timeouts: number; readonly rejects: number }>>;
  onBreakerChange(listener: (change: { readonly breaker: MetricBreakerEndpoint; readonly state: MetricBreakerState; readonly previous: MetricBreakerState }) => void): () => void;
}

export interface BudgetSource {
  stats(): { readonly available: number; readonly capacity: number; readonly rateLimited: number };
}

export interface BlackboxSource {
  stats(): { readonly dropped: number; readonly flushes: number; readonly flushErrors: number; readonly totalFlushMs: number; readonly lastFlushMs: number; readonly pending: number };
}

export interface KeelMetricsOptions {
  /** The configured markets: the only `coin` label values besides `other`. */
  readonly coins: readonly Coin[];
  readonly network?: MetricNetwork;
  readonly version?: string;
  /** Clock for feed ages and the last-reconciliation time (ms). Default Date.now. */
  readonly now?: () => number;
  /** Register prom-client's process defaults (`process_*`, `nodejs_*`). Default true. */
  readonly defaultMetrics?: boolean;
}

/** One position as the metrics see it: signed size and absolute notional in USD. */
export interface PositionSample {
  readonly coin: Coin;
  readonly szi: Decimal | number;
  readonly notionalUsd: Decimal | number;
}

const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];
const TICK_TO_ORDER_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const ORDER_ACK_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BLACKBOX_WRITE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

const num = (v: Decimal | number): number => (typeof v === 'number' ? v : v.toNumber());
const pick = <T extends string>(allowed: readonly T[], v: string): T | typeof OTHER => ((allowed as readonly string[]).includes(v) ? (v as T) : OTHER);

/**
 * The process's metrics. Construct once, hand the typed methods to the runtime, serve `metrics()`.
 */
export class KeelMetrics {
  readonly registry: Registry;
  readonly coins: readonly Coin[];
  readonly #now: () => number;
  readonly #createdAt: number;
  #mode: Mode | undefined;
  readonly #lastFeedAt = new Map<MetricFeedSource, number>();
  readonly #detach: (() => void)[] = [];

  readonly #info: Gauge<'version' | 'network'>;
  readonly #modeGauge: Gauge<'mode'>;
  readonly #modeTransitions: Counter<'from' | 'to'>;
  readonly #actorUp: Gauge<'actor'>;
  readonly #actorRestarts: Counter<'actor'>;
  readonly #feedMessages: Counter<'source' | 'channel'>;
  readonly #feedAge: Gauge<'source'>;
  readonly #feedSource: Gauge<'source'>;
  readonly #orders: Counter<'status'>;
  readonly #rejections: Counter<'reason'>;
  readonly #denials: Counter<'reason'>;
  readonly #tickToOrder: Histogram;
  readonly #orderAck: Histogram;
  readonly #fills: Counter<'coin' | 'side'>;
  readonly #positionSize: Gauge<'coin'>;
  readonly #positionNotional: Gauge<'coin'>;
  readonly #equity: Gauge;
  readonly #drawdown: Gauge;
  readonly #dailyPnl: Gauge;
  readonly #breakerState: Gauge<'endpoint' | 'state'>;
  readonly #breakerWindow: Gauge<'endpoint' | 'event'>;
  readonly #breakerTransitions: Counter<'endpoint' | 'to'>;
  readonly #weightAvailable: Gauge;
  readonly #weightCapacity: Gauge;
  readonly #rateLimited: Counter;
  readonly #reconRuns: Counter<'result'>;
  readonly #reconDiffs: Counter<'kind'>;
  readonly #reconLast: Gauge;
  readonly #bbEvents: Counter<'kind'>;
  readonly #bbWrite: Histogram;
  readonly #bbDropped: Counter;
  readonly #bbWriteErrors: Counter;
  readonly #bbPending: Gauge;
  readonly #dbErrors: Counter;
  readonly #eventLoopDelay: Gauge;
  readonly #deadman: Gauge;
  readonly #alerts: Counter<'channel' | 'severity'>;

  #breakers: BreakerSource | undefined;
  #budget: BudgetSource | undefined;
  #budgetSeen = { rateLimited: 0 };
  #blackbox: BlackboxSource | undefined;
  #blackboxSeen = { dropped: 0, flushes: 0, flushErrors: 0, totalFlushMs: 0 };

  constructor(opts: KeelMetricsOptions) {
    this.coins = Object.freeze([...new Set(opts.coins)]);
    this.#now = opts.now ?? Date.now;
    this.#createdAt = this.#now();
    const registry = (this.registry = new Registry());
    if (opts.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: registry });
      // prom-client exports these gauges with a `_total` suffix, which `promtool check metrics`
      // rightly rejects; each is the sum of its per-type sibling (`nodejs_active_handles{type}`).
      for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
    }
    const registers = [registry];
    const coinValues = [...this.coins, OTHER];

    this.#info = new Gauge({ name: 'keel_info', help: 'Build and network of this keel process (always 1).', labelNames: ['version', 'network'], registers });
    this.#info.set({ version: opts.version ?? 'unknown', network: opts.network ?? 'paper' }, 1);

    this.#modeGauge = new Gauge({ name: 'keel_mode', help: 'Operating mode: 1 for the current mode, 0 for the others.', labelNames: ['mode'], registers });
    this.#modeTransitions = new Counter({ name: 'keel_mode_transitions_total', help: 'Operating-mode changes, by previous and new mode.', labelNames: ['from', 'to'], registers });
    for (const m of MODES) this.#modeGauge.set({ mode: m }, 0);
    for (const from of MODES) for (const to of MODES) if (from !== to) this.#modeTransitions.inc({ from, to }, 0);

    this.#actorUp = new Gauge({ name: 'keel_actor_up', help: 'Whether each long-lived actor is running (1) or down (0).', labelNames: ['actor'], registers });
    this.#actorRestarts = new Counter({ name: 'keel_actor_restarts_total', help: 'Actor restarts by the supervisor.', labelNames: ['actor'], registers });
    for (const actor of [...METRIC_ACTORS, OTHER]) {
      this.#actorUp.set({ actor }, 0);
      this.#actorRestarts.inc({ actor }, 0);
    }

    this.#feedMessages = new Counter({ name: 'keel_feed_messages_total', help: 'Market and user data messages received, by path and channel.', labelNames: ['source', 'channel'], registers });
    this.#feedAge = new Gauge({
      name: 'keel_feed_age_seconds',
      help: 'Seconds since the last message on each feed path (since start when none yet).',
      labelNames: ['source'],
      registers,
      collect: () => this.#collectFeedAge(),
    });
    this.#feedSource = new Gauge({ name: 'keel_feed_source', help: 'The market-data path in use: 1 for the active one (ws, rest, or none).', labelNames: ['source'], registers });
    for (const source of FEED_SOURCES) for (const channel of [...FEED_CHANNELS, OTHER]) this.#feedMessages.inc({ source, channel }, 0);
    for (const source of FEED_PATHS) this.#feedSource.set({ source }, 0);
    this.#feedSource.set({ source: 'none' }, 1);

    this.#orders = new Counter({ name: 'keel_orders_total', help: 'Orders entering each lifecycle state.', labelNames: ['status'], registers });
    this.#rejections = new Counter({ name: 'keel_order_rejections_total', help: 'Orders the venue (or keel before sending) refused, by reason.', labelNames: ['reason'], registers });
    this.#denials = new Counter({ name: 'keel_risk_denials_total', help: 'Signals and orders denied by risk, by reason.', labelNames: ['reason'], registers });
    for (const status of [...ORDER_STATES, OTHER]) this.#orders.inc({ status }, 0);
    for (const reason of REJECTION_REASONS) this.#rejections.inc({ reason }, 0);
    for (const reason of [...DENIAL_REASONS, OTHER]) this.#denials.inc({ reason }, 0);

    this.#tickToOrder = new Histogram({ name: 'keel_tick_to_order_seconds', help: 'From the market tick that produced a signal to the order being sent.', buckets: TICK_TO_ORDER_BUCKETS, registers });
    this.#orderAck = new Histogram({ name: 'keel_order_ack_seconds', help: "From sending an order to the venue's acknowledgement.", buckets: ORDER_ACK_BUCKETS, registers });

    this.#fills = new Counter({ name: 'keel_fills_total', help: 'Fills received, by market and side.', labelNames: ['coin', 'side'], registers });
    this.#positionSize = new Gauge({ name: 'keel_position_size', help: 'Signed position size per market (+ long, - short), in coins.', labelNames: ['coin'], registers });
    this.#positionNotional = new Gauge({ name: 'keel_position_notional_usd', help: 'Absolute position notional per market, in USD.', labelNames: ['coin'], registers });
    for (const coin of coinValues) {
      for (const side of SIDES) this.#fills.inc({ coin, side }, 0);
      this.#positionSize.set({ coin }, 0);
      this.#positionNotional.set({ coin }, 0);
    }

    this.#equity = new Gauge({ name: 'keel_equity_usd', help: 'Account value, in USD.', registers });
    this.#drawdown = new Gauge({ name: 'keel_drawdown_ratio', help: 'Drawdown from the equity peak, as a ratio (0.05 = 5 %).', registers });
    this.#dailyPnl = new Gauge({ name: 'keel_daily_pnl_usd', help: "PnL since the day's start (UTC), in USD.", registers });

    this.#breakerState = new Gauge({
      name: 'keel_breaker_state',
      help: 'Circuit breaker state per venue endpoint: 1 for the current state.',
      labelNames: ['endpoint', 'state'],
      registers,
      collect: () => this.#collectBreakers(),
    });
    this.#breakerWindow = new Gauge({
      name: 'keel_breaker_window_calls',
      help: "Calls in each breaker's rolling window (opossum stats), by outcome; a window count, so it falls as the window rolls.",
      labelNames: ['endpoint', 'event'],
      registers,
    });
    this.#breakerTransitions = new Counter({ name: 'keel_breaker_transitions_total', help: 'Circuit breaker state changes, by endpoint and new state.', labelNames: ['endpoint', 'to'], registers });
    for (const endpoint of BREAKER_ENDPOINTS) {
      for (const state of BREAKER_STATES) {
        this.#breakerState.set({ endpoint, state }, state === 'closed' ? 1 : 0);
        this.#breakerTransitions.inc({ endpoint, to: state }, 0);
      }
      for (const event of BREAKER_WINDOW_EVENTS) this.#breakerWindow.set({ endpoint, event }, 0);
    }

    this.#weightAvailable = new Gauge({
      name: 'keel_request_weight_available',
      help: 'REST request weight available now in the budget (negative after post-hoc charges).',
      registers,
      collect: () => this.#collectBudget(),
    });
    this.#weightCapacity = new Gauge({ name: 'keel_request_weight_capacity', help: "The weight budget's capacity.", registers });
    this.#rateLimited = new Counter({ name: 'keel_rate_limited_total', help: 'HTTP 429 answers from the venue.', registers });

    this.#reconRuns = new Counter({ name: 'keel_reconciliation_runs_total', help: 'Reconciliation runs, by result (clean, dirty, error).', labelNames: ['result'], registers });
    this.#reconDiffs = new Counter({ name: 'keel_reconciliation_differences_total', help: 'Reconciliation actions and unproven orders, by kind.', labelNames: ['kind'], registers });
    this.#reconLast = new Gauge({ name: 'keel_reconciliation_last_run_timestamp_seconds', help: 'When the last reconciliation finished (0 before any).', registers });
    for (const result of RECONCILIATION_RESULTS) this.#reconRuns.inc({ result }, 0);
    for (const kind of RECONCILIATION_DIFFERENCE_KINDS) this.#reconDiffs.inc({ kind }, 0);

    this.#bbEvents = new Counter({ name: 'keel_blackbox_events_total', help: 'Events recorded in the black box, by kind.', labelNames: ['kind'], registers });
    this.#bbWrite = new Histogram({
      name: 'keel_blackbox_write_seconds',
      help: 'Black-box batch write (flush) latency.',
      buckets: BLACKBOX_WRITE_BUCKETS,
      registers,
      collect: () => this.#collectBlackbox(),
    });
    this.#bbDropped = new Counter({ name: 'keel_blackbox_dropped_total', help: 'Black-box events dropped because writes were failing.', registers });
    this.#bbWriteErrors = new Counter({ name: 'keel_blackbox_write_errors_total', help: 'Black-box flushes that failed.', registers });
    this.#bbPending = new Gauge({ name: 'keel_blackbox_pending_events', help: 'Black-box events not yet written.', registers });
    for (const kind of BLACKBOX_EVENT_KINDS) this.#bbEvents.inc({ kind }, 0);

    this.#dbErrors = new Counter({ name: 'keel_db_errors_total', help: 'Database errors (failed writes or reads).', registers });
    this.#eventLoopDelay = new Gauge({ name: 'keel_event_loop_delay_seconds', help: 'Event-loop delay as the watchdog measures it (the value the mode machine judges).', registers });
    this.#deadman = new Gauge({ name: 'keel_deadman_expiry_timestamp_seconds', help: "When the venue's dead-man switch cancels our orders unless renewed (0 when not armed).", registers });

    this.#alerts = new Counter({ name: 'keel_alerts_sent_total', help: 'Alerts sent, by channel and severity.', labelNames: ['channel', 'severity'], registers });
    for (const channel of ALERT_CHANNELS) for (const severity of ALERT_SEVERITIES) this.#alerts.inc({ channel, severity }, 0);
  }

  /** The exposition's Content-Type (Prometheus text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text for `GET /metrics`. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  // ── mode and actors ───────────────────────────────────────────────────────────────────

  /** Sets the current mode; a change from the previously set mode counts one transition (the first call, a restored boot, counts none). */
  setMode(mode: Mode): void {
    if (!(MODES as readonly string[]).includes(mode)) return;
    const previous = this.#mode;
    this.#mode = mode;
    for (const m of MODES) this.#modeGauge.set({ mode: m }, m === mode ? 1 : 0);
    if (previous !== undefined && previous !== mode) this.#modeTransitions.inc({ from: previous, to: mode });
  }

  actorUp(actor: MetricActor, up: boolean): void {
    this.#actorUp.set({ actor: pick(METRIC_ACTORS, actor) }, up ? 1 : 0);
  }

  actorRestarted(actor: MetricActor): void {
    this.#actorRestarts.inc({ actor: pick(METRIC_ACTORS, actor) });
  }

  // ── feed ──────────────────────────────────────────────────────────────────────────────

  /** One message received on `source` (`atMs` from the injected clock): counts it and resets that path's age. */
  feedMessage(source: MetricFeedSource, channel: FeedChannel, atMs: number): void {
    const s = pick(FEED_SOURCES, source);
    if (s === OTHER) return;
    this.#feedMessages.inc({ source: s, channel: pick(FEED_CHANNELS, channel) });
    if (Number.isFinite(atMs) && atMs > (this.#lastFeedAt.get(s) ?? -Infinity)) this.#lastFeedAt.set(s, atMs);
  }

  /** The path the market feed uses now. */
  setFeedPath(path: MetricFeedPath): void {
    const p = pick(FEED_PATHS, path);
    for (const source of FEED_PATHS) this.#feedSource.set({ source }, source === p ? 1 : 0);
  }

  // ── orders, risk, fills ───────────────────────────────────────────────────────────────

  /** An order entered `status` (count each transition once). */
  orderStatus(status: OrderState): void {
    this.#orders.inc({ status: pick(ORDER_STATES, status) });
  }

  /** The venue (or the resilient venue before sending) refused an order with `error`. */
  orderRejected(error: string): void {
    this.#rejections.inc({ reason: rejectionReason(error) });
  }

  riskDenied(reason: DenialReason): void {
    this.#denials.inc({ reason: pick(DENIAL_REASONS, reason) });
  }

  /** From the tick (market data receive time) that produced the signal to the order being sent. */
  observeTickToOrderMs(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.#tickToOrder.observe(ms / 1000);
  }

  /** From sending an order to the venue's answer (resting, filled, rejected). */
  observeOrderAckMs(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.#orderAck.observe(ms / 1000);
  }

  fill(fill: { readonly coin: Coin; readonly side: Side }): void {
    const side = pick(SIDES, fill.side);
    if (side !== OTHER) this.#fills.inc({ coin: this.#coin(fill.coin), side });
  }

  // ── account ───────────────────────────────────────────────────────────────────────────

  /**
   * The positions now: configured coins absent from `positions` are set flat. Coins outside the
   * configuration are summed under `other` (a position keel did not open is still money at risk).
   */
  setPositions(positions: readonly PositionSample[]): void {
    const size = new Map<string, number>();
    const notional = new Map<string, number>();
    for (const c of [...this.coins, OTHER]) {
      size.set(c, 0);
      notional.set(c, 0);
    }
    for (const p of positions) {
      const c = this.#coin(p.coin);
      const s = num(p.szi);
      const n = Math.abs(num(p.notionalUsd));
      if (Number.isFinite(s)) size.set(c, size.get(c)! + s);
      if (Number.isFinite(n)) notional.set(c, notional.get(c)! + n);
    }
    for (const [coin, v] of size) this.#positionSize.set({ coin }, v);
    for (const [coin, v] of notional) this.#positionNotional.set({ coin }, v);
  }

  setEquityUsd(usd: Decimal | number): void {
    this.#setFinite(this.#equity, num(usd));
  }

  /** Drawdown from the peak as a ratio (0.05 for 5 %). */
  setDrawdownRatio(ratio: Decimal | number): void {
    this.#setFinite(this.#drawdown, num(ratio));
  }

  setDailyPnlUsd(usd: Decimal | number): void {
    this.#setFinite(this.#dailyPnl, num(usd));
  }

  // ── venue plumbing ────────────────────────────────────────────────────────────────────

  /**
   * Reads breaker states and opossum's window counters at each scrape, and counts every breaker
   * transition. Returns the detach (also done by `close`).
   */
  attachVenue(venue: BreakerSource): () => void {
    this.#breakers = venue;
    const off = venue.onBreakerChange((c) => {
      const endpoint = pick(BREAKER_ENDPOINTS, c.breaker);
      const to = pick(BREAKER_STATES, c.state);
      if (endpoint !== OTHER && to !== OTHER) this.#breakerTransitions.inc({ endpoint, to });
    });
    const detach = () => {
      off();
      if (this.#breakers === venue) this.#breakers = undefined;
    };
    this.#detach.push(detach);
    return detach;
  }

  /** Reads the weight budget (available, capacity, 429 count) at each scrape. */
  attachBudget(budget: BudgetSource): () => void {
    this.#budget = budget;
    this.#budgetSeen = { rateLimited: budget.stats().rateLimited };
    const detach = () => {
      if (this.#budget === budget) this.#budget = undefined;
    };
    this.#detach.push(detach);
    return detach;
  }

  /**
   * Reads the black-box recorder's counters at each scrape: drops, failed flushes, the pending
   * backlog, and flush latency. The recorder keeps only totals, so the flushes since the last
   * scrape are observed at their mean latency (exact when there was one); the histogram's
   * count and sum stay exact, its buckets approximate within one scrape.
   */
  attachBlackbox(recorder: BlackboxSource): () => void {
    this.#blackbox = recorder;
    const s = recorder.stats();
    this.#blackboxSeen = { dropped: s.dropped, flushes: s.flushes, flushErrors: s.flushErrors, totalFlushMs: s.totalFlushMs };
    const detach = () => {
      if (this.#blackbox === recorder) this.#blackbox = undefined;
    };
    this.#detach.push(detach);
    return detach;
  }

  /** One event recorded in the black box. */
  blackboxEvent(kind: BlackboxEventKind): void {
    const k = pick(BLACKBOX_EVENT_KINDS, kind);
    if (k !== OTHER) this.#bbEvents.inc({ kind: k });
  }

  // ── reconciliation ────────────────────────────────────────────────────────────────────

  /** A reconciliation run finished with `report` (at `atMs`, default now). */
  reconciliationRun(report: Pick<ReconcileReport, 'clean' | 'counts' | 'pending'>, atMs: number = this.#now()): void {
    this.#reconRuns.inc({ result: report.clean ? 'clean' : 'dirty' });
    for (const kind of RECONCILE_ACTION_TYPES) {
      const n = report.counts[kind];
      if (Number.isFinite(n) && n > 0) this.#reconDiffs.inc({ kind }, n);
    }
    if (report.pending.length > 0) this.#reconDiffs.inc({ kind: 'pending' }, report.pending.length);
    this.#setFinite(this.#reconLast, atMs / 1000);
  }

  /** A reconciliation run could not complete (venue or database error). */
  reconciliationFailed(atMs: number = this.#now()): void {
    this.#reconRuns.inc({ result: 'error' });
    this.#setFinite(this.#reconLast, atMs / 1000);
  }

  // ── health ────────────────────────────────────────────────────────────────────────────

  dbError(): void {
    this.#dbErrors.inc();
  }

  setEventLoopDelayMs(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.#eventLoopDelay.set(ms / 1000);
  }

  /** The dead-man switch's expiry (ms since the epoch), or undefined when it is disarmed. */
  setDeadmanExpiry(atMs: number | undefined): void {
    this.#deadman.set(atMs !== undefined && Number.isFinite(atMs) ? atMs / 1000 : 0);
  }

  alertSent(channel: AlertChannel, severity: AlertSeverity): void {
    const ch = pick(ALERT_CHANNELS, channel);
    const sev = pick(ALERT_SEVERITIES, severity);
    if (ch !== OTHER && sev !== OTHER) this.#alerts.inc({ channel: ch, severity: sev });
  }

  /** Detaches every attached source (listeners included). The registry stays readable. */
  close(): void {
    for (const d of this.#detach.splice(0)) d();
  }

  // ── internals ─────────────────────────────────────────────────────────────────────────

  #coin(coin: Coin): string {
    return this.coins.includes(coin) ? coin : OTHER;
  }

  #setFinite(g: Gauge, v: number): void {
    if (Number.isFinite(v)) g.set(v);
  }

  #collectFeedAge(): void {
    const now = this.#now();
    for (const source of FEED_SOURCES) this.#feedAge.set({ source }, Math.max(0, (now - (this.#lastFeedAt.get(source) ?? this.#createdAt)) / 1000));
  }

  #collectBreakers(): void {
    const b = this.#breakers;
    if (!b) return;
    // A source that throws must not fail the whole scrape: keep the last values.
    try {
      const states = b.breakerStates();
      const stats = b.breakerStats();
      for (const endpoint of BREAKER_ENDPOINTS) {
        for (const state of BREAKER_STATES) this.#breakerState.set({ endpoint, state }, states[endpoint] === state ? 1 : 0);
        for (const event of BREAKER_WINDOW_EVENTS) this.#breakerWindow.set({ endpoint, event }, stats[endpoint][event]);
      }
    } catch {
      // Stale values beat a failed scrape; the venue logs its own faults.
    }
  }

  #collectBudget(): void {
    const b = this.#budget;
    if (!b) return;
    try {
      const s = b.stats();
      this.#weightAvailable.set(s.available);
      this.#weightCapacity.set(s.capacity);
      const d = s.rateLimited - this.#budgetSeen.rateLimited;
      if (d > 0) this.#rateLimited.inc(d);
      this.#budgetSeen = { rateLimited: s.rateLimited };
    } catch {
      // See #collectBreakers.
    }
  }

  #collectBlackbox(): void {
    const r = this.#blackbox;
    if (!r) return;
    try {
      const s = r.stats();
      const seen = this.#blackboxSeen;
      const dropped = s.dropped - seen.dropped;
      const errors = s.flushErrors - seen.flushErrors;
      const flushes = s.flushes - seen.flushes;
      const ms = s.totalFlushMs - seen.totalFlushMs;
      if (dropped > 0) this.#bbDropped.inc(dropped);
      if (errors > 0) this.#bbWriteErrors.inc(errors);
      if (flushes === 1) this.#bbWrite.observe(s.lastFlushMs / 1000);
      else if (flushes > 1) for (let i = 0; i < flushes; i++) this.#bbWrite.observe(Math.max(0, ms) / flushes / 1000);
      this.#bbPending.set(s.pending);
      this.#blackboxSeen = { dropped: s.dropped, flushes: s.flushes, flushErrors: s.flushErrors, totalFlushMs: s.totalFlushMs };
    } catch {
      // See #collectBreakers.
    }
  }
}
