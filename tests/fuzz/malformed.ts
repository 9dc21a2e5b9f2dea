/**
 * Generators of structured-but-wrong input for the fuzz suite (issue 4, acceptance 6).
 *
 * Two families, mixed by `malformedFrom(sample)`:
 *  - junk values: wrong types, NaN / ±Infinity / -0 / huge numbers, the same as strings ("NaN",
 *    "1e309", "-1", " 1", "0x10", ""), negative and fractional integers, unknown enum strings,
 *    prototype-pollution keys (`__proto__`, `constructor`, `prototype`), very long strings, and deep
 *    nesting;
 *  - mutations of a real sample: a few edits at random paths (delete a key, replace a value with
 *    junk, add an extra or a pollution key, wrap in an array, nest deeply, swap the container).
 * Objects carrying `__proto__` are built the way JSON.parse builds them: as an OWN property.
 * Everything is plain data (what a wire or a file can carry), so generated values are seeded and
 * replayable.
 */
import fc from 'fast-check';

export const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype'] as const;

const specialNumbers = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, Number.MIN_VALUE, -1, 0.5, -0.0001, 2 ** 64);
const numericStrings = fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e309', '-1e309', '1e5', '-1', '-0', ' 1', '1 ', '0x10', '', '.', '1.', '.5', '01', '1_000', '١٢٣', '1e-400', '9'.repeat(400), '0.' + '0'.repeat(300) + '1', 'null', 'true', '[]', '{}');
const enumStrings = fc.constantFrom('B', 'A', 'b', 'buy', 'sell', 'X', 'open', 'OPEN', 'filled', 'canceled', 'cancelled', 'resting', 'ok', 'err', 'error', 'order', 'cancel', 'default', 'unknownOid', 'waitingForFill', 'mainnet', 'paper', 'wall', '1m', '1M', '2m', 'Gtc');
const longString = fc.integer({ min: 1_000, max: 5_000 }).map((n) => 'x'.repeat(n));

/** A leaf value of the wrong kind for almost any field. */
export const junkLeaf: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: specialNumbers },
  { weight: 3, arbitrary: numericStrings },
  { weight: 2, arbitrary: enumStrings },
  { weight: 2, arbitrary: fc.constantFrom(null, undefined, true, false, 0, 1, '', {}, []) },
  { weight: 2, arbitrary: fc.integer({ min: -1_000_000, max: 1_000_000 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 2, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom(...POLLUTION_KEYS) },
  { weight: 1, arbitrary: longString },
);

/** `depth` levels of arrays or objects around a value. */
export function deepNest(depth: number, leaf: unknown, asObject: boolean): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asObject ? { a: v } : [v];
  return v;
}

/** An object with an own `__proto__` (or other pollution) key, as JSON.parse makes it. */
export function withOwnKey(obj: Record<string, unknown>, key: string, value: unknown): Record<string, unknown> {
  const out = { ...obj };
  Object.defineProperty(out, key, { value, enumerable: true, configurable: true, writable: true });
  return out;
}

/** Junk of any shape: leaves, small containers of junk, pollution objects, nesting up to `maxDepth`. */
function junkOf(maxDepth: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 6, arbitrary: junkLeaf },
    { weight: 2, arbitrary: fc.array(junkLeaf, { maxLength: 4 }) },
    { weight: 2, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), junkLeaf, { maxKeys: 4 }) },
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...POLLUTION_KEYS), junkLeaf).map(([k, v]) => withOwnKey({}, k, { polluted: v })) },
    { weight: 1, arbitrary: fc.tuple(fc.integer({ min: Math.min(50, maxDepth), max: maxDepth }), junkLeaf, fc.boolean()).map(([d, v, o]) => deepNest(d, v, o)) },
  );
}

export const junk: fc.Arbitrary<unknown> = junkOf(1_000);
/** Junk nested at most 30 deep: for formats whose tools are slow on deep nesting (YAML). */
export const shallowJunk: fc.Arbitrary<unknown> = junkOf(30);

