/**
 * The request-weight budget: a token bucket of Hyperliquid's per-IP REST weight (1200 / minute,
 * refilled continuously; hyperliquid-api.md §4), spent by keel BEFORE a request is sent so the
 * exchange never has to answer 429.
 *
 * Invariants:
 *  - The bucket holds at most `perMinute × (1 − margin)` and refills at that rate, so over any
 *    window keel spends less than the exchange allows; the margin is left for the independent
 *    watchdog process and other clients on the same IP.
 *  - It starts only partly full (`initialFraction`): a process restarted after a crash cannot know
 *    what its predecessor spent in the last minute, and crash-only restarts are routine.
 *  - Waiters are served strictly first in, first out: a heavy request is never starved by light
 *    ones, and `tryAcquire` never jumps the queue.
 *  - A 429 drains the bucket and imposes a backoff (exponential in the streak of episodes, capped,
 *    with jitter from a seeded generator, so a run replays); 429s arriving while a backoff is in
 *    force belong to the same episode and do not lengthen it.
 *  - Time comes only from the injected clock.
 */

/** The clock and timers the budget runs on (tests inject a fake; production uses the system's). */
export interface BudgetClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const SYSTEM_BUDGET_CLOCK: BudgetClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface WeightBudgetOptions {
  /** The exchange's IP weight per minute (default 1200). */
  readonly perMinute?: number;
  /** Fraction of the limit keel leaves unused (default 0.1). */
  readonly margin?: number;
  /** How full the bucket starts, as a fraction of its capacity (default 0.5). */
  readonly initialFraction?: number;
  readonly clock?: BudgetClock;
  /** Seed of the backoff jitter (default 1). */
  readonly seed?: number;
  readonly backoff?: {
    /** Backoff of the first 429 episode before jitter (default 1 s). */
    readonly baseMs?: number;
    /** Cap of the backoff before jitter (default 60 s). */
    readonly maxMs?: number;
    /** A 429 this long after the previous backoff ended starts a new streak (default 60 s). */
    readonly resetAfterMs?: number;
  };
}

export interface WeightBudgetStats {
  /** The bucket's capacity after the margin. */
  readonly capacity: number;
  /** Whole tokens available now (negative after post-hoc charges). */
  readonly available: number;
  /** Callers waiting in `acquire`. */
  readonly waiting: number;
  /** Sum of the weights they wait for. */
  readonly waitingWeight: number;
  /** 429s reported through `onRateLimited` since construction. */
  readonly rateLimited: number;
  /** End of the backoff in force, if any (clock ms). */
  readonly backoffUntil: number | undefined;
  /** 429 episodes in the current streak (drives the exponent). */
  readonly streak: number;
}

/** The error `acquire` rejects with when its signal aborts or the budget is closed. */
export class BudgetWaitAborted extends Error {
  readonly weight: number;
  constructor(weight: number, why: string) {
    super(`weight budget: wait for ${weight} abandoned (${why})`);
    this.name = 'BudgetWaitAborted';
    this.weight = weight;
  }
}

/** Floating-point slack: a refill computed at the exact ms a weight becomes available may be a hair short. */
const EPSILON = 1e-6;

interface Waiter {
  readonly weight: number;
  readonly resolve: () => void;
  readonly reject: (e: Error) => void;
  readonly detach: () => void;
}

/** mulberry32: small, fast, and good enough for jitter; seeded so backoffs replay. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * @example
 * const budget = new WeightBudget({ seed: 42 });
 * await budget.acquire(20, signal);   // then send a weight-20 info request
 * budget.charge(3);                   // its answer was long: the exchange charged extra
 * budget.onRateLimited();             // the exchange answered 429 anyway
 */
export class WeightBudget {
  readonly #capacity: number;
  /** Tokens per ms. */
  readonly #rate: number;
  readonly #clock: BudgetClock;
  readonly #random: () => number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #resetAfterMs: number;
  #tokens: number;
  #at: number;
  readonly #queue: Waiter[] = [];
  #timer: unknown;
  #timerAt: number | undefined;
  #backoffUntil = -Infinity;
  #streak = 0;
  #rateLimited = 0;
  #closed = false;

  constructor(opts: WeightBudgetOptions = {}) {
    const perMinute = opts.perMinute ?? 1200;
    const margin = opts.margin ?? 0.1;
    const initial = opts.initialFraction ?? 0.5;
    if (!(perMinute > 0) || !(margin >= 0 && margin < 1) || !(initial >= 0 && initial <= 1)) {
      throw new RangeError(`weight budget: invalid options perMinute=${perMinute} margin=${margin} initialFraction=${initial}`);
    }
    this.#capacity = perMinute * (1 - margin);
    this.#rate = this.#capacity / 60_000;
    this.#clock = opts.clock ?? SYSTEM_BUDGET_CLOCK;
    this.#random = seededRandom(opts.seed ?? 1);
    this.#baseMs = opts.backoff?.baseMs ?? 1_000;
    this.#maxMs = opts.backoff?.maxMs ?? 60_000;
    this.#resetAfterMs = opts.backoff?.resetAfterMs ?? 60_000;
    this.#tokens = this.#capacity * initial;
    this.#at = this.#clock.now();
  }

