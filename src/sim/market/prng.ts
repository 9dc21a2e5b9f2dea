/**
 * Counter-based pseudo-randomness for the market replay.
 *
 * Every random draw is a pure hash of (seed, stream, indices): there is no hidden generator state,
 * so block n can be recomputed in any order and always comes out the same. The mixer is the
 * 32-bit finaliser of MurmurHash3 applied to a running combination (a well-known avalanche
 * function); it is not cryptographic and does not need to be.
 */

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds one 32-bit word into a running hash (golden-ratio offset keeps zero inputs distinct). */
function fold(h: number, x: number): number {
  return fmix32((h ^ fmix32((x + 0x9e3779b9) | 0)) + 0x7f4a7c15);
}

/**
 * Hashes up to five integers to an unsigned 32-bit word. Inputs may be any safe integers; the
 * high part of values beyond 32 bits is folded in so large indices never alias.
 */
export function hash32(a: number, b: number, c = 0, d = 0, e = 0): number {
  let h = 0x243f6a88;
  h = fold(h, a | 0);
  h = fold(h, Math.floor(a / 4294967296) | 0);
  h = fold(h, b | 0);
  h = fold(h, c | 0);
  h = fold(h, Math.floor(c / 4294967296) | 0);
  h = fold(h, d | 0);
  h = fold(h, e | 0);
  return h;
}

/** Uniform in [0, 1). */
export function u01(a: number, b: number, c = 0, d = 0, e = 0): number {
  return hash32(a, b, c, d, e) / 4294967296;
}

/** Uniform in [-1, 1). */
export function s11(a: number, b: number, c = 0, d = 0, e = 0): number {
  return hash32(a, b, c, d, e) / 2147483648 - 1;
}

/** Reduces an arbitrary string to a 32-bit word (FNV-1a), e.g. to give each coin its own stream. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
