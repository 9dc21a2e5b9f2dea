/**
 * A test rig for the order manager against the real simulator and a real SQLite file: a
 * simulator on a manual clock, a funded master with an approved agent, a store in a temp dir, the
 * real Hyperliquid adapter (wrapped only to record the order of place / cancel calls), a Bus, the
 * OrderManager, and the venue's user stream feeding the bus exactly as supervisor/runtime.ts wires
 * it (plus the REST fill backstop, triggered on demand).
 *
 * Time: the order actors schedule with real timers but judge `expiresAfter` in exchange time
 * (the simulator's clock); the market moves only when a test steps it.
 *
 * `planRoundTrip` looks ahead: the replay's block n is a pure function of n, so a twin replay
 * with the simulator's parameters shows the marks to come, and the search picks an entry side,
 * stop and target whose path reaches 1R before the stop and the target before break-even.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DestinationStream } from 'pino';
import { Decimal, roundPrice } from '../../src/domain/decimal.ts';
import { planProtection } from '../../src/domain/protection.ts';
import type { Coin, Direction, Instrument, Signal } from '../../src/domain/types.ts';
import { createLogger, type Logger } from '../../src/ops/logger.ts';
import { MarketReplay, bundledDataDir, loadCandleSeries } from '../../src/sim/market/index.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { createHyperliquidVenue, type HyperliquidVenue, type Subscription, type VenuePort } from '../../src/venue/index.ts';
import type { OrderMachineConfig } from '../../machines/order.machine.ts';
import { Bus, type ApprovedOrder } from '../../supervisor/bus.ts';
import { OrderManager } from '../../supervisor/order-manager.ts';
import { startRig, type SdkRig } from './sim.ts';

export interface VenueCall {
  readonly op: 'place' | 'cancel';
  readonly phase: 'start' | 'end';
  readonly cloid: string;
  readonly result?: string;
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly cloid?: string;
  readonly [k: string]: unknown;
}

/** What GET /_sim/state says about orders and accounts (the fields these tests read). */
export interface SimState {
  readonly accounts: readonly { address: string; positions: readonly { coin: string; szi: string }[] }[];
  readonly openOrders: readonly SimOrder[];
  readonly orders: readonly SimOrder[];
}
export interface SimOrder {
  readonly oid: number;
  readonly cloid: string | null;
  readonly user: string;
  readonly coin: string;
  readonly side: 'B' | 'A';
  readonly sz: string;
  readonly origSz: string;
  readonly filledSz: string;
  readonly reduceOnly: boolean;
  readonly isTrigger: boolean;
  readonly triggerPx?: string;
  readonly tpsl?: 'tp' | 'sl';
  readonly status: string;
}

export const TEST_ORDER_CONFIG: OrderMachineConfig = Object.freeze({ expiresAfterMs: 5_000, statusPollMs: 100, submitTimeoutMs: 4_000, expiryMarginMs: 1_000 });

export interface OrderManagerRig {
  readonly sdk: SdkRig;
  readonly sim: SdkRig['sim'];
  readonly user: string;
  readonly dir: string;
  readonly storePath: string;
  store: Store;
  readonly venue: VenuePort;
  readonly bus: Bus;
  om: OrderManager;
  readonly instruments: ReadonlyMap<Coin, Instrument>;
  readonly calls: VenueCall[];
  readonly logs: LogLine[];
  readonly log: Logger;
  now(): number;
  /** A new OrderManager on the current store (the old one must be stopped). */
  newOrderManager(): OrderManager;
  /** Stops the order manager abruptly, closes and reopens the store file, starts a new manager: a restart. */
  restart(): Promise<OrderManager>;
  connectUserStream(): Promise<void>;
  disconnectUserStream(): Promise<void>;
  /** The REST backstop of runtime.ts: fills since the last one seen (minus a minute), or since `since`, onto the bus. */
  pollFills(since?: number): Promise<number>;
  setFaults(body: Record<string, number>): Promise<void>;
  simState(): Promise<SimState>;
  ordersOnVenue(cloid: string): Promise<SimOrder[]>;
  /** Polls `fn` until it returns a defined value; steps the market by `stepMs` per try when given. */
  waitFor<T>(fn: () => T | undefined | Promise<T | undefined>, opts?: { timeoutMs?: number; stepMs?: number; what?: string }): Promise<T>;
  close(): Promise<void>;
}

