/**
 * Per-signer nonce sets, as Hyperliquid keeps them.
 *
 * Invariants: the set of a signer (the agent's own address when an agent signs) holds at most
 * `capacity` (100) of its highest accepted nonces, sorted ascending; a new nonce must lie strictly
 * inside (now − 2 days, now + 1 day), must not be in the set, and once the set is full must exceed
 * its smallest member (everything evicted was smaller, so "never used before" still holds).
 * `check` never mutates; `commit` only after a successful check.
 */
import { messages } from './errors.ts';

export const DAY_MS = 86_400_000;

export interface NonceTrackerOptions {
  /** How many of the highest nonces are kept per signer (100 on Hyperliquid). */
  readonly capacity?: number;
  readonly maxPastMs?: number;
  readonly maxFutureMs?: number;
}

export class NonceTracker {
  readonly #sets = new Map<string, number[]>();
  readonly #capacity: number;
  readonly #maxPastMs: number;
  readonly #maxFutureMs: number;

  constructor(options: NonceTrackerOptions = {}) {
    this.#capacity = options.capacity ?? 100;
    this.#maxPastMs = options.maxPastMs ?? 2 * DAY_MS;
    this.#maxFutureMs = options.maxFutureMs ?? DAY_MS;
  }

  /**
   * The refusal message for `nonce` from `signer` at exchange time `now`, or undefined if acceptable.
   *
   * @example tracker.check('0xabc…', 1_700_000_000_000, clock.now()) // undefined | 'Invalid nonce: duplicate nonce …'
   */
  check(signer: string, nonce: number, now: number): string | undefined {
    const low = now - this.#maxPastMs;
    const high = now + this.#maxFutureMs;
    if (nonce <= low) return messages.nonceTooLow(nonce, low);
    if (nonce >= high) return messages.nonceTooHigh(nonce, high);
    const set = this.#sets.get(signer.toLowerCase());
    if (set === undefined) return undefined;
    const i = lowerBound(set, nonce);
    if (set[i] === nonce) return messages.duplicateNonce(nonce);
    const smallest = set[0];
    if (set.length >= this.#capacity && smallest !== undefined && nonce < smallest) return messages.nonceTooLow(nonce, smallest);
    return undefined;
  }

  /** Records an accepted nonce (call only after `check` returned undefined). */
  commit(signer: string, nonce: number): void {
    const key = signer.toLowerCase();
    let set = this.#sets.get(key);
    if (set === undefined) {
      set = [];
      this.#sets.set(key, set);
    }
    const i = lowerBound(set, nonce);
    if (set[i] === nonce) return;
    set.splice(i, 0, nonce);
    if (set.length > this.#capacity) set.shift();
  }

  /** check + commit in one step; returns the refusal message or undefined when the nonce was taken. */
  use(signer: string, nonce: number, now: number): string | undefined {
    const refusal = this.check(signer, nonce, now);
    if (refusal === undefined) this.commit(signer, nonce);
    return refusal;
  }

  /** Drops a signer's set (Hyperliquid may prune deregistered agents: never reuse agent keys). */
  forget(signer: string): void {
    this.#sets.delete(signer.toLowerCase());
  }

  /** The stored nonces of a signer, ascending. */
  stored(signer: string): readonly number[] {
    return [...(this.#sets.get(signer.toLowerCase()) ?? [])];
  }
}

function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
