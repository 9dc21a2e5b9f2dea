/**
 * The first difference between two JSON values (as parsed from canonical JSON), with its path, so
 * a divergence report says where a recomputed decision left the recorded one.
 *
 * Invariants: pure; object keys are visited in sorted order and arrays by index, so the "first"
 * difference is the same on every run; `undefined` means the values are equal as JSON.
 */

export interface JsonDifference {
  /** `$` for the root, then `.key` and `[i]` steps, e.g. `$.order.sz`. */
  readonly path: string;
  /** The recorded value at that path (undefined: absent). */
  readonly expected: unknown;
  /** The recomputed value at that path (undefined: absent). */
  readonly got: unknown;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function step(path: string, key: string): string {
  return IDENT.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * @example firstDifference({ a: [1, 2] }, { a: [1, 3] }) // { path: '$.a[1]', expected: 2, got: 3 }
 */
export function firstDifference(expected: unknown, got: unknown, path = '$'): JsonDifference | undefined {
  if (Object.is(expected, got)) return undefined;
  if (Array.isArray(expected) && Array.isArray(got)) {
    const n = Math.min(expected.length, got.length);
    for (let i = 0; i < n; i++) {
      const d = firstDifference(expected[i], got[i], `${path}[${i}]`);
      if (d) return d;
    }
    if (expected.length !== got.length) {
      const i = n;
      return { path: `${path}[${i}]`, expected: expected[i], got: got[i] };
    }
    return undefined;
  }
  if (isObject(expected) && isObject(got)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(got)])].sort();
    for (const k of keys) {
      const d = firstDifference(expected[k], got[k], step(path, k));
      if (d) return d;
    }
    return undefined;
  }
  return { path, expected, got };
}