type Mutation =
  | { readonly k: 'delete'; readonly at: number }
  | { readonly k: 'replace'; readonly at: number; readonly v: unknown }
  | { readonly k: 'extra'; readonly at: number; readonly key: string; readonly v: unknown }
  | { readonly k: 'wrap'; readonly at: number }
  | { readonly k: 'nest'; readonly at: number; readonly depth: number }
  | { readonly k: 'swap'; readonly at: number };

function mutationOf(maxDepth: number): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.record({ k: fc.constant('delete' as const), at: fc.nat() }),
    { weight: 4, arbitrary: fc.record({ k: fc.constant('replace' as const), at: fc.nat(), v: maxDepth > 30 ? junk : shallowJunk }) },
    fc.record({ k: fc.constant('extra' as const), at: fc.nat(), key: fc.oneof(fc.constantFrom(...POLLUTION_KEYS), fc.string({ maxLength: 6 })), v: junkLeaf }),
    fc.record({ k: fc.constant('wrap' as const), at: fc.nat() }),
    fc.record({ k: fc.constant('nest' as const), at: fc.nat(), depth: fc.integer({ min: Math.min(10, maxDepth), max: maxDepth }) }),
    fc.record({ k: fc.constant('swap' as const), at: fc.nat() }),
  );
}
const mutationArb = mutationOf(1_000);
const shallowMutationArb = mutationOf(30);

type Container = Record<string, unknown> | unknown[];

/** Every (container, key) slot of a plain JSON value, in a stable order. */
function slots(root: unknown): { parent: Container; key: string | number }[] {
  const out: { parent: Container; key: string | number }[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth > 12 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) v.forEach((x, i) => (out.push({ parent: v, key: i }), walk(x, depth + 1)));
    else for (const k of Object.keys(v)) out.push({ parent: v as Record<string, unknown>, key: k }), walk((v as Record<string, unknown>)[k], depth + 1);
  };
  walk(root, 0);
  return out;
}

function apply(root: unknown, m: Mutation): unknown {
  const all = slots(root);
  if (all.length === 0) return m.k === 'replace' ? m.v : root;
  const { parent, key } = all[m.at % all.length]!;
  const get = () => (parent as Record<string | number, unknown>)[key];
  const set = (v: unknown) => {
    if (key === '__proto__' || (typeof key === 'string' && POLLUTION_KEYS.includes(key as never))) {
      Object.defineProperty(parent, key, { value: v, enumerable: true, configurable: true, writable: true });
    } else (parent as Record<string | number, unknown>)[key] = v;
  };
  switch (m.k) {
    case 'delete':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key as string];
      return root;
    case 'replace':
      set(m.v);
      return root;
    case 'extra': {
      const target = get();
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) Object.defineProperty(target, m.key, { value: m.v, enumerable: true, configurable: true, writable: true });
      else set(withOwnKey({}, m.key, m.v));
      return root;
    }
    case 'wrap':
      set([get()]);
      return root;
    case 'nest':
      set(deepNest(m.depth, get(), m.depth % 2 === 0));
      return root;
    case 'swap': {
      const v = get();
      set(Array.isArray(v) ? Object.fromEntries(v.map((x, i) => [String(i), x])) : v !== null && typeof v === 'object' ? Object.values(v) : String(v));
      return root;
    }
  }
}

/** A deep copy of plain data, own `__proto__` keys preserved. */
export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** One to four mutations of a copy of `sample` (`shallow`: nesting at most 30 deep). */
export function mutated(sample: unknown, opts: { shallow?: boolean } = {}): fc.Arbitrary<unknown> {
  return fc.array(opts.shallow ? shallowMutationArb : mutationArb, { minLength: 1, maxLength: 4 }).map((ms) => ms.reduce((acc, m) => apply(acc, m), clone(sample)));
}

/** Mostly mutations of real samples, some pure junk. */
export function malformedFrom(...samples: unknown[]): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...samples).chain(mutated) }, { weight: 2, arbitrary: junk });
}

/** fast-check settings for a 10,000-input fuzz target: seeded, no shrinking noise on success. */
export function fuzzParams(seed: number, numRuns = 10_000): { numRuns: number; seed: number; endOnFailure: boolean } {
  return { numRuns, seed, endOnFailure: true };
}
