/**
 * `npm run bench`: every benchmark of issue 6 in one run, on loopback, each after its warm-up;
 * prints a table (figure, value, target, met) and writes `bench/results.json` (or `--out PATH`).
 *
 * Scenarios (see each module's header for how it measures):
 *   sim              bench/sim.bench.ts (its own process): the simulator's own ceilings
 *   tick_to_order    bench/tick-to-order.ts: keel run vs the bare pipeline
 *   feed_throughput  bench/feed.bench.ts: keel's market-data path at stepped rates
 *   blackbox         bench/store.bench.ts: recorder vs raw batched inserts
 *   intent_commit    bench/store.bench.ts: commitIntent vs a raw FULL commit
 *   restart_to_ready bench/process.bench.ts
 *   emergency_flatten bench/process.bench.ts
 *   memory           bench/process.bench.ts (paper session RSS) + bench/feed.bench.ts (1,000,000 events)
 *
 * `--only a,b` runs a subset; `--quick` shortens every scenario (smoke run). A scenario that
 * throws is reported with its error and the run goes on; the exit code is 0 unless the run itself
 * failed (targets missed are results, not failures). KEEL_BENCH_PROF=DIR: CPU profiles of the
 * keel processes and the feed harness (summarise with `node bench/prof.ts FILE`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { Child, fmt, killAllChildren, removeTempDirs, ROOT, tempDir, type ScenarioResult } from './lib.ts';
import { tickToOrder } from './tick-to-order.ts';
import { feedMemory, feedThroughput } from './feed.bench.ts';
import { blackboxBench, intentCommitBench } from './store.bench.ts';
import { emergencyFlatten, paperSessionRss, restartToReady } from './process.bench.ts';

const args = process.argv.slice(2);
const arg = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const out = path.resolve(arg('--out') ?? path.join(ROOT, 'bench', 'results.json'));
const only = arg('--only')?.split(',');
const quick = args.includes('--quick');

async function simScenario(): Promise<ScenarioResult> {
  const dir = tempDir('simbench');
  const file = path.join(dir, 'sim-results.json');
  const c = new Child(['--out', file], { logFile: path.join(dir, 'sim-bench.log'), script: path.join(ROOT, 'bench/sim.bench.ts'), env: quick ? { BENCH_SIM_ORDERS: '500', BENCH_SIM_FEED_SECONDS: '2' } : {} });
  const code = await c.exited;
  if (code !== 0) throw new Error(`bench/sim.bench.ts exited ${String(code)}: ${c.log().slice(-1500)}`);
  const r = JSON.parse(readFileSync(file, 'utf8')) as { httpOrders: { ordersPerSecond: number; p50Ms: number; p99Ms: number }; wsFeed: { messagesPerSecond: number }; engineOnly: { ordersPerSecond: number }; marketOnly: { microsPerCoinBlock: number } };
  return {
    id: 'sim',
    title: 'Simulator (bench:sim)',
    method: 'bench/sim.bench.ts in its own process against a keel sim process: signed orders over HTTP, WebSocket push to one client, engine and replay in-process',
    figures: [
      { name: 'orders over HTTP', value: r.httpOrders.ordersPerSecond, unit: '/s' },
      { name: 'order p99 over HTTP', value: r.httpOrders.p99Ms, unit: 'ms' },
      { name: 'WebSocket messages to one client', value: r.wsFeed.messagesPerSecond, unit: '/s' },
      { name: 'matching engine alone', value: r.engineOnly.ordersPerSecond, unit: '/s' },
      { name: 'market replay per coin-block', value: r.marketOnly.microsPerCoinBlock, unit: 'µs', target: '≤ 50', met: r.marketOnly.microsPerCoinBlock <= 50 },
    ],
    details: r as unknown as Record<string, unknown>,
  };
}

async function memoryScenario(): Promise<ScenarioResult> {
  const session = await paperSessionRss({ seconds: quick ? 12 : 60 });
  const events = quick ? 100_000 : 1_000_000;
  const feed = await feedMemory({ events, rate: 15_000 });
  const rss = session.rssMb[session.rssMb.length - 1]!;
  const first = feed.samples[0]!;
  const last = feed.samples[feed.samples.length - 1]!;
  const growth = (last.rssMb - first.rssMb) / first.rssMb;
  const heapGrowth = (last.heapUsedMb - first.heapUsedMb) / first.heapUsedMb;
  return {
    id: 'memory',
    title: 'Memory',
    method: `RSS of a keel run process after a ${session.rssMb.length * session.sampleEverySeconds} s paper session at 600× (external keel sim); growth over ${events.toLocaleString('en')} feed events through bench/feed-harness.ts at 15,000/s (RSS after a full GC, start vs end)`,
    figures: [
      { name: 'RSS after paper session', value: rss, unit: 'MB', target: '< 150', met: rss < 150 },
      { name: `RSS growth over ${events.toLocaleString('en')} feed events`, value: growth * 100, unit: '%', target: '< 5', met: growth < 0.05 },
      { name: 'heap growth over the same', value: heapGrowth * 100, unit: '%' },
    ],
    details: { session, feed },
  };
}

const scenarios: { id: string; run: () => Promise<ScenarioResult> }[] = [
  { id: 'sim', run: simScenario },
  { id: 'tick_to_order', run: () => tickToOrder(quick ? { keelSeconds: 8, bareSeconds: 3, rounds: 1 } : { keelSeconds: 25, bareSeconds: 6, rounds: 3 }) },
  { id: 'feed_throughput', run: () => feedThroughput({ rates: quick ? [10_000, 50_000] : [10_000, 20_000, 30_000, 40_000, 50_000, 75_000, 100_000], seconds: quick ? 2 : 3 }) },
  { id: 'blackbox', run: () => blackboxBench(quick ? { events: 20_000, rounds: 2 } : { events: 100_000, rounds: 5 }) },
  { id: 'intent_commit', run: () => intentCommitBench({ commits: quick ? 300 : 2_000 }) },
  { id: 'restart_to_ready', run: () => restartToReady({ restarts: quick ? 1 : 3 }) },
  { id: 'emergency_flatten', run: emergencyFlatten },
  { id: 'memory', run: memoryScenario },
];

const results: ScenarioResult[] = [];
const t0 = performance.now();
for (const s of scenarios) {
  if (only && !only.includes(s.id)) continue;
  const ts = performance.now();
  process.stdout.write(`… ${s.id}\n`);
  try {
    results.push(await s.run());
  } catch (e) {
    results.push({ id: s.id, title: s.id, method: '', figures: [], details: {}, error: (e as Error).stack ?? String(e) });
    await killAllChildren();
  }
  process.stdout.write(`  done in ${((performance.now() - ts) / 1000).toFixed(0)} s\n`);
}
removeTempDirs();

const rows: string[][] = [['scenario', 'figure', 'value', 'target', 'met']];
for (const r of results) {
  if (r.error) rows.push([r.title, 'ERROR', r.error.split('\n')[0]!.slice(0, 80), '', '✗']);
  for (const f of r.figures) rows.push([r.title, f.name, `${fmt(f.value, f.unit === '/s' || f.unit === 'msg/s' ? 0 : 2)} ${f.unit}`, f.target ?? '', f.met === undefined ? '' : f.met ? 'yes' : 'NO']);
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
console.log(`\nkeel benchmarks (${os.cpus().length} cores, node ${process.version}, ${((performance.now() - t0) / 1000).toFixed(0)} s)\n`);
console.log(line(rows[0]!));
console.log(widths.map((w) => '─'.repeat(w)).join('  '));
let prev = '';
for (const r of rows.slice(1)) {
  console.log(line([r[0] === prev ? '' : r[0]!, ...r.slice(1)]));
  prev = r[0]!;
}
const targets = results.flatMap((r) => r.figures.filter((f) => f.met !== undefined));
console.log(`\n${targets.filter((f) => f.met).length} of ${targets.length} targets met`);
mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ when: new Date().toISOString(), node: process.version, cpus: os.cpus().length, quick, seconds: (performance.now() - t0) / 1000, scenarios: results }, null, 2)}\n`);
console.log(`written to ${path.relative(process.cwd(), out) || out}`);