let rigCount = 0;

/** Wraps the real adapter, recording when each place / cancel starts and ends (call order is what the tests check). */
function recording(v: HyperliquidVenue, calls: VenueCall[]): VenuePort {
  return {
    network: v.network,
    url: v.url,
    account: v.account,
    instruments: () => v.instruments(),
    mids: () => v.mids(),
    candles: (c, i, s, e) => v.candles(c, i, s, e),
    accountState: () => v.accountState(),
    openOrders: () => v.openOrders(),
    orderStatus: (c) => v.orderStatus(c),
    fills: (s) => v.fills(s),
    place: async (intent, opts) => {
      calls.push({ op: 'place', phase: 'start', cloid: intent.cloid });
      const r = await v.place(intent, opts);
      calls.push({ op: 'place', phase: 'end', cloid: intent.cloid, result: r.kind });
      return r;
    },
    cancel: async (coin, cloid, opts) => {
      calls.push({ op: 'cancel', phase: 'start', cloid });
      const r = await v.cancel(coin, cloid, opts);
      calls.push({ op: 'cancel', phase: 'end', cloid, result: r.kind });
      return r;
    },
    scheduleCancel: (t, o) => v.scheduleCancel(t, o),
    updateLeverage: (c, l, o) => v.updateLeverage(c, l, o),
    subscribeMarket: (c, i, h) => v.subscribeMarket(c, i, h),
    subscribeUser: (h) => v.subscribeUser(h),
    onConnectionState: (l) => v.onConnectionState(l),
    close: () => v.close(),
  };
}

export async function startOrderManagerRig(label: string, opts: { speed?: number; orderConfig?: Partial<OrderMachineConfig>; userStream?: boolean } = {}): Promise<OrderManagerRig> {
  // Minute-aligned start: the replay's path then depends on the block number only.
  const startTime = Math.floor(Date.now() / 60_000) * 60_000;
  const sdk = await startRig(`om:${label}`, { speed: opts.speed ?? 60, bookIntervalMs: 0, startTime });
  sdk.sim.step(1_000);
  const dir = mkdtempSync(path.join(tmpdir(), `keel-om-${label}-`));
  const storePath = path.join(dir, 'data', 'keel.sqlite');
  const now = () => sdk.sim.clock.now();
  const logs: LogLine[] = [];
  const echo = process.env.KEEL_TEST_LOG === '1';
  const destination: DestinationStream = {
    write(line: string) {
      logs.push(JSON.parse(line) as LogLine);
      if (echo) process.stderr.write(line);
    },
  };
  const log = createLogger({ level: 'debug', name: `om-rig-${++rigCount}`, destination });
  const real = createHyperliquidVenue({
    network: 'paper',
    apiUrl: sdk.sim.url,
    wallet: sdk.agent,
    account: sdk.master.address,
    timeoutMs: 2_000,
    now,
    ws: { reconnectDelayMs: () => 50, resubscribeDelayMs: 100 },
  });
  const calls: VenueCall[] = [];
  const venue = recording(real, calls);
  const instruments = new Map((await venue.instruments()).map((i) => [i.coin, i] as const));
  const bus = new Bus((topic, e) => log.error({ topic, err: e }, 'bus handler failed'));
  let store = await openStore({ path: storePath, clock: now });
  const orderConfig = { ...TEST_ORDER_CONFIG, ...opts.orderConfig };
  const make = () => new OrderManager({ store, venue, bus, log: log.child({ component: 'orders' }), instruments, now, orderConfig });
  let sub: Subscription | undefined;

  const rig: OrderManagerRig = {
    sdk,
    sim: sdk.sim,
    user: sdk.user,
    dir,
    storePath,
    store,
    venue,
    bus,
    om: make(),
    instruments,
    calls,
    logs,
    log,
    now,
    newOrderManager() {
      rig.om = make();
      return rig.om;
    },
    async restart() {
      rig.om.stop();
      store.close();
      store = await openStore({ path: storePath, clock: now });
      rig.store = store;
      rig.om = make();
      rig.om.start();
      return rig.om;
    },
    async connectUserStream() {
      if (sub) return;
      // As runtime.ts wires it: the user stream feeds the bus, the order manager listens there.
      sub = await venue.subscribeUser({
        onFills: (fills, isSnapshot) => bus.publish('fills', { fills, source: isSnapshot ? 'snapshot' : 'ws' }),
        onOrderUpdates: (updates) => bus.publish('orderUpdates', updates),
      });
    },
    async disconnectUserStream() {
      const s = sub;
      sub = undefined;
      await s?.unsubscribe();
    },
    async pollFills(from) {
      const since = from ?? Math.max(0, (rig.store.state.get('last_fill_time') ?? now()) - 60_000);
      const fills = await venue.fills(since);
      bus.publish('fills', { fills, source: 'rest' });
      return fills.length;
    },
    async setFaults(body) {
      const r = await fetch(`${sdk.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
      if (r.status !== 200) throw new Error(`POST /_sim/faults ${JSON.stringify(body)}: HTTP ${r.status}`);
    },
    async simState() {
      const r = await fetch(`${sdk.sim.url}/_sim/state`);
      return (await r.json()) as SimState;
    },
    async ordersOnVenue(cloid) {
      return (await rig.simState()).orders.filter((o) => o.cloid === cloid);
    },
    async waitFor(fn, o = {}) {
      const deadline = Date.now() + (o.timeoutMs ?? 8_000);
      for (;;) {
        const v = await fn();
        if (v !== undefined) return v;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${o.what ?? 'a condition'}`);
        if (o.stepMs) sdk.sim.step(o.stepMs);
        await new Promise((r) => setTimeout(r, 15));
      }
    },
    async close() {
      rig.om.stop();
      await rig.disconnectUserStream().catch(() => {});
      await venue.close();
      store.close();
      await sdk.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.userStream !== false) await rig.connectUserStream();
  return rig;
}

