/**
 * `runBacktest`: the live pieces (strategy from the registry, `evaluateSignal` behind the risk
 * gate machine, the live `OrderManager` with its order machines, protection and SQLite store, all
 * on the live `Bus`) driven over historical candles, on a simulated clock, against the simulator's
 * matching engine (through `EngineVenue`), with its maker / taker fees and hourly funding.
 *
 * Step order at every bar j (all coins in series order, then the next step):
 *   1. the bar's price path (candle-market.ts), point by point, at its exchange time: triggers fire,
 *      funding is paid, fills happen; queued venue events are delivered and the order actors
 *      settle after each point;
 *   2. at the bar's close (t + 1 min): the closed candle goes to each strategy; signals go through
 *      risk (account view refreshed from the venue first) and approved orders to the order
 *      manager, which commits the intent and sends it; everything settles before time moves;
 *   3. equity (balance + unrealized at the close) and exposure are sampled.
 *
 * Invariants:
 *  - Deterministic: no wall clock reaches a decision; the store's cloid prefix comes from the
 *    seed; time moves only between steps, after every order actor has settled, so the real
 *    timers the order manager schedules on (its zero-delay "leave intent" timer) change how
 *    long a run takes, never what it decides.
 *  - Lazy blocks: a coin's block is installed in the engine only when it can matter: it would
 *    fire one of our triggers, pay funding on a position (first point of an hour), move a
 *    position near liquidation, or meet a resting limit order; or when the venue is about to act
 *    or report on that coin (`sync`). Blocks replace the market maker's book wholesale, so a
 *    skipped block leaves no trace: `exhaustive: true` installs every block and must give the
 *    same report (tested).
 *  - The account mirror applies the engine's own ledger functions to our fills and funding, so
 *    the equity curve is exact between blocks without asking the engine each bar.
 */
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SimulatedClock, createActor } from 'xstate';
import { pino } from 'pino';
import { Decimal, ZERO } from '../domain/decimal.ts';
import { evaluateSignal, parseRiskConfig, utcDayStart, type RiskConfig, type RiskContext, type WorkingEntries } from '../domain/risk.ts';
import type { AccountState, Coin, Instrument, Signal } from '../domain/types.ts';
import type { Logger } from '../ops/logger.ts';
import { DEFAULT_MAKER_FEE, DEFAULT_TAKER_FEE, Exchange } from '../sim/engine/index.ts';
import { applyFill, newAccount, unrealizedPnl, type Account } from '../sim/engine/ledger.ts';
import type { CoinSeries } from '../sim/market/index.ts';
import type { ExchangeEvent } from '../sim/types.ts';
import { openStore, type Store } from '../store/index.ts';
import { BUILTIN_STRATEGIES, createStrategy, type Strategy, type StrategyRegistry } from '../strategy/index.ts';
import { riskGateMachine, gateOf } from '../../machines/risk.machine.ts';
import type { OrderMachineConfig } from '../../machines/order.machine.ts';
import { Bus } from '../../supervisor/bus.ts';
import { OrderManager } from '../../supervisor/order-manager.ts';
import { CandleMarket } from './candle-market.ts';
import { EngineVenue } from './engine-venue.ts';
import { buildReport, type BacktestReport } from './report.ts';

/** The account the backtest trades as (never a real address). */
export const BACKTEST_ACCOUNT = '0x00000000000000000000000000000000000b7e57';
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

export interface BacktestOptions {
  /** Candle series of the markets to trade, in the engine's universe order. */
  readonly series: readonly CoinSeries[];
  /** Shown in the report (the --data argument). */
  readonly dataLabel: string;
  readonly seed: number;
  readonly strategy: { readonly name: string; readonly params: unknown };
  /** Raw risk config (src/domain/risk.ts RiskConfigSchema). */
  readonly risk: unknown;
  readonly orders?: Partial<OrderMachineConfig>;
  /** Starting collateral, USD. Default 100 000. */
  readonly usdc?: number;
  readonly registry?: StrategyRegistry;
  readonly pointsPerBar?: 2 | 4;
  readonly bookLevels?: number;
  readonly depthUsd?: number;
  readonly makerFee?: Decimal;
  readonly takerFee?: Decimal;
  /** Install every block of every coin (the reference the lazy path is tested against). */
  readonly exhaustive?: boolean;
  readonly log?: Logger;
  /** Where the temporary SQLite store goes (default: /dev/shm when present, else the OS temp dir). */
  readonly tmpDir?: string;
}

