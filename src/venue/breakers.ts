/**
 * Circuit breakers per venue endpoint class (info, exchange, WebSocket), built on opossum.
 *
 * Invariants:
 *  - Every call gets its own AbortController. When opossum's timeout fires, that controller is
 *    aborted, so the request is really abandoned (not left running in the background) — and only
 *    that request: opossum's own `abortController` option is one controller per breaker, which
 *    would abandon every concurrent call on one timeout.
 *  - A call short-circuited by an open breaker never ran: `open` means nothing was sent.
 *  - What counts as a failure is the caller's decision per call (`isFailure` for returned values,
 *    `isBenignError` for thrown ones): a venue's refusal is an answer, not a sick endpoint. A call
 *    the caller itself aborted is not held against a closed endpoint (but it fails a half-open
 *    trial rather than close the breaker on no evidence).
 *  - State changes are reported once each, in order, to every listener; a throwing listener cannot
 *    break the breaker.
 */
import { createRequire } from 'node:module';

export type BreakerClass = 'info' | 'exchange' | 'ws';
export const BREAKER_CLASSES: readonly BreakerClass[] = ['info', 'exchange', 'ws'];
export type BreakerState = 'closed' | 'open' | 'halfOpen';

export interface BreakerSettings {
  /** A call running longer is abandoned (its signal aborted) and counted as a failure. */
  readonly timeoutMs: number;
  /** Failure percentage over the rolling window above which the breaker opens. */
  readonly errorThresholdPercentage: number;
  /** How long the breaker stays open before letting one trial call through (half-open). */
  readonly resetTimeoutMs: number;
  /** Calls needed in the window before the breaker may open at all. */
  readonly volumeThreshold: number;
  /** The rolling statistics window. */
  readonly rollingWindowMs: number;
}

/**
 * Defaults: the exchange opens on fewer calls than info because every failed action is an unknown
 * outcome the order actors must resolve; the WebSocket's subscribe requests wait on the socket
 * (re)connecting, so they get a longer timeout.
 */
export const DEFAULT_BREAKER_SETTINGS: Readonly<Record<BreakerClass, BreakerSettings>> = {
  info: { timeoutMs: 5_000, errorThresholdPercentage: 50, resetTimeoutMs: 10_000, volumeThreshold: 5, rollingWindowMs: 30_000 },
  exchange: { timeoutMs: 5_000, errorThresholdPercentage: 50, resetTimeoutMs: 10_000, volumeThreshold: 3, rollingWindowMs: 30_000 },
  ws: { timeoutMs: 10_000, errorThresholdPercentage: 50, resetTimeoutMs: 15_000, volumeThreshold: 3, rollingWindowMs: 60_000 },
};

/** How one call through a breaker ended. */
export type BreakerOutcome<T> =
  /** It completed and the endpoint is healthy (this includes the venue refusing). */
  | { readonly kind: 'ok'; readonly value: T }
  /** It completed with a value the caller classed as an endpoint failure. */
  | { readonly kind: 'failed'; readonly value: T }
  /** It threw (a failure unless `isBenignError` said otherwise). */
  | { readonly kind: 'threw'; readonly error: unknown }
  /** Timed out and abandoned: whatever it was doing may or may not have happened. */
  | { readonly kind: 'timeout'; readonly timeoutMs: number }
  /** Short-circuited: the breaker is open (or half-open with its trial call in flight); nothing was sent. */
  | { readonly kind: 'open' };

export interface RunOptions<T> {
  /** The caller's signal; aborting it aborts the call, and the call then counts as no failure. */
  readonly signal?: AbortSignal;
  /** A returned value that means the endpoint is sick (transport failure, 5xx, 429...). */
  readonly isFailure?: (value: T) => boolean;
  /** A thrown error that is an answer rather than a sickness (default: none). */
  readonly isBenignError?: (error: unknown) => boolean;
}

export interface BreakerChange {
  readonly breaker: BreakerClass;
  readonly state: BreakerState;
  readonly previous: BreakerState;
}

/** The subset of opossum's CircuitBreaker used here (the package ships no types). */
interface Opossum {
  fire(job: Job): Promise<unknown>;
  on(event: 'open' | 'close' | 'halfOpen', fn: () => void): void;
  on(event: 'timeout', fn: (error: unknown, latency: number, args: readonly unknown[]) => void): void;
  readonly opened: boolean;
  readonly halfOpen: boolean;
  readonly pendingClose: boolean;
  readonly stats: { readonly fires: number; readonly failures: number; readonly timeouts: number; readonly rejects: number; readonly successes: number };
  shutdown(): void;
}
type OpossumCtor = new (action: (job: Job) => Promise<unknown>, options: Record<string, unknown>) => Opossum;
const CircuitBreaker = createRequire(import.meta.url)('opossum') as OpossumCtor;