/** An approved entry as risk would publish it (IOC limit a percent through the market). */
export function approvedEntry(inst: Instrument, o: { direction: Direction; sz: Decimal; refPx: Decimal; stopPx: Decimal; takeProfitPx: Decimal; time: number }): ApprovedOrder {
  const side = o.direction === 'long' ? 'buy' : 'sell';
  const px = roundPrice(o.refPx.times(o.direction === 'long' ? 1.01 : 0.99), inst.szDecimals, o.direction === 'long' ? 'up' : 'down');
  const signal: Signal = { coin: inst.coin, direction: o.direction, refPx: o.refPx, stopPx: o.stopPx, takeProfitPx: o.takeProfitPx, time: o.time, strategy: 'test', reason: 'order-manager rig' };
  return { signal, coin: inst.coin, assetId: inst.assetId, side, sz: o.sz, px, stopPx: o.stopPx, takeProfitPx: o.takeProfitPx };
}

export interface RoundTripPlan {
  readonly direction: Direction;
  /** Block at which to enter (the simulator's head when the entry is sent). */
  readonly entryBlock: number;
  /** The entry's expected fill: the best opposite level of the entry block's book. */
  readonly entryPx: Decimal;
  readonly stopPx: Decimal;
  readonly takeProfitPx: Decimal;
  /** Exact trigger prices planProtection will give for that fill. */
  readonly stopTrigger: Decimal;
  readonly tp1Trigger: Decimal;
  readonly tp2Trigger: Decimal;
  readonly breakEven: Decimal;
  /** First block whose mark fires TP1, then first block after it whose mark fires TP2. */
  readonly tp1Block: number;
  readonly tp2Block: number;
}

/**
 * Searches the next `horizon` blocks for a round trip: TP1 (1R) fires before the stop, then the
 * target fires before the mark comes back to break-even, each in its own block.
 */
