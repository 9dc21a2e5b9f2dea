/**
 * Scenario 1, tick to order: from the moment the simulator hands the first candle frame of a new
 * 1m bar to the sockets, to the moment the order that bar triggered reaches its `/exchange`; both
 * stamps are taken by the simulator (KEEL_SIM_STAMPS=1, GET /_sim/stamps), on one clock.
 *
 * keel: a real `keel run` process (paper network against the external `keel sim`, every part on:
 * supervisor and its actors, market-feed machine, strategy, risk gate and pre-trade checks, order
 * machines, the intent committed with synchronous=FULL before signing, metrics, logging to a
 * file) trading one market with the default strategy tuned to signal on most bars (MACD 2/3/2, no
 * filters, no cooldown). The simulator's `reject` fault is at 100 %, so no entry ever fills: keel
 * never holds a position, and risk keeps approving entries (it refuses a second order or position
 * on a coin).
 * bare: bench/bare-pipeline.ts, a separate process that orders on every new bar of the same coin.
 *
 * The two alternate in windows of the same run, against the same simulator (keel paused while the
 * bare pipeline runs, so they never compete for the two cores at the same instant).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { ethers } from 'ethers';
import { Child, control, fmt, getJson, postJson, ROOT, sleep, startKeel, startSim, summary, tempDir, type ScenarioResult } from './lib.ts';

const BARE_PREFIX = 'b0b0b0b0';

interface Stamps {
  readonly bars: readonly { coin: string; t: number; at: number }[];
  readonly orders: readonly { cloid: string; asset: number; at: number }[];
}

/** Config of a keel process trading `markets` on the simulator at `apiUrl`. */
export function keelConfig(dir: string, apiUrl: string, extra: Record<string, unknown> = {}): string {
  const cfg = {
    network: 'paper',
    apiUrl,
    dataDir: path.join(dir, 'var'),
    httpAddr: '127.0.0.1:0',
    markets: ['BTC'],
    log: { level: 'info' },
    ...extra,
  };
  const file = path.join(dir, `keel-${Math.random().toString(16).slice(2, 8)}.json`);
  writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

/** enhanced-macd parameters that make it signal on most bars (a MACD cross every few bars, no filters). */
export const BUSY_STRATEGY = {
  name: 'enhanced-macd',
  params: { macdFast: 2, macdSlow: 3, macdSignal: 2, confirmInterval: '2m', volumeMult: 0, minAtrPct: 0, maxAtrPct: 1, minBbWidth: 0, minAdx: 0, cooldownBars: 0 },
};

export async function waitReady(opsUrl: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await fetch(`${opsUrl}/readyz`, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
    if (r?.status === 200) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) throw new Error(`keel not ready within ${timeoutMs} ms`);
    await sleep(5);
  }
}

