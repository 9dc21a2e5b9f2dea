/**
 * The watchdog's sampler: the effectful half of machines/watchdog.machine.ts. Every `intervalMs`
 * it measures the event-loop delay (`perf_hooks.monitorEventLoopDelay`, the window's p99 and max),
 * the process's RSS, and the age of the market feed on both paths, and sends them to the machine
 * as `watchdog.*` events stamped with the injected clock. `measureDbWrite` times a database write
 * for the machine's `watchdog.dbWrite`.
 *
 * Invariants: a window with no event-loop data sends no delay sample (never a NaN); one histogram
 * per sampler, disabled on stop; timers are unref'd, so the sampler never keeps a process alive.
 */
import { monitorEventLoopDelay, performance, type ELDHistogram } from 'node:perf_hooks';
import { WatchdogEvents, type FeedPath, type WatchdogEvent } from '../../machines/watchdog.machine.ts';

/** Last message time per feed path, fed by the market feed's emissions. */
export class FeedAgeTracker {
  #last: Record<FeedPath, number | null> = { ws: null, rest: null };

  /** A message (mid, candle, book) arrived on `path` at `at`. */
  seen(path: FeedPath, at: number): void {
    if (!Number.isFinite(at)) return;
    const prev = this.#last[path];
    this.#last[path] = prev === null ? at : Math.max(prev, at);
  }

  snapshot(): Readonly<Record<FeedPath, number | null>> {
    return { ...this.#last };
  }
}

export interface WatchdogSamplerDeps {
  /** Delivers a sample to the watchdog actor. */
  readonly send: (event: WatchdogEvent) => void;
  readonly now: () => number;
  /** Sampling period (default 1 s). */
  readonly intervalMs?: number;
  /** Histogram resolution of the event-loop monitor (default 10 ms). */
  readonly resolutionMs?: number;
  /** Last message time per feed path; omitted: no feed samples. */
  readonly feed?: () => Readonly<Record<FeedPath, number | null>>;
  /** RSS in bytes (default process.memoryUsage.rss). */
  readonly rss?: () => number;
}

export class WatchdogSampler {
  readonly #deps: WatchdogSamplerDeps;
  readonly #histogram: ELDHistogram;
  #timer: ReturnType<typeof setInterval> | undefined;

  constructor(deps: WatchdogSamplerDeps) {
    this.#deps = deps;
    this.#histogram = monitorEventLoopDelay({ resolution: deps.resolutionMs ?? 10 });
  }

  start(): void {
    if (this.#timer) return;
    this.#histogram.enable();
    this.#timer = setInterval(() => this.sample(), this.#deps.intervalMs ?? 1_000);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#histogram.disable();
  }

  /** Takes one sample of everything now and starts a new event-loop window. */
  sample(): void {
    const at = this.#deps.now();
    const h = this.#histogram;
    if (h.count > 0) {
      const ms = h.percentile(99) / 1e6;
      const maxMs = h.max / 1e6;
      if (Number.isFinite(ms) && Number.isFinite(maxMs)) this.#deps.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: round(ms), maxMs: round(maxMs), at });
    }
    h.reset();
    const rss = (this.#deps.rss ?? (() => process.memoryUsage.rss()))();
    this.#deps.send({ type: WatchdogEvents.MEMORY, rssBytes: rss, at });
    if (this.#deps.feed) {
      const f = this.#deps.feed();
      this.#deps.send({ type: WatchdogEvents.FEED_AGE, ws: f.ws, rest: f.rest, at });
    }
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Runs a synchronous database write and describes it for the watchdog (`watchdog.dbWrite`). The
 * write's own error is returned to the caller too, so it can decide what failing means for it.
 *
 * @example const { event, error } = measureDbWrite(now, () => leases.renew(me, 10_000, now())); watchdog.send(event);
 */
export function measureDbWrite<T>(now: () => number, write: () => T): { event: WatchdogEvent; result?: T; error?: unknown } {
  const t0 = performance.now();
  try {
    const result = write();
    return { event: { type: WatchdogEvents.DB_WRITE, ok: true, latencyMs: performance.now() - t0, at: now() }, result };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return { event: { type: WatchdogEvents.DB_WRITE, ok: false, latencyMs: performance.now() - t0, detail, at: now() }, error };
  }
}