export function planRoundTrip(sim: SdkRig['sim'], inst: Instrument, sz: Decimal, opts: { horizon?: number; maxEntryDelay?: number; riskFracs?: readonly number[] } = {}): RoundTripPlan {
  const m = sim.market;
  const twin = new MarketReplay({ seed: m.seed, series: loadCandleSeries(bundledDataDir()), blockMs: m.blockMs, speed: m.speed, startTime: m.startTime, historyBars: m.historyBars });
  const head = m.head;
  const horizon = opts.horizon ?? 4_000;
  const mids: Decimal[] = [];
  const bids: Decimal[] = [];
  const asks: Decimal[] = [];
  for (let n = head; n <= head + horizon; n++) {
    const b = twin.block(n).find((x) => x.coin === inst.coin);
    if (!b) throw new Error(`no ${inst.coin} in the replay`);
    mids.push(b.mid);
    bids.push(b.bids[0]!.px);
    asks.push(b.asks[0]!.px);
  }
  // Check the twin really is the simulator's market (triggers fire on the mark, the block's mid).
  const live = sim.exchange.markPx(inst.coin);
  if (live === undefined || !live.eq(mids[0]!)) throw new Error(`twin replay disagrees with the simulator at block ${head}: ${mids[0]!.toFixed()} vs ${live?.toFixed()}`);
  let best: RoundTripPlan | undefined;
  const fracs = opts.riskFracs ?? [0.002, 0.003, 0.004, 0.005, 0.0065, 0.008, 0.01];
  const maxDelay = Math.min(opts.maxEntryDelay ?? 1_500, horizon);
  for (let d = 1; d <= maxDelay; d++) {
    for (const direction of ['long', 'short'] as const) {
      const entryPx = direction === 'long' ? asks[d]! : bids[d]!;
      const s = direction === 'long' ? 1 : -1;
      for (const frac of fracs) {
        const r = entryPx.times(frac);
        const stopPx = roundPrice(entryPx.minus(r.times(s)), inst.szDecimals, 'nearest');
        const takeProfitPx = roundPrice(entryPx.plus(r.times(2 * s)), inst.szDecimals, 'nearest');
        const p = planProtection({ instrument: inst, direction, filledSz: sz, avgEntryPx: entryPx, stopPx, takeProfitPx, time: 0 });
        if (!p.ok || p.plan.takeProfits.length !== 2) continue;
        const stopTrigger = p.plan.stopLoss.trigger!.triggerPx;
        const tp1Trigger = p.plan.takeProfits[0]!.trigger!.triggerPx;
        const tp2Trigger = p.plan.takeProfits[1]!.trigger!.triggerPx;
        const breakEven = roundPrice(entryPx, inst.szDecimals, direction === 'long' ? 'up' : 'down');
        const reached = (mark: Decimal, px: Decimal) => (direction === 'long' ? mark.gte(px) : mark.lte(px));
        const stopped = (mark: Decimal, px: Decimal) => (direction === 'long' ? mark.lte(px) : mark.gte(px));
        let k1: number | undefined;
        for (let k = d + 1; k < mids.length; k++) {
          if (stopped(mids[k]!, stopTrigger)) break;
          if (reached(mids[k]!, tp1Trigger)) {
            k1 = k;
            break;
          }
        }
        if (k1 === undefined || reached(mids[k1]!, tp2Trigger) || stopped(mids[k1]!, breakEven)) continue;
        let k2: number | undefined;
        for (let k = k1 + 1; k < mids.length; k++) {
          if (stopped(mids[k]!, breakEven)) break;
          if (reached(mids[k]!, tp2Trigger)) {
            k2 = k;
            break;
          }
        }
        if (k2 === undefined) continue;
        const plan: RoundTripPlan = { direction, entryBlock: head + d, entryPx, stopPx, takeProfitPx, stopTrigger, tp1Trigger, tp2Trigger, breakEven, tp1Block: head + k1, tp2Block: head + k2 };
        if (!best || plan.tp2Block < best.tp2Block) best = plan;
      }
    }
    // The earliest finishing plan among entries this early is good enough.
    if (best && d > 50) break;
  }
  if (!best) throw new Error(`no round trip for ${inst.coin} within ${horizon} blocks of ${head}`);
  return best;
}

/** Steps the simulator until its head is block `n` (no-op when already there). */
export function stepToBlock(sim: SdkRig['sim'], n: number): void {
  const head = sim.market.head;
  if (n < head) throw new Error(`block ${n} is in the past (head ${head})`);
  if (n > head) sim.step((n - head) * sim.market.blockMs);
  if (sim.market.head !== n) throw new Error(`stepped to ${sim.market.head}, wanted ${n}`);
}