export async function tickToOrder(opts: { keelSeconds: number; bareSeconds: number; rounds: number }): Promise<ScenarioResult> {
  const dir = tempDir('t2o');
  // A new 1m bar every 50 ms of wall time (speed 1200, one market block per bar).
  const { child: sim, url } = await startSim(dir, ['--speed', '1200', '--block-ms', '50', '--seed', '7'], { KEEL_SIM_STAMPS: '1' });
  let keel: Awaited<ReturnType<typeof startKeel>> | undefined;
  try {
    await postJson(`${url}/_sim/faults`, { reject: 1 });
    const cfg = keelConfig(dir, url, { markets: ['BTC', 'ETH'], strategy: BUSY_STRATEGY, risk: { entrySlippagePct: 0.05, minRewardRisk: 1.2, maxOrdersPerMinute: 1000 } });
    keel = await startKeel(dir, cfg);
    await waitReady(keel.opsUrl, 60_000);
    const bareKey = ethers.id('bench:bare');
    await postJson(`${url}/_sim/accounts`, { address: new ethers.Wallet(bareKey).address, usdc: 1_000_000 });
    // Warm-up: keel's JIT, caches and first orders are not counted.
    await sleep(5_000);
    const warmEnd = (await getJson<Stamps>(`${url}/_sim/stamps`)).orders.length;
    let bareSent = 0;
    for (let r = 0; r < opts.rounds; r++) {
      await control(keel.opsUrl, 'resume');
      await sleep(opts.keelSeconds * 1000);
      await control(keel.opsUrl, 'pause');
      await sleep(300); // orders keel had in flight arrive
      // The bare pipeline's first second is its warm-up.
      const bare = new Child([url, 'BTC:0,ETH:1', String(opts.bareSeconds + 1), `${BARE_PREFIX}`.slice(0, 6) + r.toString(16).padStart(2, '0'), bareKey], {
        logFile: path.join(dir, `bare-${r}.log`),
        script: path.join(ROOT, 'bench/bare-pipeline.ts'),
      });
      await bare.exited;
      const m = /"sent":(\d+)/.exec(bare.log());
      bareSent += m ? Number(m[1]) : 0;
    }
    await control(keel.opsUrl, 'resume');
    const stamps = await getJson<Stamps>(`${url}/_sim/stamps`);
    const barAt = new Map(stamps.bars.map((b) => [`${b.coin}|${b.t}`, b.at]));
    const barsOf = new Map<string, number[]>();
    for (const b of stamps.bars) barsOf.set(b.coin, [...(barsOf.get(b.coin) ?? []), b.at]);
    /** The latest new-bar frame of `coin` sent at or before `at`. */
    const latestBar = (coin: string, at: number): number | undefined => {
      const xs = barsOf.get(coin) ?? [];
      let lo = 0;
      let hi = xs.length - 1;
      if (hi < 0 || xs[0]! > at) return undefined;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (xs[mid]! <= at) lo = mid;
        else hi = mid - 1;
      }
      return xs[lo];
    };
    // keel's trigger: the bar frame last sent before its 'signal' log line (wall ms, same machine
    // clock as the simulator's stamps), so a slow order is never matched to a later bar.
    const signalAt = new Map<string, { coin: string; at: number }>();
    const lastSignal = new Map<string, number>();
    for (const line of keel.child.log().split('\n')) {
      if (line.includes('"msg":"signal"')) {
        const m = /"time":(\d+).*"coin":"(\w+)"/.exec(line);
        if (m) lastSignal.set(m[2]!, Number(m[1]));
      } else if (line.includes('"msg":"entry intent committed"')) {
        const m = /"cloid":"(0x[0-9a-f]+)","coin":"(\w+)"/.exec(line);
        const t = m ? lastSignal.get(m[2]!) : undefined;
        if (m && t !== undefined) signalAt.set(m[1]!, { coin: m[2]!, at: t });
      }
    }
    const coinOf = ['BTC', 'ETH'];
    const keelLat: number[] = [];
    const bareLat: number[] = [];
    const bareFirstAt = new Map<string, number>();
    let unmatched = 0;
    stamps.orders.forEach((o, i) => {
      if (o.cloid.startsWith(`0x${BARE_PREFIX.slice(0, 6)}`)) {
        const phase = o.cloid.slice(8, 10);
        const first = bareFirstAt.get(phase) ?? o.at;
        bareFirstAt.set(phase, first);
        if (o.at - first < 1_000) return;
        const sentAt = barAt.get(`${coinOf[o.asset]}|${Number.parseInt(o.cloid.slice(10), 16) * 60_000}`);
        if (sentAt === undefined) unmatched++;
        else bareLat.push(o.at - sentAt);
        return;
      }
      if (i < warmEnd) return;
      const sig = signalAt.get(o.cloid);
      const sentAt = sig ? latestBar(sig.coin, sig.at + 1) : undefined;
      if (sentAt === undefined) unmatched++;
      else keelLat.push(o.at - sentAt);
    });
    const k = summary(keelLat);
    const b = summary(bareLat);
    const ratio = k.p99 / b.p99;
    return {
      id: 'tick_to_order',
      title: 'Tick to order',
      method: 'real processes: keel run (everything on, BTC+ETH) vs bench/bare-pipeline.ts (one order per tick), alternating windows on one keel sim; sim-stamped new-bar frame sent → order arrived at /exchange',
      figures: [
        { name: 'keel p50', value: k.p50, unit: 'ms' },
        { name: 'keel p99', value: k.p99, unit: 'ms' },
        { name: 'bare p50', value: b.p50, unit: 'ms' },
        { name: 'bare p99', value: b.p99, unit: 'ms' },
        { name: 'keel p99 / bare p99', value: ratio, unit: '×', target: '≤ 1.25', met: ratio <= 1.25 },
        { name: 'keel p50 / bare p50', value: k.p50 / b.p50, unit: '×' },
      ],
      details: { keel: k, bare: b, ratio, p50Ratio: k.p50 / b.p50, bareSent, unmatched, note: `${keelLat.length} keel orders, ${bareLat.length} bare orders` },
    };
  } finally {
    await keel?.child.kill('SIGTERM');
    await sim.kill('SIGTERM');
  }
}