  /**
   * Resolves once `weight` has been taken from the bucket, after every earlier waiter. Rejects
   * with `BudgetWaitAborted` if `signal` aborts first (nothing is taken then), and with a
   * RangeError for a weight the bucket can never hold.
   */
  acquire(weight: number, signal?: AbortSignal): Promise<void> {
    if (!(weight >= 0) || weight > this.#capacity) return Promise.reject(new RangeError(`weight budget: cannot acquire ${weight} (capacity ${this.#capacity})`));
    if (this.#closed) return Promise.reject(new BudgetWaitAborted(weight, 'budget closed'));
    if (signal?.aborted) return Promise.reject(new BudgetWaitAborted(weight, 'aborted'));
    if (this.tryAcquire(weight)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.#queue.indexOf(waiter);
        if (i < 0) return;
        this.#queue.splice(i, 1);
        reject(new BudgetWaitAborted(weight, 'aborted'));
        // The head may have changed to a lighter request that fits now.
        this.#pump();
      };
      const waiter: Waiter = { weight, resolve, reject, detach: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  /** Takes `weight` now if nobody waits, no backoff is in force and the bucket holds it. */
  tryAcquire(weight: number): boolean {
    if (this.#closed || this.#queue.length > 0 || !(weight >= 0)) return false;
    this.#refill();
    if (this.#clock.now() < this.#backoffUntil || this.#tokens < weight - EPSILON) return false;
    this.#tokens -= weight;
    return true;
  }

  /**
   * Charges weight after the fact (the exchange charges long answers by their size). The bucket
   * may go negative, which delays the next requests exactly as the exchange would.
   */
  charge(weight: number): void {
    if (!(weight > 0)) return;
    this.#refill();
    this.#tokens -= weight;
  }

  /**
   * The exchange answered 429: drain the bucket and back off. Returns the backoff remaining in
   * ms. Jitter spreads the retries of several processes sharing an IP.
   */
  onRateLimited(): number {
    const now = this.#clock.now();
    this.#rateLimited++;
    this.#refill();
    this.#tokens = Math.min(this.#tokens, 0);
    if (now >= this.#backoffUntil) {
      if (now - this.#backoffUntil > this.#resetAfterMs) this.#streak = 0;
      this.#streak++;
      const raw = Math.min(this.#maxMs, this.#baseMs * 2 ** (this.#streak - 1));
      // Equal jitter: at least half the exponential delay, so a backoff always backs off.
      this.#backoffUntil = now + Math.round(raw / 2 + this.#random() * (raw / 2));
    }
    this.#pump();
    return this.#backoffUntil - now;
  }

  stats(): WeightBudgetStats {
    this.#refill();
    const now = this.#clock.now();
    return {
      capacity: this.#capacity,
      available: Math.floor(this.#tokens),
      waiting: this.#queue.length,
      waitingWeight: this.#queue.reduce((s, w) => s + w.weight, 0),
      rateLimited: this.#rateLimited,
      backoffUntil: now < this.#backoffUntil ? this.#backoffUntil : undefined,
      streak: this.#streak,
    };
  }

  /** Rejects every waiter and refuses new ones (shutdown). */
  close(): void {
    this.#closed = true;
    this.#cancelTimer();
    for (const w of this.#queue.splice(0)) {
      w.detach();
      w.reject(new BudgetWaitAborted(w.weight, 'budget closed'));
    }
  }

  #refill(): void {
    const now = this.#clock.now();
    const elapsed = now - this.#at;
    if (elapsed > 0) this.#tokens = Math.min(this.#capacity, this.#tokens + elapsed * this.#rate);
    this.#at = Math.max(this.#at, now);
  }

  /** Serves the head of the queue while it fits, then sleeps until the new head can fit. */
  #pump(): void {
    this.#refill();
    const now = this.#clock.now();
    if (now >= this.#backoffUntil) {
      for (let head = this.#queue[0]; head !== undefined && this.#tokens >= head.weight - EPSILON; head = this.#queue[0]) {
        this.#tokens -= head.weight;
        this.#queue.shift();
        head.detach();
        head.resolve();
      }
    }
    const head = this.#queue[0];
    if (head === undefined) return this.#cancelTimer();
    const untilTokens = Math.ceil((head.weight - this.#tokens) / this.#rate - EPSILON);
    const wakeAt = Math.max(this.#backoffUntil, now + Math.max(1, untilTokens));
    if (this.#timerAt === wakeAt) return;
    this.#cancelTimer();
    this.#timerAt = wakeAt;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      this.#pump();
    }, wakeAt - now);
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = undefined;
  }
}
