/**
 * The runtime's composition root: it builds every part in a fixed, readable order (logging and
 * clock, store, venue, bus, then the supervisor with its children) and provides the supervisor
 * machine's actors. Boot is recovery: migrate → load state → reconcile our own orders and fills
 * with the venue → start the children. Cold start and crash restart take this one path.
 *
 * Children (each a callback actor the supervisor restarts on failure):
 *   marketFeed   machines/market-feed.machine.ts over the venue's WebSocket / REST actors
 *   strategy     one Strategy per market, fed closed candles, publishing signals
 *   risk         machines/risk.machine.ts (the gate) plus the pure pre-trade checks
 *   orderManager supervisor/order-manager.ts: order actors per cloid, fills, protection
 */
import path from 'node:path';
import { createActor, fromPromise, type Actor } from 'xstate';
import { ethers } from 'ethers';
import { readFileSync } from 'node:fs';
import { supervisorMachine, SupervisorEvents } from '../machines/supervisor.machine.ts';
import { createMarketFeedMachine } from './feed-wiring.ts';
import { riskGateMachine, RiskEmitted, RiskEvents, gateOf, type PersistedRiskGate, type RiskGateChanged } from '../machines/risk.machine.ts';
import { MARKET_FEED_EMITTED, type MarketFeedEmitted } from '../machines/market-feed.machine.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { createHyperliquidVenue, VenueError, type HyperliquidVenue } from '../src/venue/index.ts';
import { createStrategy, type Strategy } from '../src/strategy/index.ts';
import { evaluateSignal, parseRiskConfig, sizeMultiplierFor, utcDayStart, type RiskConfig, type RiskContext, type RiskPosition, type WorkingEntries } from '../src/domain/risk.ts';
import { ZERO, Decimal } from '../src/domain/decimal.ts';
import { isProtected } from '../src/domain/protection.ts';
import { WeightBudget } from '../src/venue/weight-budget.ts';
import { createResilientVenue, type ResilientVenue } from '../src/venue/resilient-venue.ts';
import { effectsOf, ModeEvents } from '../machines/mode.machine.ts';
import { ModeKeeper } from './mode-keeper.ts';
import { KeelMetrics } from '../src/ops/metrics.ts';
import { startOperatorAlerts, alertForModeChange } from '../src/ops/alerts-wiring.ts';
import { CHILDREN, type ChildId } from '../machines/supervisor.machine.ts';
import { watchdogMachine, WatchdogEvents, WatchdogEmitted, isModeFact, parseWatchdogConfig } from '../machines/watchdog.machine.ts';
import { RuntimeLease, holderId, deadLocalRuntime } from '../src/ops/watchdog-lease.ts';
import { leasesOf } from '../src/store/lease-repository.ts';
import { WatchdogSampler, FeedAgeTracker } from '../src/ops/watchdog-sampler.ts';
import { DeadManKeeper, parseDeadManConfig } from '../src/ops/watchdog-deadman.ts';
import { BlackboxRecorder } from '../src/store/blackbox-recorder.ts';
import { runReconciliation, type ReconcileRun } from './reconciler.ts';
import { flatten, flattenReportToJson, type FlattenReport } from '../src/ops/flatten.ts';
import { createOidCanceller } from '../src/cli/flatten-command.ts';
import { flattenJournal } from '../src/ops/flatten-journal.ts';
import type { ControlCall } from '../src/ops/http-server.ts';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import type { AccountState, Cloid, Coin, Instrument, Mode, Position, Signal } from '../src/domain/types.ts';
import type { KeelConfig } from '../src/config/config.ts';
import type { Logger } from '../src/ops/logger.ts';
import { startOpsServer, type OpsServer } from '../src/ops/http-server.ts';
import { Bus } from './bus.ts';
import { longLived } from './long-lived.ts';
import { OrderManager } from './order-manager.ts';
import { setUpPaper } from './paper.ts';

export interface Runtime {
  /** Resolves with the process exit code once the supervisor has finished. */
  readonly done: Promise<number>;
  readonly ops: OpsServer;
  readonly store: Store;
  readonly venue: ResilientVenue;
  readonly mode: ModeKeeper;
  readonly apiUrl: string;
  readonly account: string;
  status(): unknown;
  stop(reason: string): Promise<number>;
}

const MAINNET_URL = 'https://api.hyperliquid.xyz';
const TESTNET_URL = 'https://api.hyperliquid-testnet.xyz';

async function agentWallet(cfg: KeelConfig): Promise<ethers.Wallet> {
  if (cfg.keystore) {
    if (!cfg.keystorePasswordFile) throw new Error('KEEL_KEYSTORE_PASSWORD_FILE is required with KEEL_KEYSTORE');
    const json = readFileSync(cfg.keystore, 'utf8');
    const password = readFileSync(cfg.keystorePasswordFile, 'utf8').trimEnd();
    const w = await ethers.Wallet.fromEncryptedJson(json, password);
    return new ethers.Wallet(w.privateKey);
  }
  if (cfg.privateKey) return new ethers.Wallet(cfg.privateKey);
  throw new Error('no agent key: set KEEL_KEYSTORE (+ KEEL_KEYSTORE_PASSWORD_FILE) or, off mainnet, KEEL_PRIVATE_KEY');
}

/**
 * Boot reads the venue before anything can trade; a query that fails for a transient reason
 * (transport, rate limit) is retried with a doubling backoff instead of failing the boot, since a
 * crash restart must come back through a flaky network. Only queries: they are safe to repeat.
 */
