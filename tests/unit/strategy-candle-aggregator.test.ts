import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Candle } from '../../src/domain/types.ts';
import { CandleAggregator, intervalMs } from '../../src/strategy/candle-aggregator.ts';

const M = 60_000;
const T0 = Date.UTC(2024, 0, 1); // a multiple of 5 minutes

function bar(minute: number, o: number, h: number, l: number, c: number, v: number, extra: Partial<Candle> = {}): Candle {
  return { coin: 'BTC', interval: '1m', t: T0 + minute * M, T: T0 + minute * M + M - 1, o, h, l, c, v, closed: true, ...extra };
}

/** A bar whose values encode its minute, so aggregates are easy to check by hand. */
const b = (minute: number): Candle => bar(minute, 100 + minute, 101 + minute + (minute % 3), 99 + minute - (minute % 2), 100.5 + minute, 10 + minute);

function agg(from = '1m', to = '5m'): CandleAggregator {
  const r = CandleAggregator.create({ from, to });
  if (!r.ok) throw new Error(JSON.stringify(r.issue));
  return r.aggregator;
}

describe('CandleAggregator 1m → 5m', () => {
  it('emits each bucket on its last minute with exact OHLCV and aligned t / T', () => {
    const a = agg();
    const out = Array.from({ length: 10 }, (_, m) => a.update(b(m)));
    expect(out.map((x) => x.length)).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    expect(out[4]![0]).toEqual({ coin: 'BTC', interval: '5m', t: T0, T: T0 + 5 * M - 1, o: 100, h: Math.max(...[0, 1, 2, 3, 4].map((m) => 101 + m + (m % 3))), l: 99, c: 104.5, v: 10 + 11 + 12 + 13 + 14, closed: true });
    expect(out[9]![0]).toMatchObject({ t: T0 + 5 * M, T: T0 + 10 * M - 1, o: 105, c: 109.5, v: 15 + 16 + 17 + 18 + 19, l: 99 + 5 - 1 });
  });

  it('a stream starting mid-bucket gives a partial first bucket, still aligned', () => {
    const a = agg();
    expect(a.update(b(3))).toEqual([]);
    const [c] = a.update(b(4));
    expect(c).toMatchObject({ t: T0, T: T0 + 5 * M - 1, o: 103, c: 104.5, v: 13 + 14 });
  });

  it('a bucket missing its last minute is emitted when a later bucket starts; empty buckets are skipped', () => {
    const a = agg();
    for (const m of [0, 1, 2]) expect(a.update(b(m))).toEqual([]);
    const [closed] = a.update(b(6));
    expect(closed).toMatchObject({ t: T0, o: 100, c: 102.5, v: 10 + 11 + 12 });
    for (const m of [7, 8]) expect(a.update(b(m))).toEqual([]);
    expect(a.update(b(9))[0]).toMatchObject({ t: T0 + 5 * M, o: 106, c: 109.5, v: 16 + 17 + 18 + 19 });
    // 10..19 absent: nothing invented for them.
    for (const m of [20, 21, 22, 23]) expect(a.update(b(m))).toEqual([]);
    expect(a.update(b(24)).map((c) => c.t)).toEqual([T0 + 20 * M]);
  });

  it('one bar can close a truncated bucket and complete its own', () => {
    const a = agg();
    a.update(b(0));
    a.update(b(1));
    const out = a.update(b(9));
    expect(out.map((c) => [c.t, c.o, c.c, c.v])).toEqual([
      [T0, 100, 101.5, 21],
      [T0 + 5 * M, 109, 109.5, 19],
    ]);
  });

  it('ignores unclosed bars, other intervals, other coins, duplicates and out-of-order bars', () => {
    const a = agg();
    expect(a.update(b(0))).toEqual([]);
    expect(a.update(bar(1, 1, 1e9, 1, 1, 1e9, { closed: false }))).toEqual([]);
    expect(a.update(bar(1, 1, 1e9, 1, 1, 1e9, { interval: '5m' }))).toEqual([]);
    expect(a.update(bar(1, 1, 1e9, 1, 1, 1e9, { coin: 'ETH' }))).toEqual([]);
    for (const m of [1, 2, 3]) a.update(b(m));
    expect(a.update(bar(3, 1, 1e9, 1, 1, 1e9))).toEqual([]); // duplicate t
    expect(a.update(bar(2, 1, 1e9, 1, 1, 1e9))).toEqual([]); // older t
    const [c] = a.update(b(4));
    expect(c).toMatchObject({ h: Math.max(...[0, 1, 2, 3, 4].map((m) => 101 + m + (m % 3))), v: 60 });
  });

  it('matches a naive group-by over any set of minutes (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 200 }), fc.constantFrom('3m', '5m', '15m', '1h'), (minutes, to) => {
        const sorted = [...minutes].sort((x, y) => x - y);
        const a = agg('1m', to);
        const out = sorted.flatMap((m) => a.update(b(m)));
        const size = intervalMs(to)! / M;
        const groups = new Map<number, number[]>();
        for (const m of sorted) groups.set(Math.floor(m / size), [...(groups.get(Math.floor(m / size)) ?? []), m]);
        const last = sorted[sorted.length - 1]!;
        // Every bucket is out except the last one when its final minute has not arrived.
        const expected = [...groups.entries()].filter(([k]) => k !== Math.floor(last / size) || (last + 1) % size === 0);
        expect(out.map((c) => c.t)).toEqual(expected.map(([k]) => T0 + k * size * M));
        out.forEach((c, i) => {
          const ms = expected[i]![1].map(b);
          expect(c).toEqual({ coin: 'BTC', interval: to, t: c.t, T: c.t + size * M - 1, o: ms[0]!.o, h: Math.max(...ms.map((x) => x.h)), l: Math.min(...ms.map((x) => x.l)), c: ms[ms.length - 1]!.c, v: ms.reduce((s, x) => s + x.v, 0), closed: true });
        });
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});

describe('CandleAggregator configuration', () => {
  it('parses intervals and refuses impossible pairs as values', () => {
    expect(intervalMs('1m')).toBe(M);
    expect(intervalMs('4h')).toBe(240 * M);
    expect(intervalMs('1d')).toBe(1440 * M);
    expect(intervalMs('1M')).toBeUndefined();
    expect(intervalMs('0m')).toBeUndefined();
    expect(CandleAggregator.create({ from: '1m', to: 'soon' })).toEqual({ ok: false, issue: { kind: 'bad_interval', interval: 'soon' } });
    expect(CandleAggregator.create({ from: '5m', to: '7m' })).toEqual({ ok: false, issue: { kind: 'not_a_multiple', from: '5m', to: '7m' } });
    expect(CandleAggregator.create({ from: '5m', to: '1m' }).ok).toBe(false);
    const r = CandleAggregator.create({ from: '1m', to: '1h' });
    expect(r.ok && r.aggregator.ratio).toBe(60);
  });
});
