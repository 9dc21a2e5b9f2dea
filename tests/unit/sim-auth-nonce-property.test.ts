/** NonceTracker against a brute-force model of the documented rule, on random nonce streams. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { NonceTracker } from '../../src/sim/auth/index.ts';

const NOW = 1_800_000_000_000;

/** Accept iff never used and, when ≥ cap accepted, above the smallest of the cap highest accepted. */
function modelAccepts(accepted: number[], n: number, cap: number): boolean {
  if (accepted.includes(n)) return false;
  if (accepted.length < cap) return true;
  const top = [...accepted].sort((a, b) => b - a).slice(0, cap);
  return n > Math.min(...top);
}

describe('NonceTracker property', () => {
  it('matches the model for any stream (small capacity to reach the full-set regime)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 200 }), fc.integer({ min: 1, max: 10 }), (offsets, cap) => {
        const t = new NonceTracker({ capacity: cap });
        const accepted: number[] = [];
        for (const off of offsets) {
          const n = NOW + off;
          const expected = modelAccepts(accepted, n, cap);
          const refusal = t.use('0xabc', n, NOW);
          expect(refusal === undefined).toBe(expected);
          if (expected) accepted.push(n);
          else expect(refusal).toMatch(/^Invalid nonce: (duplicate nonce|nonce too low) /);
        }
      }),
      { seed: 20260101, numRuns: 300 },
    );
  });
});