async function retryQuery<T>(what: string, fn: () => Promise<T>, log: Logger, attempts = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const transient = !(e instanceof VenueError) || e.kind === 'transport' || e.kind === 'rate_limited';
      if (!transient || i >= attempts) throw e;
      const waitMs = Math.min(4_000, 250 * 2 ** (i - 1));
      log.warn({ what, attempt: i, waitMs, err: (e as Error).message }, 'venue query failed at boot; retrying');
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

/** The account view risk and status read: refreshed by polling, updated with mids. */
class Portfolio {
  account: AccountState | undefined;
  mids = new Map<Coin, Decimal>();
  recentOrderTimes: number[] = [];
  feedSource = 'none';
  feedStale = false;
}

export async function startRuntime(cfg: KeelConfig, log: Logger, opts: { now?: () => number } = {}): Promise<Runtime> {
  const now = opts.now ?? Date.now;

  // Venue identity first: paper sets up its own simulator and throwaway keys.
  let apiUrl: string;
  let wallet: ethers.Wallet;
  let account: string;
  let closeSim: (() => Promise<void>) | undefined;
  if (cfg.network === 'paper') {
    const paper = await setUpPaper(cfg, log);
    apiUrl = paper.apiUrl;
    wallet = paper.agent;
    account = paper.account;
    if (paper.sim) closeSim = () => paper.sim!.close();
  } else {
    apiUrl = cfg.apiUrl ?? (cfg.network === 'mainnet' ? MAINNET_URL : TESTNET_URL);
    wallet = await agentWallet(cfg);
    account = cfg.account!;
  }

  const store = await openStore({ path: path.join(cfg.dataDir, 'keel.sqlite'), clock: now });
  const rawVenue: HyperliquidVenue = createHyperliquidVenue({ network: cfg.network, apiUrl, wallet, account, timeoutMs: cfg.orders.submitTimeoutMs, now, log: log.child({ component: 'venue' }) });
  // Every venue call pays its request weight (a budget under Hyperliquid's IP limit, shared with
  // nothing else in this process) and goes through its endpoint's circuit breaker.
  const budget = new WeightBudget({ margin: 0.15, seed: cfg.paper.seed });
  const venue: ResilientVenue = createResilientVenue(rawVenue, {
    budget,
    now,
    log: log.child({ component: 'breakers' }),
    breakers: { info: { timeoutMs: cfg.orders.submitTimeoutMs - 500 }, exchange: { timeoutMs: cfg.orders.submitTimeoutMs - 500 } },
  });
  const modeKeeper = new ModeKeeper({ store, log: log.child({ component: 'mode' }), now, config: cfg.mode });
  const metrics = new KeelMetrics({ coins: cfg.markets, network: cfg.network, now });
  metrics.attachVenue(venue);
  metrics.attachBudget(budget);
  metrics.setMode(modeKeeper.mode);
  modeKeeper.onChange((e) => metrics.setMode(e.to));

  // The black box: every input and decision, hash-chained (src/store/blackbox-*.ts).
  // Retention: 30 days or 5 million rows (~1–2 GB), whichever comes first; the oldest rows go, the
  // chain still verifies. (A byte limit would make every open sum the table: rows are the proxy.)
  const blackbox = new BlackboxRecorder(store.raw, { clock: now, retention: { maxAgeMs: 30 * 86_400_000, maxRows: 5_000_000 } });
  metrics.attachBlackbox(blackbox);
  const record = (kind: 'input' | 'decision', type: string, payload: unknown, durable = false): void => {
    try {
      if (durable) blackbox.recordDurable(kind, type, payload, now());
      else blackbox.record(kind, type, payload, now());
      metrics.blackboxEvent(kind);
    } catch (e) {
      metrics.dbError();
      log.error({ err: (e as Error).message, type }, 'black box write failed');
    }
  };
  modeKeeper.onChange((e) => record('decision', 'mode.transition', { from: e.from, to: e.to, reason: e.reason }, true));

  // The trading lease: the independent watchdog acts only when this process stops renewing it.
  const lease = new RuntimeLease({
    leases: leasesOf(store),
    holder: holderId('runtime'),
    now,
    ttlMs: 10_000,
    renewEveryMs: 2_000,
    onWrite: (e) => watchdog.send(e),
    onLost: (cur) => {
      log.fatal({ holder: cur.holder, epoch: cur.epoch }, 'trading lease lost: another process acts on the account; stopping');
      accepting = false;
      orderManager?.stopAccepting();
      supervisor.send({ type: SupervisorEvents.STOP, reason: 'lease lost' });
    },
  });

  // The watchdog: heartbeats of every child, event-loop delay, feed age, DB writes, memory.
  const wdCfg = parseWatchdogConfig({ actors: [...CHILDREN] });
  const watchdog = createActor(watchdogMachine, { input: { now: now(), ...(wdCfg.ok ? { config: wdCfg.config } : {}) } });
  const failChild = new Map<ChildId, (e: unknown) => void>();
  const deadManCfg = parseDeadManConfig(cfg.deadMan);
  if (!deadManCfg.ok) throw new Error(`deadMan config: ${deadManCfg.error}`);
  const deadMan = new DeadManKeeper({
    venue,
    now,
    config: deadManCfg.config,
    log: log.child({ component: 'deadman' }),
    triggerLog: { load: () => (store.state.getJson('deadman_triggers') as number[] | undefined) ?? [], save: (t) => store.state.setJson('deadman_triggers', t) },
  });
  watchdog.on('*', (e) => {
    if (isModeFact(e)) {
      if (e.type === ModeEvents.DB_WRITE_ERROR) metrics.dbError();
      if (e.type === ModeEvents.EVENT_LOOP_DELAY) metrics.setEventLoopDelayMs(e.ms);
      modeKeeper.fact(e);
      return;
    }
    switch (e.type) {
      case WatchdogEmitted.ACTOR_STALLED:
        log.error({ actor: e.actor, silentForMs: e.silentForMs, stalls: e.stalls }, 'actor stalled');
        break;
      case WatchdogEmitted.RESTART_ACTOR:
        failChild.get(e.actor as ChildId)?.(new Error(`stalled: no heartbeat from ${e.actor}`));
        break;
      case WatchdogEmitted.DEAD_MAN_HEALTH:
        void deadMan.setHealthy(e.healthy, e.reason);
        break;
      case WatchdogEmitted.MEMORY:
        log[e.high ? 'error' : 'info']({ rssBytes: e.rssBytes }, e.high ? 'memory high' : 'memory back to normal');
        break;
    }
  });
  watchdog.start();
  const got = lease.acquire({ preempt: deadLocalRuntime });
  if (!got.ok) throw new Error(`another process holds the trading lease (${got.current.holder}): not starting`);
  lease.start();
  const feedAges = new FeedAgeTracker();
  const sampler = new WatchdogSampler({ send: (e) => watchdog.send(e), now, feed: () => feedAges.snapshot() });

  /** A supervised child that beats its heartbeat every second while `alive()` says it progresses. */
  const supervised = (id: ChildId, start: (fail: (e: unknown) => void) => { cleanup: () => void; alive: () => boolean }) =>
    longLived((fail) => {
      failChild.set(id, fail);
      const beat = () => watchdog.send({ type: WatchdogEvents.HEARTBEAT, actor: id, at: now() });
      beat();
      const child = start(fail);
      const timer = setInterval(() => {
        if (child.alive()) beat();
      }, 1_000);
      return () => {
        clearInterval(timer);
        failChild.delete(id);
        watchdog.send({ type: WatchdogEvents.UNWATCH, actor: id, at: now() });
        child.cleanup();
      };
    });
  venue.onBreakerChange((c) => {
    log[c.state === 'open' ? 'error' : 'info']({ breaker: c.breaker, state: c.state, previous: c.previous }, `circuit breaker ${c.breaker} ${c.state}`);
    if (c.state === 'open') modeKeeper.fact({ type: ModeEvents.BREAKER_OPEN, endpoint: c.breaker });
    else if (c.state === 'closed') modeKeeper.fact({ type: ModeEvents.BREAKER_CLOSED, endpoint: c.breaker });
  });
  const riskParsed = parseRiskConfig(cfg.risk);
  if (!riskParsed.ok) throw new Error(`risk config: ${riskParsed.error}`);
  const riskCfg: RiskConfig = riskParsed.config;
  const bus = new Bus((topic, e) => log.error({ topic, err: e }, 'bus handler failed'));
  const portfolio = new Portfolio();
  const instruments = new Map<Coin, Instrument>();
  let orderManager: OrderManager | undefined;
  /** False once draining or escalated: a rebuilt order manager must not take entries either. */
  let accepting = true;
  let draining = false;
  /** Coins the last protection check found bare (the watch acts on the second sighting). */
  let seenBare = new Set<Coin>();
  let reconciled = false;
  let lastReconcile: unknown;
  let gateActor: Actor<typeof riskGateMachine> | undefined;
  const strategies = new Map<Coin, Strategy>();
  log.info({ network: cfg.network, url: apiUrl, account, agent: wallet.address.toLowerCase(), dataDir: cfg.dataDir }, 'keel starting');

  async function refreshAccount(): Promise<void> {
    const acct = await venue.accountState();
    portfolio.account = acct;
    // Drawdown from the highest equity seen (persisted: a restart does not forget the peak).
    const peakStored = store.state.getJson('peak_equity');
    const peak = Decimal.max(acct.accountValue, new Decimal(typeof peakStored === 'string' ? peakStored : acct.accountValue.toFixed()));
    if (typeof peakStored !== 'string' || !peak.eq(peakStored)) store.state.setJson('peak_equity', peak.toFixed());
    const pct = peak.gt(0) ? peak.minus(acct.accountValue).div(peak).times(100).toNumber() : 0;
    modeKeeper.fact({ type: ModeEvents.DRAWDOWN, pct });
    const day = store.state.getJson('day_start') as { equity: string } | undefined;
    metrics.setEquityUsd(acct.accountValue);
    metrics.setDrawdownRatio(pct / 100);
    if (day) metrics.setDailyPnlUsd(acct.accountValue.minus(day.equity));
    metrics.setPositions(acct.positions.map((p) => ({ coin: p.coin, szi: p.szi, notionalUsd: p.szi.abs().times(portfolio.mids.get(p.coin) ?? p.entryPx) })));
  }

  function newOrderManager(): OrderManager {
    const m = new OrderManager({
      store,
      venue,
      bus,
      log: log.child({ component: 'orders' }),
      instruments,
      now,
      orderConfig: cfg.orders,
      observer: {
        orderState: (intent, state, error, sentAt) => {
          metrics.orderStatus(state);
          if (state === 'intent') record('decision', 'order.intent', intent, true);
          else record('input', 'order.state', { cloid: intent.cloid, state, error });
          if (state === 'rejected' && error) metrics.orderRejected(error);
          if (sentAt !== undefined && state !== 'submitting' && state !== 'intent' && state !== 'unknown') metrics.observeOrderAckMs(now() - sentAt);
        },
        fill: (f) => metrics.fill(f),
      },
    });
    if (!accepting) m.stopAccepting();
    return m;
  }

  // ── protection of every venue position (the worst failure is a position without a stop) ──
  /** A stop of ours for `coin` that may still reach the venue: its position is not bare yet. */
  function stopOnItsWay(coin: Coin): boolean {
    return store.orders.unresolved().some((o) => o.coin === coin && o.kind === 'stop_loss' && (o.state === 'intent' || o.state === 'submitting' || o.state === 'unknown'));
  }

  /** Venue positions no open reduce-only stop on the venue covers in full. */
  async function barePositions(): Promise<Position[]> {
    const [acct, open, mids] = await Promise.all([venue.accountState(), venue.openOrders(), venue.mids()]);
    // The venue does not say which trigger is a stop; our own records do (else the mark decides).
    const views = open.map((o) => {
      const rec = o.cloid ? store.orders.byCloid(o.cloid) : undefined;
      return rec?.trigger ? { ...o, tpsl: rec.trigger.tpsl } : o;
    });
    return acct.positions.filter((p) => !p.szi.isZero() && !isProtected(p, views, mids.get(p.coin)));
  }

  /**
   * Gives every bare venue position a stop through the order manager. At boot (after the crash's
   * in-flight orders settled) it acts at once, leaving positions whose protection the order
   * manager is still planning (stage 'unprotected'); the periodic watch acts on a coin seen bare
   * twice in a row.
   */
  async function protectBarePositions(when: 'boot' | 'watch'): Promise<Cloid[]> {
    const bare = await barePositions();
    const before = seenBare;
    seenBare = new Set(bare.map((p) => p.coin));
    const todo = bare.filter((p) => !stopOnItsWay(p.coin) && (when === 'boot' ? store.positions.get(p.coin)?.stage !== 'unprotected' : before.has(p.coin)));
    if (todo.length === 0 || !orderManager || draining) return [];
    const cloids = todo.map((p) => orderManager!.ensureStop(p)).filter((c): c is Cloid => c !== undefined);
    seenBare = new Set();
    return cloids;
  }

  // ── boot: config → migrate (done by openStore) → load state → reconcile ──────────────────
  async function boot(): Promise<{ bootedAt: number }> {
    const all = await retryQuery('instruments', () => venue.instruments(), log);
    for (const i of all) if (cfg.markets.includes(i.coin)) instruments.set(i.coin, i);
    const missing = cfg.markets.filter((m) => !instruments.has(m));
    if (missing.length) throw new Error(`markets not listed by the venue: ${missing.join(', ')}`);
    await retryQuery('account state', refreshAccount, log);
    const day = utcDayStart(now());
    const stored = store.state.getJson('day_start') as { day: number; equity: string } | undefined;
    if (!stored || stored.day !== day) store.state.setJson('day_start', { day, equity: portfolio.account!.accountValue.toFixed() });
    // Our own unresolved intents come back as order actors that resolve by cloid; fills missed
    // while we were down are applied before anything new is sent.
    orderManager = newOrderManager();
    const unresolved = store.orders.unresolved();
    orderManager.start();
    const since = Math.max(0, (store.state.get('last_fill_time') ?? now() - 86_400_000) - 60_000);
    const missed = await retryQuery('fills', () => venue.fills(since), log);
    orderManager.onFills(missed);
    // Orders a crash left in flight resolve by cloid (bounded by their expiry): only then can we
    // tell which positions the venue holds without a stop, and give each one.
    if (unresolved.length) await orderManager.drain(cfg.orders.expiresAfterMs + 5_000);
    const rescued = await retryQuery('protection check', () => protectBarePositions('boot'), log);
    // The complete comparison (orders ours and external, fills, positions) decides whether keel
    // may open anything: an unclean report keeps the mode out of Normal until it is clean.
    const recon = await retryQuery('reconciliation', () => reconcileNow(false), log);
    const theirs = new Map(portfolio.account!.positions.map((p) => [p.coin, p.szi]));
    const ours = new Map(store.positions.all().map((p) => [p.coin, p.szi]));
    const mismatches = [...new Set([...theirs.keys(), ...ours.keys()])].filter((c) => !(theirs.get(c) ?? ZERO).eq(ours.get(c) ?? ZERO)).map((c) => ({ coin: c, venue: (theirs.get(c) ?? ZERO).toFixed(), ours: (ours.get(c) ?? ZERO).toFixed() }));
    lastReconcile = { at: now(), clean: recon.report.clean, summary: recon.report.summary, counts: recon.report.counts, unresolvedIntents: unresolved.length, missedFills: missed.length, positionMismatches: mismatches, stopsCommittedForBarePositions: rescued };
    if (mismatches.length) log.warn({ mismatches }, 'reconciliation: positions differ from the venue (the resilience work adopts them)');
    log.info(lastReconcile as object, 'reconciled with the venue');
    reconciled = true;
    // The exchange's dead-man switch: if keel dies, the venue cancels its resting orders.
    const armed = await deadMan.start();
    if (armed.kind !== 'armed') log.error(armed as object, 'dead-man switch not armed yet (retrying)');
    sampler.start();
    return { bootedAt: now() };
  }

  // ── children ──────────────────────────────────────────────────────────────────────────────
  const marketFeed = supervised('marketFeed', () => {
    const feed = createActor(createMarketFeedMachine(venue, now), {
      input: { coins: cfg.markets, intervals: [cfg.feed.baseInterval], staleAfterMs: cfg.feed.staleAfterMs, pollIntervalMs: cfg.feed.pollIntervalMs },
    });
    feed.on('*', (e) => {
      const ev = e as MarketFeedEmitted;
      switch (ev.type) {
        case MARKET_FEED_EMITTED.candleClosed:
          metrics.feedMessage(ev.source, 'candles', ev.at);
          feedAges.seen(ev.source, ev.at);
          record('input', 'feed.candle', { ...ev.candle, source: ev.source });
          log.debug({ coin: ev.candle.coin, t: ev.candle.t, c: ev.candle.c, source: ev.source }, 'candle closed');
          bus.publish('candle.closed', ev.candle);
          break;
        case MARKET_FEED_EMITTED.mids:
          metrics.feedMessage(ev.source, 'mids', ev.at);
          feedAges.seen(ev.source, ev.at);
          for (const [c, px] of ev.mids) portfolio.mids.set(c, px);
          bus.publish('mids', ev.mids);
          break;
        case MARKET_FEED_EMITTED.sourceChanged:
          portfolio.feedSource = ev.to;
          metrics.setFeedPath(ev.to);
          if (ev.to === 'rest') modeKeeper.fact({ type: ModeEvents.WS_DOWN });
          else if (ev.to === 'ws') modeKeeper.fact({ type: ModeEvents.WS_UP });
          log.warn({ from: ev.from, to: ev.to, reason: ev.reason }, 'market feed source changed');
          bus.publish('feed.source', { from: ev.from, to: ev.to });
          break;
        case MARKET_FEED_EMITTED.stale:
          portfolio.feedStale = ev.stale;
          modeKeeper.fact({ type: ModeEvents.FEED_STALE, stale: ev.stale });
          log[ev.stale ? 'error' : 'info']({ lastMessageAt: ev.lastMessageAt }, ev.stale ? 'market feed stale on both paths' : 'market feed fresh again');
          break;
      }
    });
    feed.start();
    return { cleanup: () => feed.stop(), alive: () => feed.getSnapshot().status === 'active' };
  });

  const strategy = supervised('strategy', (fail) => {
    let stopped = false;
    let live = false;
    const backlog: Parameters<Strategy['onCandle']>[0][] = [];
    const onCandle = (c: Parameters<Strategy['onCandle']>[0]) => {
      const s = strategies.get(c.coin);
      if (!s || !s.intervals.includes(c.interval)) return;
      const signal = s.onCandle(c);
      if (signal && live) {
        record('decision', 'strategy.signal', signal);
        log.info({ coin: signal.coin, direction: signal.direction, refPx: signal.refPx.toFixed(), stopPx: signal.stopPx.toFixed(), takeProfitPx: signal.takeProfitPx.toFixed(), strategy: signal.strategy, reason: signal.reason }, 'signal');
        bus.publish('signal', signal);
      }
    };
    const unsub = bus.on('candle.closed', (c) => (live ? onCandle(c) : backlog.push(c)));
    void (async () => {
      for (const inst of instruments.values()) {
        const r = createStrategy(cfg.strategy.name, cfg.strategy.params, inst);
        if (!r.ok) throw new Error(r.error.message);
        strategies.set(inst.coin, r.strategy);
        // Warm-up on history: indicators need it; signals from history are not acted on.
        const bars = r.strategy.warmupBars + 5;
        const history = await venue.candles(inst.coin, cfg.feed.baseInterval, now() - bars * 60_000 * 2);
        // Recorded so `keel replay` rebuilds the same indicator state before the live candles.
        record('input', 'feed.history', { coin: inst.coin, instrument: inst, strategy: cfg.strategy, candles: history.filter((c) => c.closed) });
        for (const c of history) if (c.closed) r.strategy.onCandle(c);
        log.info({ coin: inst.coin, strategy: r.strategy.name, warmupBars: history.length }, 'strategy warmed up');
      }
      if (stopped) return;
      live = true;
      for (const c of backlog.splice(0)) onCandle(c);
    })().catch(fail);
    return {
      cleanup: () => {
        stopped = true;
        unsub();
      },
      alive: () => !stopped,
    };
  });

  function riskContext(signal: Signal, inst: Instrument): RiskContext {
    const acct = portfolio.account;
    const equity = acct?.accountValue ?? ZERO;
    const day = store.state.getJson('day_start') as { equity: string } | undefined;
    const positions: RiskPosition[] = (acct?.positions ?? []).map((p) => ({ coin: p.coin, szi: p.szi, entryPx: p.entryPx, notional: p.szi.abs().times(portfolio.mids.get(p.coin) ?? p.entryPx) }));
    const working = new Map<string, WorkingEntries>();
    for (const o of store.orders.open()) {
      if (o.kind !== 'entry') continue;
      const k = `${o.coin}|${o.side}`;
      const w = working.get(k);
      working.set(k, { coin: o.coin, side: o.side, count: (w?.count ?? 0) + 1, notional: (w?.notional ?? ZERO).plus(o.sz.times(o.px)) });
    }
    const t = now();
    portfolio.recentOrderTimes = portfolio.recentOrderTimes.filter((x) => t - x < 60_000);
    const dayStart = new Decimal(day?.equity ?? equity.toFixed());
    return {
      gate: gateActor ? gateOf(gateActor.getSnapshot()) : 'halted',
      instrument: inst,
      markPx: portfolio.mids.get(signal.coin),
      equity,
      dayStartEquity: dayStart,
      marginUsed: acct?.totalMarginUsed ?? ZERO,
      positions,
      workingEntries: [...working.values()],
      pnlToday: equity.minus(dayStart),
      recentOrderTimes: portfolio.recentOrderTimes,
      now: t,
      sizeMultiplier: sizeMultiplierFor(modeKeeper.mode, riskCfg),
    };
  }

  const risk = supervised('risk', () => {
    const restore = store.state.getJson('risk_gate') as PersistedRiskGate | undefined;
    gateActor = createActor(riskGateMachine, { input: { now: now(), ...(restore ? { restore } : {}) } });
    gateActor.on(RiskEmitted.GATE_CHANGED, (e: RiskGateChanged) => {
      store.state.setJson('risk_gate', e.persisted);
      store.state.set('gate', e.to);
      log.warn({ from: e.from, to: e.to, reason: e.reason }, 'trading gate changed');
    });
    gateActor.start();
    // The gate follows the mode: reduce-only in Critical, halted in Emergency.
    applyModeToGate(modeKeeper.mode);
    const unsub = bus.on('signal', (signal) => {
      const inst = instruments.get(signal.coin);
      if (!inst) return;
      // Degraded allows no new markets: an entry into a coin without a position waits for Normal.
      const effects = effectsOf(modeKeeper.mode);
      const hasPosition = (portfolio.account?.positions ?? []).some((p) => p.coin === signal.coin && !p.szi.isZero());
      if (!effects.allowNewMarkets && effects.allowNewEntries && !hasPosition) {
        record('decision', 'mode.entryDenied', { coin: signal.coin, reason: 'mode_no_new_markets', mode: modeKeeper.mode });
        log.info({ coin: signal.coin, direction: signal.direction, approved: false, reason: 'mode_no_new_markets', mode: modeKeeper.mode }, 'risk verdict: denied');
        return;
      }
      const ctx = riskContext(signal, inst);
      record('input', 'risk.context', { signal, context: ctx, config: riskCfg });
      const verdict = evaluateSignal(signal, ctx, riskCfg);
      record('decision', 'risk.verdict', verdict.approved ? { approved: true, coin: signal.coin, order: verdict.order } : { approved: false, coin: signal.coin, reason: verdict.reason, detail: verdict.detail });
      if (!verdict.approved) {
        metrics.riskDenied(verdict.reason);
        log.info({ coin: signal.coin, direction: signal.direction, approved: false, reason: verdict.reason, detail: verdict.detail }, 'risk verdict: denied');
        return;
      }
      const o = verdict.order;
      log.info({ coin: o.coin, direction: o.direction, approved: true, sz: o.sz.toFixed(), px: o.px.toFixed(), notional: o.notional.toFixed(), riskUsd: o.riskUsd.toFixed(), checks: verdict.checks }, 'risk verdict: approved');
      portfolio.recentOrderTimes.push(now());
      bus.publish('order.approved', { signal, coin: o.coin, assetId: o.assetId, side: o.side, sz: o.sz, px: o.px, stopPx: o.stopPx, takeProfitPx: o.takeProfitPx });
    });
    return {
      cleanup: () => {
        unsub();
        gateActor?.stop();
        gateActor = undefined;
      },
      alive: () => gateActor?.getSnapshot().status === 'active',
    };
  });

  function applyModeToGate(mode: Mode, from?: Mode): void {
    const g = gateActor;
    if (!g) return;
    const at = now();
    if (mode === 'Emergency') g.send({ type: RiskEvents.HALT, at, reason: 'mode Emergency' });
    else if (from === 'Emergency') g.send({ type: RiskEvents.RESET, at, by: 'operator ack' });
    if (mode === 'Critical' || mode === 'Emergency') g.send({ type: RiskEvents.REDUCE, at, reason: `mode ${mode}` });
    else g.send({ type: RiskEvents.REDUCE_CLEARED, at, reason: `mode ${mode}` });
  }

  modeKeeper.onChange((e) => {
    applyModeToGate(e.to, e.from);
    if (effectsOf(e.to).cancelEntries) {
      const cancelled = orderManager?.cancelEntries() ?? [];
      if (cancelled.length) log.warn({ cloids: cancelled }, 'Emergency: working entries cancelled');
    }
  });

  const orderManagerChild = supervised('orderManager', (fail) => {
    let stopped = false;
    let sub: { unsubscribe(): Promise<void> } | undefined;
    void venue
      .subscribeUser({
        onFills: (fills, isSnapshot) => {
          record('input', 'venue.fills', { fills, source: isSnapshot ? 'snapshot' : 'ws' });
          bus.publish('fills', { fills, source: isSnapshot ? 'snapshot' : 'ws' });
        },
        onOrderUpdates: (updates) => {
          record('input', 'venue.orderUpdates', updates);
          for (const u of updates) if (u.status === 'scheduledCancel') deadMan.noteTrigger(u.time);
          bus.publish('orderUpdates', updates);
        },
      })
      .then((s) => {
        if (stopped) void s.unsubscribe();
        else sub = s;
      })
      .catch(fail);
    // REST backstop for fills and the account view: the WebSocket may drop messages silently.
    let pollStartedAt: number | undefined;
    const poll = setInterval(() => {
      if (pollStartedAt !== undefined) return;
      pollStartedAt = now();
      void (async () => {
        try {
          await refreshAccount();
          const since = Math.max(0, (store.state.get('last_fill_time') ?? now()) - 60_000);
          bus.publish('fills', { fills: await venue.fills(since), source: 'rest' });
        } catch (e) {
          log.warn({ err: (e as Error).message }, 'account / fill poll failed');
        } finally {
          pollStartedAt = undefined;
        }
      })();
    }, 5_000);
    const watch = setInterval(() => {
      protectBarePositions('watch').catch((e: unknown) => log.warn({ err: (e as Error).message }, 'protection check failed'));
    }, 10_000);
    // Periodic reconciliation; tightened while something is wrong (Critical mode).
    let lastRecon = now();
    const recon = setInterval(() => {
      const every = modeKeeper.mode === 'Normal' || modeKeeper.mode === 'Degraded' ? 60_000 : 10_000;
      if (draining || now() - lastRecon < every) return;
      lastRecon = now();
      reconcileNow(false).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'periodic reconciliation failed'));
    }, 5_000);
    return {
      cleanup: () => {
        stopped = true;
        clearInterval(poll);
        clearInterval(watch);
        clearInterval(recon);
        void sub?.unsubscribe();
      },
      // Progress, not a bare timer: a poll stuck longer than two submit timeouts is a stall.
      alive: () => pollStartedAt === undefined || now() - pollStartedAt < 2 * cfg.orders.submitTimeoutMs,
    };
  });

  async function drain(reason: string): Promise<void> {
    log.info({ reason }, 'draining: no new orders');
    draining = true;
    accepting = false;
    orderManager?.stopAccepting();
    const clean = await orderManager?.drain(15_000);
    log.info({ clean }, clean ? 'in-flight orders resolved' : 'drain deadline passed with orders in flight (they resume at next start)');
    orderManager?.stop();
  }

  const machine = supervisorMachine.provide({
    actors: {
      boot: fromPromise(boot),
      drain: fromPromise(async ({ input }: { input: { reason: string } }) => drain(input.reason)),
      marketFeed,
      strategy,
      risk,
      orderManager: orderManagerChild,
    },
  });
  const supervisor = createActor(machine, { input: {} });

  // ── operator control ──────────────────────────────────────────────────────────────────────
  /** The bearer token: configured, else one generated once and kept owner-only beside the data. */
  function controlToken(): string {
    if (cfg.apiToken) return cfg.apiToken;
    const file = path.join(cfg.dataDir, 'api-token');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
    const t = randomBytes(24).toString('hex');
    writeFileSync(file, `${t}\n`, { mode: 0o600 });
    return t;
  }

  let flattening: Promise<FlattenReport> | undefined;
  const journal = flattenJournal(store, now);
  function runFlatten(why: string): Promise<FlattenReport> {
    flattening ??= (async () => {
      log.warn({ why }, 'flatten: cancelling every order and closing every position');
      const report = await flatten(venue, {
        deadlineMs: 30_000,
        slippagePct: 1,
        instruments: [...instruments.values()],
        now,
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        log: log.child({ component: 'flatten' }),
        // Write before act, and record what the venue answered, as the CLI does.
        commitIntent: (i) => {
          const intent = journal.commitIntent(i);
          record('decision', 'order.intent', intent, true);
          return intent;
        },
        onResult: journal.onResult,
        cancelByOid: createOidCanceller({ apiUrl, wallet, network: cfg.network, timeoutMs: cfg.orders.submitTimeoutMs, venue }).cancelByOid,
        deadManFallback: false,
      });
      log[report.flat ? 'warn' : 'fatal'](flattenReportToJson(report) as object, report.flat ? 'flatten: the venue reports flat' : 'flatten: NOT flat by the deadline');
      return report;
    })().finally(() => (flattening = undefined));
    return flattening;
  }

  async function reconcileNow(dryRun: boolean): Promise<ReconcileRun> {
    const run = await runReconciliation({ store, venue, orderManager, log: log.child({ component: 'reconcile' }), now, phase: 'running', dryRun, cancelEntries: modeKeeper.mode === 'Emergency' });
    metrics.reconciliationRun(run.report);
    record('decision', 'reconciliation.report', { phase: run.report.phase, clean: run.report.clean, summary: run.report.summary, counts: run.report.counts, lines: run.report.lines, dryRun, applied: run.applied }, !dryRun && !run.report.clean);
    if (!dryRun) {
      lastReconcile = { at: run.report.at, clean: run.report.clean, summary: run.report.summary, counts: run.report.counts, pending: run.report.pending.length };
      modeKeeper.fact({ type: ModeEvents.RECONCILIATION, clean: run.report.clean, summary: run.report.summary });
    }
    return run;
  }

  async function control(call: ControlCall): Promise<{ status: number; body: unknown }> {
    const at = now();
    record('input', 'operator.command', { action: call.action, by: call.by, params: call.params }, true);
    switch (call.action) {
      case 'pause':
        gateActor?.send({ type: RiskEvents.PAUSE, at, by: call.by });
        store.state.set('paused', true);
        return { status: 200, body: { gate: gateActor ? gateOf(gateActor.getSnapshot()) : 'halted' } };
      case 'resume':
        gateActor?.send({ type: RiskEvents.RESUME, at, by: call.by });
        store.state.set('paused', false);
        return { status: 200, body: { gate: gateActor ? gateOf(gateActor.getSnapshot()) : 'halted' } };
      case 'flatten': {
        gateActor?.send({ type: RiskEvents.PAUSE, at, by: call.by, reason: 'flatten' });
        const report = await runFlatten(`flatten by ${call.by}`);
        return { status: report.flat ? 200 : 500, body: flattenReportToJson(report) };
      }
      case 'kill': {
        modeKeeper.kill(call.by);
        const report = await runFlatten(`kill switch by ${call.by}`);
        return { status: report.flat ? 200 : 500, body: { mode: modeKeeper.mode, flatten: flattenReportToJson(report) } };
      }
      case 'ack': {
        const run = await reconcileNow(false);
        const r = modeKeeper.ack(call.by, run.report.clean);
        return { status: r.ok ? 200 : 409, body: { ...r, reconciliation: run.report.summary } };
      }
      case 'reconcile': {
        const run = await reconcileNow(call.params['dryRun'] === 'true' || call.params['dry-run'] === 'true');
        return { status: 200, body: { clean: run.report.clean, summary: run.report.summary, counts: run.report.counts, lines: run.report.lines, applied: run.applied, dryRun: run.dryRun } };
      }
    }
  }

  function status() {
    const snap = supervisor.getSnapshot();
    return {
      mode: modeKeeper.mode,
      conditions: modeKeeper.conditions().map((c) => c.key),
      breakers: venue.breakerStates(),
      budget: budget.stats(),
      supervisor: snap.value,
      children: snap.context.children,
      gate: gateActor ? gateOf(gateActor.getSnapshot()) : 'halted',
      venue: { network: cfg.network, url: apiUrl },
      account,
      feed: { source: portfolio.feedSource, stale: portfolio.feedStale },
      equity: portfolio.account?.accountValue.toFixed(),
      positions: store.positions.all().map((p) => ({ coin: p.coin, szi: p.szi.toFixed(), entryPx: p.entryPx.toFixed(), stage: p.stage, stopCloid: p.stopCloid ?? null })),
      openOrders: store.orders.open().map((o) => ({ cloid: o.cloid, coin: o.coin, kind: o.kind, side: o.side, sz: o.sz.toFixed(), px: o.px.toFixed(), state: o.state, triggerPx: o.trigger?.triggerPx.toFixed() ?? null })),
      recentTrades: store.trades.list({ limit: 10 }).map((t) => ({ coin: t.coin, direction: t.direction, sz: t.sz.toFixed(), netPnl: t.netPnl.toFixed(), closedAt: t.closedAt })),
      lastReconciliation: lastReconcile ?? null,
      deadMan: deadMan.status(),
      blackbox: { head: blackbox.stats().committedSeq, pending: blackbox.stats().pending },
    };
  }

  const ops = await startOpsServer(
    cfg.httpAddr,
    {
      status,
      ready: () => reconciled && (modeKeeper.mode === 'Normal' || modeKeeper.mode === 'Degraded') && supervisor.getSnapshot().matches('running'),
      control,
      metrics: async () => {
        metrics.setDeadmanExpiry(deadMan.expiry());
        return { contentType: metrics.contentType, body: await metrics.metrics() };
      },
      audit: (e) => store.audit.append({ time: now(), actor: e.actor, action: e.action, detail: e.detail }),
    },
    { token: controlToken() },
  );
  log.info({ url: ops.url }, 'ops http listening');
  // Operator alerts (Telegram, email) and Telegram commands over the same control handler.
  const operator = startOperatorAlerts(cfg, {
    log,
    now,
    control: {
      status,
      control: (action, by) => control({ action, by, params: {} }),
      audit: (e) => store.audit.append({ time: now(), actor: e.actor, action: e.action, detail: e.detail }),
    },
    onSent: (channel, severity) => metrics.alertSent(channel, severity),
  });
  modeKeeper.onChange((e) => operator.router.alert(alertForModeChange(e)));
  if (!store.modes.current()) store.modes.append({ time: now(), to: modeKeeper.mode, reason: 'first start' });

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let closing = false;
  async function shutdown(code: number) {
    if (closing) return;
    closing = true;
    sampler.stop();
    watchdog.stop();
    // A clean drain keeps its stops resting; after a failure the venue's switch cancels them.
    await deadMan.stop({ disarm: code === 0 }).catch(() => {});
    // An orderly exit releases the lease: only a crash or a hang lets the watchdog act.
    lease.stop({ release: true });
    try {
      blackbox.close();
    } catch (e) {
      log.error({ err: (e as Error).message }, 'black box close failed');
    }
    await venue.close().catch(() => {});
    budget.close();
    metrics.close();
    modeKeeper.stop();
    await operator.close({ drainMs: 2_000 }).catch(() => {});
    await ops.close();
    store.close();
    await closeSim?.();
    resolveDone(code);
  }
  const restartsSeen = new Map<string, number>();
  supervisor.subscribe({
    next: (snap) => {
      const value = snap.value as unknown;
      const regions = typeof value === 'object' && value !== null && 'running' in value ? ((value as { running: Record<string, string> }).running) : undefined;
      for (const c of CHILDREN) {
        metrics.actorUp(c, regions?.[c] === 'up');
        const r = snap.context.children[c].restarts;
        if (r > (restartsSeen.get(c) ?? 0)) metrics.actorRestarted(c);
        restartsSeen.set(c, r);
      }
      if (snap.status === 'done') {
        const failed = snap.value === 'failed';
        if (failed) log.fatal({ error: snap.context.bootError }, 'boot failed');
        else log.info('stopped');
        void shutdown(failed ? 1 : 0);
      } else if (snap.value === 'escalated') {
        accepting = false;
        orderManager?.stopAccepting();
        log.fatal({ reason: snap.context.escalation, children: snap.context.children }, 'supervisor escalated: a child keeps failing; trading stopped');
        operator.router.alert({ severity: 'critical', key: 'supervisor.escalated', title: 'keel: supervisor escalated, trading stopped', detail: String(snap.context.escalation ?? '') });
      }
    },
    error: (e) => {
      log.fatal({ err: e }, 'supervisor crashed');
      void shutdown(1);
    },
  });
  supervisor.start();

  return {
    done,
    ops,
    store,
    venue,
    mode: modeKeeper,
    apiUrl,
    account,
    status,
    stop: async (reason: string) => {
      supervisor.send({ type: SupervisorEvents.STOP, reason });
      return done;
    },
  };
}

export { RiskEvents };
