/**
 * Hyperliquid's rate limits (hyperliquid-api.md §4), enforced as the real API does:
 *  - IP: 1200 request weight per minute across REST (a token bucket refilled continuously);
 *    over the limit → HTTP 429.
 *  - Address (actions only, per acting account): 10,000 requests initial buffer + 1 per USDC of
 *    cumulative traded volume; once exhausted, 1 request per 10 s; cancels get
 *    min(limit + 100000, 2 × limit); a batch of n orders counts n; expired actions count 5×.
 * Time comes from the simulator clock, so stepped runs are deterministic.
 */
export const IP_WEIGHT_PER_MINUTE = 1200;
export const ADDRESS_INITIAL_BUFFER = 10_000;

const WEIGHT_2 = new Set(['l2Book', 'allMids', 'clearinghouseState', 'orderStatus', 'spotClearinghouseState', 'exchangeStatus']);
const PER_20_ITEMS = new Set(['userFills', 'userFillsByTime', 'recentTrades', 'historicalOrders', 'userTwapSliceFills', 'userTwapSliceFillsByTime', 'delegatorHistory', 'delegatorRewards', 'validatorStats', 'userFunding', 'userNonFundingLedgerUpdates', 'fundingHistory']);

/** Weight charged before answering an info request. */
export function infoBaseWeight(type: string): number {
  if (WEIGHT_2.has(type)) return 2;
  if (type === 'userRole') return 60;
  return 20;
}

/** Extra weight charged after answering, by the size of the answer. */
export function infoResultWeight(type: string, items: number): number {
  if (PER_20_ITEMS.has(type)) return Math.floor(items / 20);
  if (type === 'candleSnapshot') return Math.floor(items / 60);
  return 0;
}

export function exchangeWeight(batchLength: number): number {
  return 1 + Math.floor(batchLength / 40);
}

/** Continuous token bucket per IP. */
export class IpWeightLimiter {
  readonly #perMinute: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  constructor(perMinute = IP_WEIGHT_PER_MINUTE) {
    this.#perMinute = perMinute;
  }
  /** Charges `weight`; false when the bucket cannot pay it (the request is refused and not charged). */
  take(ip: string, weight: number, now: number): boolean {
    const b = this.#refill(ip, now);
    if (b.tokens < weight) return false;
    b.tokens -= weight;
    return true;
  }
  /** Charges after the fact (result-size weight); may go negative, delaying later requests. */
  charge(ip: string, weight: number, now: number): void {
    if (weight > 0) this.#refill(ip, now).tokens -= weight;
  }
  #refill(ip: string, now: number) {
    let b = this.#buckets.get(ip);
    if (!b) {
      b = { tokens: this.#perMinute, at: now };
      this.#buckets.set(ip, b);
    }
    const elapsed = Math.max(0, now - b.at);
    b.tokens = Math.min(this.#perMinute, b.tokens + (elapsed * this.#perMinute) / 60_000);
    b.at = now;
    return b;
  }
}

interface AddressState {
  used: number;
  cumVlm: number;
  lastThrottled: number;
}

export type AddressVerdict = { ok: true } | { ok: false; message: string };

export class AddressLimiter {
  readonly #initial: number;
  readonly #state = new Map<string, AddressState>();
  constructor(initialBuffer = ADDRESS_INITIAL_BUFFER) {
    this.#initial = initialBuffer;
  }
  #get(user: string): AddressState {
    let s = this.#state.get(user);
    if (!s) {
      s = { used: 0, cumVlm: 0, lastThrottled: -Infinity };
      this.#state.set(user, s);
    }
    return s;
  }
  addVolume(user: string, usdc: number): void {
    this.#get(user).cumVlm += usdc;
  }
  cap(user: string): number {
    return this.#initial + Math.floor(this.#get(user).cumVlm);
  }
  /** Counts `n` requests for `user`; refuses when over the cap (one request per 10 s still passes). */
  take(user: string, n: number, now: number, isCancel = false): AddressVerdict {
    const s = this.#get(user);
    const base = this.cap(user);
    const limit = isCancel ? Math.min(base + 100_000, 2 * base) : base;
    if (s.used + n <= limit) {
      s.used += n;
      return { ok: true };
    }
    if (now - s.lastThrottled >= 10_000) {
      s.lastThrottled = now;
      s.used += n;
      return { ok: true };
    }
    return {
      ok: false,
      message: `Too many cumulative requests sent (${s.used + n} > ${limit}) for cumulative volume traded $${s.cumVlm.toFixed(2)}. Place taker orders to free up 1 request per USDC traded.`,
    };
  }
  /** `userRateLimit` info answer. */
  report(user: string): { cumVlm: string; nRequestsUsed: number; nRequestsCap: number; nRequestsSurplus: number } {
    const s = this.#get(user);
    return { cumVlm: s.cumVlm.toFixed(1), nRequestsUsed: s.used, nRequestsCap: this.cap(user), nRequestsSurplus: 0 };
  }
}