interface Job {
  readonly controller: AbortController;
  readonly exec: () => Promise<unknown>;
  readonly benign: (error: unknown) => boolean;
}

/** Carries a returned value classed as a failure through opossum's failure accounting. */
class FailedValue {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

function codeOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string' ? (e as { code: string }).code : undefined;
}

/**
 * One breaker around one endpoint class.
 *
 * @example
 * const info = new EndpointBreaker('info', DEFAULT_BREAKER_SETTINGS.info);
 * const r = await info.run((signal) => fetchSomething(signal), { isBenignError: (e) => isRefusal(e) });
 * if (r.kind === 'open') ... // nothing was sent
 */
export class EndpointBreaker {
  readonly name: BreakerClass;
  readonly settings: BreakerSettings;
  readonly #cb: Opossum;
  readonly #listeners = new Set<(c: BreakerChange) => void>();
  #state: BreakerState = 'closed';

  constructor(name: BreakerClass, settings: BreakerSettings) {
    this.name = name;
    this.settings = settings;
    this.#cb = new CircuitBreaker((job) => job.exec(), {
      name,
      timeout: settings.timeoutMs,
      errorThresholdPercentage: settings.errorThresholdPercentage,
      resetTimeout: settings.resetTimeoutMs,
      volumeThreshold: settings.volumeThreshold,
      rollingCountTimeout: settings.rollingWindowMs,
      rollingCountBuckets: 10,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      errorFilter: (error: unknown, job: Job) => job.benign(error),
    });
    this.#cb.on('timeout', (_e, _latency, args) => (args[0] as Job | undefined)?.controller.abort(new Error(`${name}: timed out after ${settings.timeoutMs} ms`)));
    this.#cb.on('open', () => this.#set('open'));
    this.#cb.on('halfOpen', () => this.#set('halfOpen'));
    this.#cb.on('close', () => this.#set('closed'));
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** True while calls are short-circuited (open, or half-open with its one trial in flight). */
  get rejecting(): boolean {
    return this.#cb.opened || (this.#cb.halfOpen && !this.#cb.pendingClose);
  }

  /** Runs `call` through the breaker. Never throws: every ending is an outcome. */
  async run<T>(call: (signal: AbortSignal) => Promise<T>, opts: RunOptions<T> = {}): Promise<BreakerOutcome<T>> {
    const controller = new AbortController();
    const caller = opts.signal;
    const signal = caller ? AbortSignal.any([controller.signal, caller]) : controller.signal;
    const job: Job = {
      controller,
      exec: async () => {
        const v = await call(signal);
        if (opts.isFailure?.(v)) throw new FailedValue(v);
        return v;
      },
      benign: (e) => {
        // opossum has no "neither": a call the caller abandoned is let off while closed, but held
        // against a half-open trial, since calling it a success would close an unproven breaker.
        if (caller?.aborted) return !this.#cb.halfOpen;
        if (e instanceof FailedValue || codeOf(e) === 'ETIMEDOUT') return false;
        return opts.isBenignError?.(e) ?? false;
      },
    };
    try {
      return { kind: 'ok', value: (await this.#cb.fire(job)) as T };
    } catch (e) {
      if (e instanceof FailedValue) return { kind: 'failed', value: e.value as T };
      const code = codeOf(e);
      if (code === 'EOPENBREAKER') return { kind: 'open' };
      if (code === 'ETIMEDOUT') return { kind: 'timeout', timeoutMs: this.settings.timeoutMs };
      if (code === 'ESHUTDOWN') return { kind: 'open' };
      return { kind: 'threw', error: e };
    }
  }

  /** Counters from opossum's rolling window (for metrics). */
  stats(): { fires: number; failures: number; timeouts: number; rejects: number; successes: number } {
    const s = this.#cb.stats;
    return { fires: s.fires, failures: s.failures, timeouts: s.timeouts, rejects: s.rejects, successes: s.successes };
  }

  onChange(listener: (c: BreakerChange) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  shutdown(): void {
    this.#listeners.clear();
    this.#cb.shutdown();
  }

  #set(state: BreakerState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    for (const l of [...this.#listeners]) {
      try {
        l({ breaker: this.name, state, previous });
      } catch {
        // A listener's bug must not wedge the breaker; the listener owns its own logging.
      }
    }
  }
}

/** The three breakers of one venue connection. */
export function createBreakers(settings: Partial<Record<BreakerClass, Partial<BreakerSettings>>> = {}): Readonly<Record<BreakerClass, EndpointBreaker>> {
  const make = (c: BreakerClass) => new EndpointBreaker(c, { ...DEFAULT_BREAKER_SETTINGS[c], ...settings[c] });
  return { info: make('info'), exchange: make('exchange'), ws: make('ws') };
}
