/**
 * The request-weight budget on a fake clock: continuous refill, the start-up burst, the margin,
 * FIFO waiting (a heavy head is not starved), aborts, post-hoc charges, and 429 backoff whose
 * jitter is exponential, capped and identical under the same seed.
 */
import { describe, expect, it } from 'vitest';
import { BudgetWaitAborted, WeightBudget, type BudgetClock } from '../../src/venue/weight-budget.ts';

/** A clock whose timers fire only when the test advances it. */
class FakeClock implements BudgetClock {
  t = 1_000_000;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #next = 0;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.#next;
    this.#timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.#timers = this.#timers.filter((x) => x.id !== h);
  }
  get pending(): number {
    return this.#timers.length;
  }
  /** Moves time forward, firing due timers in time order, then lets promise callbacks run. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const first = this.#timers[0];
      if (!first || first.at > end) break;
      this.#timers.shift();
      this.t = first.at;
      first.fn();
      await flush();
    }
    this.t = end;
    await flush();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Starts `acquire` and records when (on the fake clock) it resolved. */
function track(budget: WeightBudget, clock: FakeClock, weight: number, order: number[], tag: number, signal?: AbortSignal) {
  const rec: { at?: number; error?: unknown } = {};
  budget.acquire(weight, signal).then(
    () => {
      rec.at = clock.now();
      order.push(tag);
    },
    (e: unknown) => (rec.error = e),
  );
  return rec;
}

