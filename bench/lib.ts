/**
 * Shared pieces of `npm run bench`: child processes of the CLI (`keel sim`, `keel run`) with their
 * logs in files, percentiles, the result record each scenario returns, and small HTTP helpers.
 *
 * Invariants: every child started here is SIGKILLed when the bench process exits (a failed
 * scenario never leaves a simulator or runtime behind); children log to files, never to pipes the
 * bench might not drain (a full pipe would stall the child and the figure with it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(import.meta.dirname, '..');
export const MAIN = path.join(ROOT, 'src/cli/main.ts');

/** One measured figure with its target. `met` is undefined when the figure has no target. */
export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly target?: string;
  readonly met?: boolean;
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  /** How it was measured, in a sentence (in-process or real processes, what is compared). */
  readonly method: string;
  readonly figures: readonly Figure[];
  /** Raw numbers (medians, p99s, counts) for the JSON file. */
  readonly details: Record<string, unknown>;
  readonly error?: string;
}

export function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function summary(xs: readonly number[]): { n: number; p50: number; p90: number; p99: number; max: number; mean: number } {
  return { n: xs.length, p50: pct(xs, 50), p90: pct(xs, 90), p99: pct(xs, 99), max: xs.length ? Math.max(...xs) : NaN, mean: xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN };
}

const temps: string[] = [];
export function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), `keel-bench-${prefix}-`));
  temps.push(d);
  return d;
}
export function removeTempDirs(): void {
  if (process.env['KEEL_BENCH_KEEP'] === '1') return;
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A CLI child whose stdout / stderr go to a file; `waitFor` scans that file. */
export class Child {
  readonly proc: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  #exitCode: number | null | undefined;

  constructor(args: readonly string[], opts: { env?: Record<string, string>; logFile: string; nodeArgs?: readonly string[]; script?: string }) {
    this.logFile = opts.logFile;
    const fd = openSync(opts.logFile, 'a');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('KEEL_')) env[k] = v;
    this.proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.script ?? MAIN, ...args], { cwd: ROOT, env: { ...env, ...opts.env }, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    live.add(this.proc);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code) => {
        this.#exitCode = code;
        live.delete(this.proc);
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8');
    } catch {
      return '';
    }
  }

  /** Resolves with the first match of `re` in the log (from byte `from`); polls every 10 ms. */
  async waitFor(re: RegExp, timeoutMs: number, from = 0): Promise<RegExpExecArray> {
    const end = performance.now() + timeoutMs;
    for (;;) {
      const m = re.exec(this.log().slice(from));
      if (m) return m;
      if (!this.running) throw new Error(`process exited (${String(this.#exitCode)}) before ${String(re)}\n${this.log().slice(-3000)}`);
      if (performance.now() > end) throw new Error(`${String(re)} not seen within ${timeoutMs} ms\n${this.log().slice(-3000)}`);
      await sleep(10);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    const t = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

export async function killAllChildren(): Promise<void> {
  for (const c of live) c.kill('SIGKILL');
  await sleep(50);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** `keel sim` on a free loopback port with the given flags and env; resolves with its URL. */
export async function startSim(dir: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ child: Child; url: string }> {
  const child = new Child(['sim', '--port', '0', '--ip-weight', '10000000', ...args], { env, logFile: path.join(dir, `sim-${Date.now()}.log`) });
  const m = await child.waitFor(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 20_000);
  return { child, url: m[1]! };
}

export const API_TOKEN = 'bench-token-0123456789abcdef';

/** `keel run --config FILE` (paper against `apiUrl`); resolves once the ops server listens. */
export async function startKeel(dir: string, configFile: string, opts: { nodeArgs?: readonly string[]; env?: Record<string, string> } = {}): Promise<{ child: Child; opsUrl: string; startedAt: number }> {
  const logFile = path.join(dir, `keel-${Date.now()}.log`);
  const startedAt = performance.now();
  // KEEL_BENCH_PROF=DIR: every keel process writes a CPU profile there (node --cpu-prof) on exit.
  const prof = process.env['KEEL_BENCH_PROF'];
  const nodeArgs = [...(opts.nodeArgs ?? []), ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [])];
  const child = new Child(['run', '--config', configFile], { logFile, env: { KEEL_API_TOKEN: API_TOKEN, ...opts.env }, nodeArgs });
  const m = await child.waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"ops http listening"/, 30_000);
  return { child, opsUrl: m[1]!, startedAt };
}

export async function control(opsUrl: string, action: string, timeoutMs = 60_000): Promise<{ status: number; body: unknown }> {
  const r = await fetch(`${opsUrl}/control/${action}`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` }, signal: AbortSignal.timeout(timeoutMs) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

export async function getJson<T>(url: string, timeoutMs = 10_000): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!r.ok) throw new Error(`GET ${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}

export async function postJson(url: string, body: unknown): Promise<unknown> {
  const r = await fetch(url, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  if (!r.ok) throw new Error(`POST ${url}: HTTP ${r.status} ${await r.text()}`);
  return r.json();
}

/** Resident set size of a process, MB (from /proc; Linux). */
export function rssMb(pid: number): number {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(s);
  return m ? Number(m[1]) / 1024 : NaN;
}

export const fmt = (x: number, d = 2): string => (Number.isFinite(x) ? x.toFixed(d) : String(x));