export interface BacktestStats {
  readonly candles: number;
  /** Wall time of the simulation loop (setup and report excluded), ms. */
  readonly loopMs: number;
  readonly candlesPerSecond: number;
  /** Wall time spent waiting for the order actors' real zero-delay timers, ms. */
  readonly timerWaitMs: number;
  readonly settleRounds: number;
  readonly blocksApplied: number;
  readonly blocksSkipped: number;
  readonly orders: number;
}

export interface BacktestResult {
  readonly report: BacktestReport;
  readonly stats: BacktestStats;
}

export class BacktestError extends Error {
  readonly detail: unknown;
  constructor(message: string, detail?: unknown) {
    super(message);
    this.name = 'BacktestError';
    this.detail = detail;
  }
}

interface WatchedTrigger {
  /** True when a falling mark fires it (sell stop, buy take-profit). */
  readonly fallFires: boolean;
  readonly triggerPx: Decimal;
}
interface CoinWatch {
  readonly triggers: WatchedTrigger[];
  resting: boolean;
}

/** Cloid prefix of the backtest's store: a function of the seed, so cloids repeat run to run. */
function runtimePrefix(seed: number): string {
  return (seed >>> 0).toString(16).padStart(8, '0');
}

function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export async function runBacktest(opts: BacktestOptions): Promise<BacktestResult> {
  const riskParsed = parseRiskConfig(opts.risk);
  if (!riskParsed.ok) throw new BacktestError(`risk config: ${riskParsed.error}`);
  const riskCfg: RiskConfig = riskParsed.config;
  const log = opts.log ?? silentLogger();
  const usdc = new Decimal(opts.usdc ?? 100_000);
  const makerFee = opts.makerFee ?? DEFAULT_MAKER_FEE;
  const takerFee = opts.takerFee ?? DEFAULT_TAKER_FEE;
  const market = new CandleMarket({ series: opts.series, seed: opts.seed, ...(opts.pointsPerBar ? { pointsPerBar: opts.pointsPerBar } : {}), ...(opts.bookLevels ? { levels: opts.bookLevels } : {}), ...(opts.depthUsd ? { depthUsd: opts.depthUsd } : {}) });
  const coins = market.coins;
  const P = market.pointsPerBar;

  // ── clock, engine, venue ─────────────────────────────────────────────────────────────────
  let now = market.barTime(0);
  const clock = { now: () => now };
  const exchange = new Exchange({ assets: opts.series.map((s) => ({ name: s.coin, szDecimals: s.szDecimals, maxLeverage: s.maxLeverage })), clock, makerFee, takerFee });
  exchange.fund(BACKTEST_ACCOUNT, usdc);

  /** Where the market stands: bar j, path point i (−1 = the bar's close). */
  let cursorJ = 0;
  let cursorI = 0;
  const applied = new Map<Coin, { j: number; i: number; time: number }>();
  let blocksApplied = 0;
  let blocksSkipped = 0;

  const mirror: Account = newAccount(BACKTEST_ACCOUNT);
  mirror.balance = usdc;
  const assetOf = new Map(coins.map((c, k) => [c, k]));
  const coinOfAsset = (a: number) => coins[a]!;
  let watchDirty = true;
  const watch = new Map<Coin, CoinWatch>();

  const onUserEvent = (e: ExchangeEvent) => {
    watchDirty = true;
    if (e.kind === 'fill') {
      const f = e.fill;
      applyFill(mirror, assetOf.get(f.coin)!, f.side, new Decimal(f.sz), new Decimal(f.px));
      mirror.balance = mirror.balance.minus(new Decimal(f.fee));
    } else if (e.kind === 'funding') {
      mirror.balance = mirror.balance.plus(new Decimal(e.funding.usdc));
    }
  };

  const hasBar = (coin: Coin, j: number) => j < market.barsOf(coin);
  /** The bar whose price stands for `coin` now (its last bar once its recording has ended). */
  const barNow = (coin: Coin) => Math.min(cursorJ, market.barsOf(coin) - 1);
  const pxNow = (coin: Coin): Decimal => {
    const j = barNow(coin);
    return market.pointPx(coin, j, j < cursorJ ? -1 : cursorI);
  };

  function apply(coin: Coin): void {
    const j = cursorJ, i = cursorI;
    exchange.applyBlock(market.block(coin, j, i, now));
    applied.set(coin, { j, i, time: now });
    blocksApplied++;
  }

  function refreshWatch(): void {
    if (!watchDirty) return;
    watchDirty = false;
    watch.clear();
    for (const o of exchange.frontendOpenOrders(BACKTEST_ACCOUNT)) {
      let w = watch.get(o.coin);
      if (!w) watch.set(o.coin, (w = { triggers: [], resting: false }));
      // A trigger that has not fired waits for the mark; anything else rests in the book.
      if (o.isTrigger && o.orderType.endsWith('Market')) w.triggers.push({ fallFires: o.triggerCondition.startsWith('Price below'), triggerPx: new Decimal(o.triggerPx) });
      else w.resting = true;
    }
  }

  /** Account value and maintenance margin at current prices (doubles: only to judge liquidation risk). */
  function nearLiquidation(): boolean {
    let value = mirror.balance.toNumber();
    let maint = 0;
    for (const p of mirror.positions.values()) {
      const coin = coinOfAsset(p.asset);
      const px = pxNow(coin).toNumber();
      value += p.szi.toNumber() * px - p.cost.toNumber();
      maint += (Math.abs(p.szi.toNumber()) * px) / (2 * opts.series[p.asset]!.maxLeverage);
    }
    return value < 3 * maint;
  }

  /** Whether the block of `coin` at the cursor can change anything for our account. */
  function matters(coin: Coin): boolean {
    refreshWatch();
    const w = watch.get(coin);
    const pos = mirror.positions.get(assetOf.get(coin)!);
    if (!w && !pos) return false;
    if (w?.resting) return true;
    const last = applied.get(coin);
    if (pos && (!last || Math.floor(now / HOUR_MS) > Math.floor(last.time / HOUR_MS))) return true;
    if (w && w.triggers.length > 0) {
      const px = pxNow(coin);
      for (const t of w.triggers) if (t.fallFires ? px.lte(t.triggerPx) : px.gte(t.triggerPx)) return true;
    }
    return pos !== undefined && nearLiquidation();
  }

  /** The venue is about to act on or report these coins: their books must be the current ones. */
  function sync(which?: readonly Coin[]): void {
    let list = which;
    if (!list) {
      refreshWatch();
      list = coins.filter((c) => watch.has(c) || mirror.positions.has(assetOf.get(c)!));
    }
    for (const c of list) {
      if (!hasBar(c, cursorJ)) continue;
      const a = applied.get(c);
      if (a && a.j === cursorJ && a.i === cursorI && a.time === now) continue;
      apply(c);
    }
  }

  const venue = new EngineVenue({
    exchange,
    clock,
    account: BACKTEST_ACCOUNT,
    sync,
    onUserEvent,
    mids: () => new Map(coins.map((c) => [c, pxNow(c)])),
    candles: (coin, start, end) => {
      const out = [];
      for (let j = Math.max(0, Math.floor((start - market.t0) / MINUTE_MS)); j < market.barsOf(coin); j++) {
        const c = market.candle(coin, j)!;
        if (c.T >= end) break;
        out.push(c);
      }
      return out;
    },
  });

  // ── the live pieces: store, bus, order manager, strategy, risk gate ───────────────────────
  const base = opts.tmpDir ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const dir = mkdtempSync(path.join(base, 'keel-backtest-'));
  let store: Store | undefined;
  let om: OrderManager | undefined;
  const gateClock = new SimulatedClock();
  try {
    store = await openStore({ path: path.join(dir, 'backtest.sqlite'), clock: clock.now, newRuntimePrefix: () => runtimePrefix(opts.seed) });
    const st = store;
    // A failing handler must stop the run (a live supervisor would restart the child; a backtest
    // that carried on would report a different strategy than the one configured).
    let busError: BacktestError | undefined;
    const bus = new Bus((topic, e) => {
      busError ??= new BacktestError(`bus handler for ${topic} failed: ${(e as Error).message}`, e);
    });
    const instruments = new Map<Coin, Instrument>();
    for (const i of await venue.instruments()) if (coins.includes(i.coin)) instruments.set(i.coin, i);

    om = new OrderManager({ store: st, venue, bus, log: log.child({ component: 'orders' }), instruments, now: clock.now, orderConfig: opts.orders ?? {} });
    om.start();
    let orders = 0;
    const userSub = await venue.subscribeUser({
      onFills: (fills) => bus.publish('fills', { fills, source: 'ws' }),
      onOrderUpdates: (updates) => bus.publish('orderUpdates', updates),
    });

    const strategies = new Map<Coin, Strategy>();
    const registry = opts.registry ?? BUILTIN_STRATEGIES;
    for (const inst of instruments.values()) {
      const r = createStrategy(opts.strategy.name, opts.strategy.params, inst, registry);
      if (!r.ok) throw new BacktestError(r.error.message, r.error);
      strategies.set(inst.coin, r.strategy);
    }
    const pendingSignals: Signal[] = [];
    const marketSub = await venue.subscribeMarket(coins, ['1m'], {
      onCandle: (c) => {
        const s = strategies.get(c.coin);
        if (!s || !s.intervals.includes(c.interval)) return;
        const signal = s.onCandle(c);
        if (signal) pendingSignals.push(signal);
      },
    });
    // The feed publishes candles on the bus as live; strategies listen there.
    gateClock.set(now);
    const gate = createActor(riskGateMachine, { input: { now }, clock: gateClock });
    gate.start();

    // Risk, as the runtime's risk child does it, over an account view refreshed at each signal.
    let account: AccountState | undefined;
    const recentOrderTimes: number[] = [];
    let signalsTotal = 0, approved = 0;
    const denied: Record<string, number> = {};
    const riskContext = (signal: Signal, inst: Instrument): RiskContext => {
      const acct = account!;
      const mids = new Map(coins.map((c) => [c, pxNow(c)]));
      const day = st.state.getJson('day_start') as { equity: string } | undefined;
      const working = new Map<string, WorkingEntries>();
      for (const o of st.orders.open()) {
        if (o.kind !== 'entry') continue;
        const k = `${o.coin}|${o.side}`;
        const w = working.get(k);
        working.set(k, { coin: o.coin, side: o.side, count: (w?.count ?? 0) + 1, notional: (w?.notional ?? ZERO).plus(o.sz.times(o.px)) });
      }
      const t = now;
      while (recentOrderTimes.length > 0 && t - recentOrderTimes[0]! >= 60_000) recentOrderTimes.shift();
      const dayStart = new Decimal(day?.equity ?? acct.accountValue.toFixed());
      return {
        gate: gateOf(gate.getSnapshot()),
        instrument: inst,
        markPx: mids.get(signal.coin),
        equity: acct.accountValue,
        dayStartEquity: dayStart,
        marginUsed: acct.totalMarginUsed,
        positions: acct.positions.map((p) => ({ coin: p.coin, szi: p.szi, entryPx: p.entryPx, notional: p.szi.abs().times(mids.get(p.coin) ?? p.entryPx) })),
        workingEntries: [...working.values()],
        pnlToday: acct.accountValue.minus(dayStart),
        recentOrderTimes,
        now: t,
        sizeMultiplier: 1,
      };
    };
    bus.on('signal', (signal) => {
      const inst = instruments.get(signal.coin);
      if (!inst) return;
      signalsTotal++;
      const verdict = evaluateSignal(signal, riskContext(signal, inst), riskCfg);
      if (!verdict.approved) {
        denied[verdict.reason] = (denied[verdict.reason] ?? 0) + 1;
        log.info({ coin: signal.coin, reason: verdict.reason, detail: verdict.detail }, 'risk verdict: denied');
        return;
      }
      approved++;
      const o = verdict.order;
      recentOrderTimes.push(now);
      bus.publish('order.approved', { signal, coin: o.coin, assetId: o.assetId, side: o.side, sz: o.sz, px: o.px, stopPx: o.stopPx, takeProfitPx: o.takeProfitPx });
    });
    bus.on('order.approved', () => void orders++);

    // ── the loop ───────────────────────────────────────────────────────────────────────────
    let settleRounds = 0;
    let timerWaitMs = 0;
    const manager = om;
    /** Delivers venue events and lets the order actors run until none is in flight. */
    async function settle(): Promise<void> {
      for (let round = 0; ; round++) {
        venue.deliver();
        if (busError) throw busError;
        if (!venue.pending && (await manager.drain(0))) return;
        if (round > 1000) throw new BacktestError(`order actors did not settle at ${new Date(now).toISOString()}`);
        const t0 = performance.now();
        // The order actors' zero-delay timers are real ones (order-manager.ts): let them run.
        await new Promise((r) => setTimeout(r, 0));
        timerWaitMs += performance.now() - t0;
        settleRounds++;
      }
    }
    let needSettle = false;
    bus.on('order.approved', () => void (needSettle = true));

    const L = market.length;
    const eqTimes = new Float64Array(L);
    const eqValues = new Float64Array(L);
    let inPosition = 0;
    const perCoin = new Map(coins.map((c) => [c, { bars: 0, inPosition: 0 }]));
    let candles = 0;
    let dayKey = -1;
    const equityNow = (): Decimal => {
      let e = mirror.balance;
      for (const p of mirror.positions.values()) e = e.plus(unrealizedPnl(p, pxNow(coinOfAsset(p.asset))));
      return e;
    };

    const loopStart = performance.now();
    for (let j = 0; j < L; j++) {
      cursorJ = j;
      const live = coins.filter((c) => hasBar(c, j));
      // 1. the bar's path
      for (let i = 0; i < P; i++) {
        cursorI = i;
        now = market.barTime(j) + market.pointOffset(i);
        for (const c of live) {
          if (opts.exhaustive || matters(c)) apply(c);
          else blocksSkipped++;
        }
        if (venue.pending) await settle();
      }
      // 2. the close: candles to the strategies, signals through risk to the order manager
      cursorI = -1;
      now = market.barTime(j + 1);
      for (const c of live) {
        // A coin whose recording ends here keeps its last close as its mark from now on.
        const ends = j === market.barsOf(c) - 1 && mirror.positions.has(assetOf.get(c)!);
        if (opts.exhaustive || ends || matters(c)) apply(c);
        else blocksSkipped++;
      }
      if (venue.pending) await settle();
      const day = utcDayStart(now);
      if (day !== dayKey) {
        dayKey = day;
        st.state.setJson('day_start', { day, equity: equityNow().toFixed() });
      }
      for (const c of live) {
        venue.publishCandle(market.candle(c, j)!);
        candles++;
      }
      if (pendingSignals.length > 0) {
        account = await venue.accountState();
        gateClock.set(now);
        for (const s of pendingSignals.splice(0)) bus.publish('signal', s);
      }
      if (needSettle || venue.pending) {
        needSettle = false;
        await settle();
      }
      if (busError) throw busError;
      // 3. equity and exposure at the close
      eqTimes[j] = now;
      eqValues[j] = equityNow().toNumber();
      if (mirror.positions.size > 0) inPosition++;
      for (const c of live) {
        const pc = perCoin.get(c)!;
        pc.bars++;
        if (mirror.positions.has(assetOf.get(c)!)) pc.inPosition++;
      }
    }
    const loopMs = performance.now() - loopStart;

    // ── the end: mark open positions at their last close, read the engine's own account ────────
    cursorJ = L - 1;
    cursorI = -1;
    sync(coins.filter((c) => mirror.positions.has(assetOf.get(c)!) && hasBar(c, L - 1)));
    const final = await venue.accountState();
    if (!final.accountValue.toDecimalPlaces(6).eq(equityNow().toDecimalPlaces(6))) {
      throw new BacktestError(`account mirror drifted from the engine: engine ${final.accountValue.toFixed()} vs mirror ${equityNow().toFixed()}`);
    }
    const trades = st.trades.list();
    const report = buildReport({
      meta: {
        data: opts.dataLabel,
        markets: coins,
        seed: opts.seed,
        strategy: opts.strategy.name,
        strategyParams: opts.strategy.params ?? {},
        risk: opts.risk ?? {},
        pointsPerBar: P,
        bookLevels: market.levels,
        depthUsd: market.depthUsd,
        makerFee: makerFee.toFixed(),
        takerFee: takerFee.toFixed(),
      },
      initialEquity: usdc,
      finalEquity: equityNow(),
      candles,
      start: market.barTime(0),
      end: market.barTime(L),
      trades,
      funding: venue.funding,
      signals: { total: signalsTotal, approved, denied },
      equity: { times: eqTimes, values: eqValues },
      exposure: { bars: L, inPosition, perCoin },
      // Net of the entry fees already paid (the store's position row carries them), so that
      // net PnL = Σ trades + funding + unrealized holds exactly.
      openPositions: [...mirror.positions.values()].map((p) => {
        const coin = coinOfAsset(p.asset);
        const entryFees = st.positions.get(coin)?.entryFees ?? ZERO;
        return { coin, szi: p.szi, entryPx: p.cost.div(p.szi).toDecimalPlaces(8), unrealizedPnl: unrealizedPnl(p, pxNow(coin)).minus(entryFees) };
      }),
    });
    await userSub.unsubscribe();
    await marketSub.unsubscribe();
    gate.stop();
    return {
      report,
      stats: { candles, loopMs, candlesPerSecond: loopMs > 0 ? Math.round((candles / loopMs) * 1000) : 0, timerWaitMs, settleRounds, blocksApplied, blocksSkipped, orders },
    };
  } finally {
    om?.stop();
    await venue.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
