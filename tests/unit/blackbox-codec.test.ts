/**
 * The black box's row format: canonical payload text (deterministic, JSON round-trip stable) and
 * the chain hash's exact input.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import { BlackboxError, canonicalJson, chainHash, GENESIS_HASH, rowToJsonLine } from '../../src/store/blackbox-codec.ts';

/** The same object built with its keys inserted in the reverse order, recursively. */
function reversedKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversedKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  // defineProperty: a generated "__proto__" key must stay an own property.
  for (const k of Object.keys(v).reverse()) Object.defineProperty(out, k, { value: reversedKeys((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
  return out;
}

describe('canonicalJson', () => {
  it('orders keys whatever their insertion order, integer-like keys first as JavaScript does', () => {
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}');
    expect(canonicalJson({ b: 1, 10: 'x', a: 2, 2: 'y', '01': 'z' })).toBe('{"2":"y","10":"x","01":"z","a":2,"b":1}');
  });

  it('writes decimals as plain strings, maps as objects, sets sorted, and keeps non-finite numbers', () => {
    const v = {
      px: dec('65000.50'),
      tiny: dec('1e-30'),
      huge: dec('1e45'),
      negZero: dec('-0'),
      book: new Map<unknown, unknown>([['b', 1], [3, dec('2')]]),
      tags: new Set(['z', 'a', 'm']),
      big: 12345678901234567890n,
      at: new Date(1_700_000_000_000),
      nan: Number.NaN,
      inf: -Infinity,
      zero: -0,
      gone: undefined,
      fn: () => 1,
      list: [undefined, 1, () => 2],
      err: new Error('boom'),
    };
    expect(canonicalJson(v)).toBe(
      '{"at":1700000000000,"big":"12345678901234567890","book":{"3":"2","b":1},"err":{"message":"boom","name":"Error"},' +
        '"huge":"1000000000000000000000000000000000000000000000","inf":"-Infinity","list":[null,1,null],"nan":"NaN","negZero":"0",' +
        '"px":"65000.5","tags":["a","m","z"],"tiny":"0.000000000000000000000000000001","zero":0}',
    );
    expect(canonicalJson(undefined)).toBe('null');
  });

  it('refuses cycles, ambiguous map keys and absurd nesting with a BlackboxError', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(BlackboxError);
    expect(() => canonicalJson(new Map<unknown, unknown>([[1, 'a'], ['1', 'b']]))).toThrow(/twice/);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrow(/deeper/);
    // A shared (not cyclic) reference is fine.
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('is independent of key insertion order and a fixed point of JSON.parse → JSON.stringify', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        expect(canonicalJson(reversedKeys(v))).toBe(text);
        expect(JSON.stringify(JSON.parse(text))).toBe(text);
        expect(text).not.toContain('\n');
      }),
      { numRuns: 500, seed: 4 },
    );
  });
});

describe('chainHash', () => {
  it('is sha256 over prev_hash, seq, time, kind, type and payload separated by newlines', () => {
    const payload = canonicalJson({ coin: 'BTC', px: dec('60000') });
    const expected = createHash('sha256').update(`${GENESIS_HASH}\n1\n1700000000000\ninput\nfeed.trade\n{"coin":"BTC","px":"60000"}`).digest('hex');
    expect(chainHash(GENESIS_HASH, 1, 1_700_000_000_000, 'input', 'feed.trade', payload)).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
  });

  it('tells apart field values that would concatenate to the same text', () => {
    expect(chainHash(GENESIS_HASH, 12, 3, 'input', 't', '1')).not.toBe(chainHash(GENESIS_HASH, 1, 23, 'input', 't', '1'));
    expect(chainHash(GENESIS_HASH, 1, 1, 'input', 'a', '"b"')).not.toBe(chainHash(GENESIS_HASH, 1, 1, 'input', 'a"', 'b"'));
  });
});

describe('rowToJsonLine', () => {
  it('is one JSON object with every field and the payload embedded as JSON', () => {
    const payload = canonicalJson({ a: [1, 'two'] });
    const hash = chainHash(GENESIS_HASH, 1, 5, 'decision', 'risk.verdict', payload);
    const line = rowToJsonLine({ seq: 1, time: 5, kind: 'decision', type: 'risk.verdict', payload, prevHash: GENESIS_HASH, hash });
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({ seq: 1, time: 5, kind: 'decision', type: 'risk.verdict', payload: { a: [1, 'two'] }, prev_hash: GENESIS_HASH, hash });
  });
});
