/**
 * keel's market-data path in a process of its own, built from the runtime's own parts and wired
 * as supervisor/runtime.ts wires them: the Hyperliquid venue adapter (SDK WebSocket transport and
 * subscription parsing, keel's zod schemas), the market-feed machine with its stream actor
 * (supervisor/feed-wiring.ts), metrics on every emitted candle / mids event, the black box
 * recording each closed candle and signal (`record`, batched), the bus, and the default strategy
 * per coin. Only the order path is absent (scenario 1 measures it).
 *
 * Usage: node bench/feed-harness.ts <sourceUrl> rates <r1,r2,…> <seconds>
 *        node bench/feed-harness.ts <sourceUrl> memory <events> <rate>
 * `rates`: blasts each rate for <seconds> and reports whether the feed kept up (its last message
 * handled within 100 ms of the source sending its last, i.e. no backlog that grew all along).
 * `memory`: after a warm-up of 100,000 messages, feeds <events> more at <rate> and samples RSS /
 * heap after a GC every 10 %.
 * Prints one JSON line. Run with --expose-gc for the memory mode.
 */
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createActor } from 'xstate';
import { ethers } from 'ethers';
import { createHyperliquidVenue } from '../src/venue/index.ts';
import type { MarketHandlers, VenuePort } from '../src/venue/port.ts';
import { createMarketFeedMachine } from '../supervisor/feed-wiring.ts';
import { MARKET_FEED_EMITTED, type MarketFeedEmitted } from '../machines/market-feed.machine.ts';
import { Bus } from '../supervisor/bus.ts';
import { createStrategy, DEFAULT_STRATEGY, type Strategy } from '../src/strategy/index.ts';
import { openStore } from '../src/store/index.ts';
import { BlackboxRecorder } from '../src/store/blackbox-recorder.ts';
import { KeelMetrics } from '../src/ops/metrics.ts';
import { createLogger } from '../src/ops/logger.ts';
import type { Coin, Instrument } from '../src/domain/types.ts';

const [src, mode, a, b] = process.argv.slice(2);
if (!src || (mode !== 'rates' && mode !== 'memory') || !a || !b) throw new Error('usage: feed-harness.ts <url> rates <r1,r2> <seconds> | memory <events> <rate>');
const dir = process.env['KEEL_BENCH_DIR'] ?? os.tmpdir();
const now = Date.now;
const log = createLogger({ level: 'info', destination: createWriteStream(path.join(dir, 'feed-harness.log')) });
const coins: Coin[] = ['BTC', 'ETH'];
const store = await openStore({ path: path.join(dir, `feed-${process.pid}.sqlite`) });
const box = new BlackboxRecorder(store.raw, { clock: now });
const metrics = new KeelMetrics({ coins, network: 'paper', now });
metrics.attachBlackbox(box);
const bus = new Bus((topic, e) => log.error({ topic, err: e }, 'bus handler failed'));
const wallet = ethers.Wallet.createRandom();
const inner = createHyperliquidVenue({ network: 'paper', apiUrl: src, wallet: new ethers.Wallet(wallet.privateKey), account: wallet.address.toLowerCase(), timeoutMs: 4_000, now, log: log.child({ component: 'venue' }) });

let handled = 0;
/** When the latest message was handled (the event loop may be too busy to look at the clock otherwise). */
let lastHandledAt = 0;
const count = <F extends (...args: never[]) => void>(f: F | undefined): F | undefined =>
  f &&
  (((...args: Parameters<F>) => {
    f(...args);
    handled++;
    lastHandledAt = performance.now();
  }) as F);
// Counts each market-data message once the feed machine has taken it (handlers run it synchronously).
const venue = new Proxy(inner, {
  get(target, prop) {
    if (prop === 'subscribeMarket') {
      return (cs: readonly Coin[], ivs: readonly string[], h: MarketHandlers) => {
        const counted: MarketHandlers = { ...(h.onMids ? { onMids: count(h.onMids) } : {}), ...(h.onBook ? { onBook: count(h.onBook) } : {}), ...(h.onTrades ? { onTrades: count(h.onTrades) } : {}), ...(h.onCandle ? { onCandle: count(h.onCandle) } : {}) };
        return target.subscribeMarket(cs, ivs, counted);
      };
    }
    const v = Reflect.get(target, prop, target) as unknown;
    return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
  },
}) as VenuePort;

