/**
 * Scenarios 2 and 7 (its feed half): keel's market-data path (bench/feed-harness.ts, a process
 * built from the runtime's own venue adapter, feed machine, strategy, metrics and black box) fed
 * over a loopback WebSocket by bench/feed-source.ts, a separate process, at stepped rates.
 * A real `keel run` cannot be driven at 50,000 messages/s: its simulator tops out near 8,000/s.
 */
import path from 'node:path';
import { Child, ROOT, summary, tempDir, type ScenarioResult } from './lib.ts';

async function withSource<T>(dir: string, fn: (url: string) => Promise<T>): Promise<T> {
  const src = new Child([], { logFile: path.join(dir, 'feed-source.log'), script: path.join(ROOT, 'bench/feed-source.ts') });
  try {
    const m = await src.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 15_000);
    return await fn(m[1]!);
  } finally {
    await src.kill('SIGTERM');
  }
}

async function harness(dir: string, args: readonly string[], nodeArgs: readonly string[] = []): Promise<Record<string, unknown>> {
  const logFile = path.join(dir, `feed-harness-${Date.now()}.out`);
  const prof = process.env['KEEL_BENCH_PROF'];
  const h = new Child(args, { logFile, script: path.join(ROOT, 'bench/feed-harness.ts'), nodeArgs: [...nodeArgs, ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [])], env: { KEEL_BENCH_DIR: dir } });
  const code = await h.exited;
  const line = h.log().split('\n').find((l) => l.startsWith('{"'));
  if (code !== 0 || !line) throw new Error(`feed harness failed (${String(code)}): ${h.log().slice(-2000)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

interface Step {
  rate: number;
  handledPerSecond: number;
  keptUp: boolean;
  tailMs: number;
}

export async function feedThroughput(opts: { rates: readonly number[]; seconds: number }): Promise<ScenarioResult> {
  const dir = tempDir('feed');
  const r = await withSource(dir, (url) => harness(dir, [url, 'rates', opts.rates.join(','), String(opts.seconds)]));
  const steps = r['steps'] as Step[];
  const sustained = Math.max(0, ...steps.filter((s) => s.keptUp).map((s) => s.rate));
  const failed = steps.find((s) => !s.keptUp);
  // When it falls behind, what it did handle per second is its ceiling.
  const ceiling = failed ? failed.handledPerSecond : Math.max(...steps.map((s) => s.handledPerSecond));
  return {
    id: 'feed_throughput',
    title: 'Feed throughput',
    method: `separate processes: bench/feed-source.ts → WebSocket → bench/feed-harness.ts (keel's venue adapter + SDK parsing, market-feed machine, metrics, black box, strategy); steps of ${opts.seconds} s; kept up = every message handled within 100 ms of the source's last`,
    figures: [
      { name: 'highest rate sustained', value: sustained, unit: 'msg/s', target: '≥ 50,000', met: sustained >= 50_000 },
      { name: 'ceiling (handled/s when behind)', value: ceiling, unit: 'msg/s' },
    ],
    details: { ...r, sustained, ceiling },
  };
}

export async function feedMemory(opts: { events: number; rate: number }): Promise<{ samples: { handled: number; rssMb: number; heapUsedMb: number }[]; events: number }> {
  const dir = tempDir('feedmem');
  const r = await withSource(dir, (url) => harness(dir, [url, 'memory', String(opts.events), String(opts.rate)], ['--expose-gc']));
  return r as unknown as { samples: { handled: number; rssMb: number; heapUsedMb: number }[]; events: number };
}

export { summary };