describe('WeightBudget', () => {
  it('keeps the margin: capacity is the limit less 10 %, and the start-up burst is bounded by the initial fill', () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, perMinute: 1200, margin: 0.1, initialFraction: 1 });
    expect(budget.stats().capacity).toBe(1080);
    let spent = 0;
    while (budget.tryAcquire(20)) spent += 20;
    // A burst at start-up takes what the bucket holds and no more: never the exchange's full 1200.
    expect(spent).toBe(1080);
    expect(budget.stats().available).toBe(0);
  });

  it('starts half full by default, since a restarted process cannot know what its predecessor spent', () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock });
    expect(budget.stats().available).toBe(540);
    expect(budget.tryAcquire(541)).toBe(false);
    expect(budget.tryAcquire(540)).toBe(true);
  });

  it('refills continuously at capacity per minute, never above capacity', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 0 });
    await clock.advance(10_000);
    expect(budget.stats().available).toBe(180); // 1080 / 60 s × 10 s
    await clock.advance(10 * 60_000);
    expect(budget.stats().available).toBe(1080);
  });

  it('makes waiters wait for exactly the tokens they need, first in first out', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 0 });
    const order: number[] = [];
    const heavy = track(budget, clock, 60, order, 1);
    const light = track(budget, clock, 2, order, 2);
    const light2 = track(budget, clock, 2, order, 3);
    expect(budget.stats()).toMatchObject({ waiting: 3, waitingWeight: 64 });
    // A light request cannot jump the queue, even though 2 tokens come long before 60.
    expect(budget.tryAcquire(2)).toBe(false);
    await clock.advance(3_000); // 54 tokens
    expect(order).toEqual([]);
    await clock.advance(1_000); // 72 tokens ≥ 60: the heavy head goes, then the light ones in turn
    expect(order).toEqual([1, 2, 3]);
    // 60 tokens are ready after 60 / (1080 / 60_000) = 3334 ms (rounded up to the ms).
    expect(heavy.at! - 1_000_000).toBe(3_334);
    // The light ones follow as soon as their 2 tokens have refilled behind the heavy one.
    expect(light.at! - heavy.at!).toBe(111);
    expect(light2.at! - light.at!).toBe(111);
    expect(budget.stats().waiting).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('serves a long queue in order and at the refill rate', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 0 });
    const order: number[] = [];
    const recs = Array.from({ length: 10 }, (_, i) => track(budget, clock, 20, order, i));
    await clock.advance(60_000);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (let i = 1; i < recs.length; i++) expect(recs[i]!.at!).toBeGreaterThan(recs[i - 1]!.at!);
    // Ten requests of 20 need 200 tokens: at 18 / s that is just over 11 s, never sooner.
    expect(recs[9]!.at! - 1_000_000).toBeGreaterThanOrEqual(Math.floor((200 / 1080) * 60_000));
  });

  it('an aborted waiter leaves the queue without taking anything, and the next one moves up', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 0 });
    const order: number[] = [];
    const ac = new AbortController();
    const heavy = track(budget, clock, 600, order, 1, ac.signal);
    const light = track(budget, clock, 10, order, 2);
    await clock.advance(100);
    ac.abort();
    await flush();
    expect(heavy.error).toBeInstanceOf(BudgetWaitAborted);
    await clock.advance(1_000); // 18 tokens: the light one fits now that the heavy one is gone
    expect(order).toEqual([2]);
    expect(light.at! - 1_000_000).toBeLessThan(1_000);
    await expect(budget.acquire(1, AbortSignal.abort())).rejects.toBeInstanceOf(BudgetWaitAborted);
  });

  it('refuses a weight the bucket can never hold', async () => {
    const budget = new WeightBudget({ clock: new FakeClock() });
    await expect(budget.acquire(5_000)).rejects.toBeInstanceOf(RangeError);
  });

  it('post-hoc charges can drive the bucket negative, delaying the next request', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 0 });
    budget.charge(90);
    expect(budget.stats().available).toBe(-90);
    const order: number[] = [];
    const r = track(budget, clock, 18, order, 1);
    await clock.advance(5_999);
    expect(order).toEqual([]);
    await clock.advance(2);
    expect(order).toEqual([1]);
    expect(r.at! - 1_000_000).toBe(6_000); // (90 + 18) / 18 per s
  });

  it('a 429 drains the bucket and imposes a jittered exponential backoff, capped', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 1, seed: 7, backoff: { baseMs: 1_000, maxMs: 8_000, resetAfterMs: 60_000 } });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const d = budget.onRateLimited();
      delays.push(d);
      expect(budget.stats().available).toBeLessThanOrEqual(0);
      expect(budget.tryAcquire(0)).toBe(false); // nothing passes during a backoff
      await clock.advance(d);
    }
    // Episode n waits in [raw/2, raw] with raw = min(8000, 1000 · 2ⁿ⁻¹).
    const raws = [1_000, 2_000, 4_000, 8_000, 8_000, 8_000];
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(raws[i]! / 2);
      expect(d).toBeLessThanOrEqual(raws[i]!);
    });
    expect(budget.stats()).toMatchObject({ rateLimited: 6, streak: 6 });
  });

  it('429s during a backoff are the same episode; a quiet period restarts the streak', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, seed: 3, backoff: { baseMs: 1_000, maxMs: 60_000, resetAfterMs: 10_000 } });
    const first = budget.onRateLimited();
    await clock.advance(10);
    const again = budget.onRateLimited();
    expect(again).toBe(first - 10); // not lengthened
    expect(budget.stats()).toMatchObject({ rateLimited: 2, streak: 1 });
    await clock.advance(again + 10_001);
    const fresh = budget.onRateLimited();
    expect(budget.stats().streak).toBe(1);
    expect(fresh).toBeLessThanOrEqual(1_000);
  });

  it('waiters resume when the backoff ends, not before', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 1, seed: 11 });
    const d = budget.onRateLimited();
    const order: number[] = [];
    const r = track(budget, clock, 2, order, 1);
    await clock.advance(d - 1);
    expect(order).toEqual([]);
    await clock.advance(200); // the backoff is over and 2 tokens refilled from the drained bucket
    expect(order).toEqual([1]);
    expect(r.at! - 1_000_000).toBeGreaterThanOrEqual(d);
  });

  it('the jitter is a pure function of the seed', () => {
    const run = (seed: number) => {
      const clock = new FakeClock();
      const b = new WeightBudget({ clock, seed, backoff: { baseMs: 1_000, maxMs: 64_000 } });
      const out: number[] = [];
      for (let i = 0; i < 6; i++) {
        const d = b.onRateLimited();
        out.push(d);
        clock.t += d; // end of this backoff: the next 429 is a new episode of the same streak
      }
      return out;
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it('close() rejects every waiter and refuses new ones', async () => {
    const clock = new FakeClock();
    const budget = new WeightBudget({ clock, initialFraction: 0 });
    const order: number[] = [];
    const a = track(budget, clock, 10, order, 1);
    budget.close();
    await flush();
    expect(a.error).toBeInstanceOf(BudgetWaitAborted);
    expect(clock.pending).toBe(0);
    await expect(budget.acquire(1)).rejects.toBeInstanceOf(BudgetWaitAborted);
  });
});