const record = (kind: 'input' | 'decision', type: string, payload: unknown) => {
  box.record(kind, type, payload, now());
  metrics.blackboxEvent(kind);
};
const strategies = new Map<Coin, Strategy>();
coins.forEach((coin, i) => {
  const inst: Instrument = { coin, assetId: i, szDecimals: coin === 'BTC' ? 5 : 4, maxLeverage: 40, isMajor: true };
  const r = createStrategy(DEFAULT_STRATEGY, {}, inst);
  if (!r.ok) throw new Error(r.error.message);
  strategies.set(coin, r.strategy);
});
let signals = 0;
let closed = 0;
bus.on('candle.closed', (c) => {
  closed++;
  const s = strategies.get(c.coin);
  const signal = s?.onCandle(c);
  if (signal) {
    signals++;
    record('decision', 'strategy.signal', signal);
    bus.publish('signal', signal);
  }
});
const mids = new Map<Coin, unknown>();
let up = false;
const feed = createActor(createMarketFeedMachine(venue, now), { input: { coins, intervals: ['1m'], staleAfterMs: 5_000, pollIntervalMs: 1_000 } });
feed.on('*', (e) => {
  const ev = e as MarketFeedEmitted;
  switch (ev.type) {
    case MARKET_FEED_EMITTED.candleClosed:
      metrics.feedMessage(ev.source, 'candles', ev.at);
      record('input', 'feed.candle', { ...ev.candle, source: ev.source });
      bus.publish('candle.closed', ev.candle);
      break;
    case MARKET_FEED_EMITTED.mids:
      metrics.feedMessage(ev.source, 'mids', ev.at);
      for (const [c, px] of ev.mids) mids.set(c, px);
      bus.publish('mids', ev.mids);
      break;
    case MARKET_FEED_EMITTED.sourceChanged:
      if (ev.to === 'ws') up = true;
      break;
  }
});
feed.start();
// The feed takes the WebSocket path on its first message.
for (let i = 0; !up && i < 50; i++) {
  await new Promise((r) => setTimeout(r, 100));
  await fetch(`${src}/_blast`, { method: 'POST', body: JSON.stringify({ rate: 1000, seconds: 0.05 }) });
}
if (!up) throw new Error('the feed never reached the WebSocket path');

async function blast(rate: number, seconds: number): Promise<{ sent: number; ms: number; maxBufferedKb: number }> {
  const r = await fetch(`${src}/_blast`, { method: 'POST', body: JSON.stringify({ rate, seconds }) });
  return (await r.json()) as { sent: number; ms: number; maxBufferedKb: number };
}

/** Waits until `target` messages are handled; ms waited (capped). */
async function drain(target: number, capMs: number): Promise<number> {
  const t0 = performance.now();
  while (handled < target && performance.now() - t0 < capMs) await new Promise((r) => setTimeout(r, 1));
  return performance.now() - t0;
}

const out: Record<string, unknown> = {};
if (mode === 'rates') {
  const seconds = Number(b);
  await blast(5_000, 1); // warm-up
  await drain(handled, 500);
  const steps: unknown[] = [];
  for (const rate of a.split(',').map(Number)) {
    const before = handled;
    const t0 = performance.now();
    const s = await blast(rate, seconds);
    await drain(before + s.sent, 10_000);
    const done = handled - before;
    // How long after the source's last message the harness handled its own last one: a feed that
    // keeps up finishes within a few ms; one that falls behind carries a backlog that grew all along.
    const tailMs = lastHandledAt - (t0 + s.ms);
    const ms = lastHandledAt - t0;
    const kept = done >= s.sent && tailMs <= 100;
    steps.push({ rate, sent: s.sent, handled: done, sourceMs: s.ms, tailMs, handledPerSecond: done / (ms / 1000), keptUp: kept, maxBufferedKb: s.maxBufferedKb });
    if (!kept) break;
  }
  out['steps'] = steps;
} else {
  const events = Number(a);
  const rate = Number(b);
  const gc = (globalThis as { gc?: () => void }).gc;
  const sample = () => {
    gc?.();
    const m = process.memoryUsage();
    return { handled, rssMb: m.rss / 1048576, heapUsedMb: m.heapUsed / 1048576, heapTotalMb: m.heapTotal / 1048576, externalMb: m.external / 1048576, arrayBuffersMb: m.arrayBuffers / 1048576 };
  };
  // Warm-up: 100,000 messages (JIT, allocator and socket buffers reach their working size).
  await blast(rate, 100_000 / rate);
  await drain(handled, 2_000);
  const start = handled;
  const samples = [sample()];
  const slices = 10;
  for (let i = 0; i < slices; i++) {
    const s = await blast(rate, events / slices / rate);
    await drain(handled + 0, 0);
    await drain(start + Math.floor(((i + 1) * events) / slices) - 1, 10_000);
    void s;
    samples.push(sample());
  }
  out['samples'] = samples;
  out['events'] = handled - start;
}
out['signals'] = signals;
out['closedBars'] = closed;
out['blackbox'] = box.stats();
feed.stop();
box.close();
await inner.close();
store.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
