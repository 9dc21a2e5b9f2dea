/**
 * Properties of src/domain/protection.ts over random instruments, entries, stops and targets:
 * the stop is always on the losing side of the entry and covers the position, take-profit sizes
 * sum to the position, every price is a valid tick and every size a lot, the break-even move and
 * the trailing stop never loosen the stop, and every replacement places before it cancels.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal, dec, isValidPrice, isValidSize, roundPrice, ZERO } from '../../src/domain/decimal.ts';
import type { Direction, Instrument } from '../../src/domain/types.ts';
import { isProtected, onTp1Filled, planProtection, trailStop, type ProtectiveIntent, type StopReplacement } from '../../src/domain/protection.ts';

const T = 1_700_000_000_000;

const instrumentArb: fc.Arbitrary<Instrument> = fc.integer({ min: 0, max: 5 }).map((szDecimals) => ({ coin: 'X', assetId: 3, szDecimals, maxLeverage: 20, isMajor: false }));

/** A valid price between ~0.01 and ~200000 for the instrument. */
const priceArb = (inst: Instrument) =>
  fc.tuple(fc.integer({ min: 10_000, max: 99_999 }), fc.integer({ min: -6, max: 1 })).map(([m, e]) => roundPrice(new Decimal(m).times(new Decimal(10).pow(e)), inst.szDecimals));

const caseArb = instrumentArb.chain((instrument) =>
  fc.record({
    instrument: fc.constant(instrument),
    direction: fc.constantFrom<Direction>('long', 'short'),
    entry: priceArb(instrument).filter((p) => p.gt(0)),
    lots: fc.integer({ min: 1, max: 5_000_000 }),
    stopFrac: fc.integer({ min: 1, max: 3_000 }), // basis points of the entry
    targetFrac: fc.integer({ min: 1, max: 6_000 }),
  }),
);

function expectValidIntent(i: ProtectiveIntent, inst: Instrument, direction: Direction) {
  expect(i.reduceOnly).toBe(true);
  expect(i.side).toBe(direction === 'long' ? 'sell' : 'buy');
  expect(isValidSize(i.sz, inst.szDecimals)).toBe(true);
  expect(isValidPrice(i.px, inst.szDecimals)).toBe(true);
  expect(isValidPrice(i.trigger!.triggerPx, inst.szDecimals)).toBe(true);
  // The slippage limit is never better than the trigger for the closing side.
  if (i.side === 'sell') expect(i.px.lte(i.trigger!.triggerPx)).toBe(true);
  else expect(i.px.gte(i.trigger!.triggerPx)).toBe(true);
}

function expectPlaceBeforeCancel(r: StopReplacement) {
  const kinds = r.steps.map((s) => s.kind);
  expect(kinds[kinds.length - 1]).toBe('cancel');
  expect(kinds.filter((k) => k === 'cancel')).toHaveLength(1);
}

describe('protection properties', () => {
  it('stop on the losing side for the full size; take profits sum to the position; ticks and lots valid', () => {
    fc.assert(
      fc.property(caseArb, ({ instrument, direction, entry, lots, stopFrac, targetFrac }) => {
        const sz = new Decimal(lots).div(new Decimal(10).pow(instrument.szDecimals));
        const s = direction === 'long' ? -1 : 1;
        const stopPx = entry.times(Decimal.add(1, new Decimal(s * stopFrac).div(10_000)));
        const takeProfitPx = entry.times(Decimal.sub(1, new Decimal(s * targetFrac).div(10_000)));
        const r = planProtection({ instrument, direction, filledSz: sz, avgEntryPx: entry, stopPx, takeProfitPx, time: T });
        if (!r.ok) {
          // Only rounding can defeat a well-formed entry (a stop or target within a tick of it).
          expect(r.reason).toBe('rounding');
          return;
        }
        const { stopLoss, takeProfits, risk } = r.plan;
        const trig = stopLoss.trigger!.triggerPx;
        expect(direction === 'long' ? trig.lt(entry) : trig.gt(entry)).toBe(true);
        expect(stopLoss.trigger!.tpsl).toBe('sl');
        expect(stopLoss.sz.eq(sz)).toBe(true);
        expect(risk.eq(entry.minus(trig).abs())).toBe(true);
        expectValidIntent(stopLoss, instrument, direction);
        expect(takeProfits.length === 1 || takeProfits.length === 2).toBe(true);
        expect(takeProfits.reduce((a, t) => a.plus(t.sz), ZERO).eq(sz)).toBe(true);
        for (const tp of takeProfits) {
          expectValidIntent(tp, instrument, direction);
          expect(tp.trigger!.tpsl).toBe('tp');
          const p = tp.trigger!.triggerPx;
          expect(direction === 'long' ? p.gt(entry) : p.lt(entry)).toBe(true);
        }
        if (takeProfits.length === 2) {
          const [tp1, tp2] = takeProfits as [ProtectiveIntent, ProtectiveIntent];
          expect(tp1.sz.lte(tp2.sz)).toBe(true);
          expect(tp1.sz.times(tp1.trigger!.triggerPx).gte(10)).toBe(true);
          const [p1, p2] = [tp1.trigger!.triggerPx, tp2.trigger!.triggerPx];
          expect(direction === 'long' ? p1.lt(p2) : p1.gt(p2)).toBe(true);
        }
        expect(isProtected({ coin: 'X', szi: direction === 'long' ? sz : sz.neg() }, [stopLoss, ...takeProfits])).toBe(true);
        expect(isProtected({ coin: 'X', szi: direction === 'long' ? sz : sz.neg() }, takeProfits)).toBe(false);
      }),
      { numRuns: 500, seed: 7 },
    );
  });

  it('a stop on the wrong side is always refused', () => {
    fc.assert(
      fc.property(caseArb, ({ instrument, direction, entry, lots, stopFrac }) => {
        const sz = new Decimal(lots).div(new Decimal(10).pow(instrument.szDecimals));
        const s = direction === 'long' ? 1 : -1; // the stop on the winning side
        const stopPx = entry.times(Decimal.add(1, new Decimal(s * stopFrac).div(10_000)));
        const r = planProtection({ instrument, direction, filledSz: sz, avgEntryPx: entry, stopPx, takeProfitPx: stopPx, time: T });
        expect(r).toMatchObject({ ok: false, reason: 'stop_side' });
      }),
      { numRuns: 200, seed: 8 },
    );
  });

  it('break-even never loosens the stop, never sits at a loss, and places before it cancels', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: -3_000, max: 3_000 }), ({ instrument, direction, entry, lots }, stopBp) => {
        const sz = new Decimal(lots).div(new Decimal(10).pow(instrument.szDecimals));
        const current = roundPrice(entry.times(Decimal.add(1, new Decimal(stopBp).div(10_000))), instrument.szDecimals);
        const r = onTp1Filled({ instrument, direction, sz, entryPx: entry }, { cloid: '0xold', triggerPx: current }, T);
        if (direction === 'long') {
          expect(r.triggerPx.gte(current)).toBe(true);
          expect(r.triggerPx.gte(entry)).toBe(true);
        } else {
          expect(r.triggerPx.lte(current)).toBe(true);
          expect(r.triggerPx.lte(entry)).toBe(true);
        }
        expect(isValidPrice(r.triggerPx, instrument.szDecimals)).toBe(true);
        expectPlaceBeforeCancel(r);
        const placed = r.steps[0]!;
        expect(placed.kind === 'place' && placed.intent.sz.eq(sz) && placed.intent.trigger?.triggerPx.eq(r.triggerPx)).toBe(true);
      }),
      { numRuns: 300, seed: 9 },
    );
  });

  it('the trailing stop only moves in the favourable direction and stays on the losing side of the mark', () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: -2_000, max: 5_000 }), fc.integer({ min: 1, max: 1_000 }), ({ instrument, direction, entry, lots, stopFrac }, markBp, trailBp) => {
        const sz = new Decimal(lots).div(new Decimal(10).pow(instrument.szDecimals));
        const s = direction === 'long' ? 1 : -1;
        const current = roundPrice(entry.times(Decimal.sub(1, new Decimal(s * stopFrac).div(10_000))), instrument.szDecimals);
        const mark = roundPrice(entry.times(Decimal.add(1, new Decimal(s * markBp).div(10_000))), instrument.szDecimals);
        if (mark.lte(0) || current.lte(0)) return;
        const r = trailStop({ instrument, direction, sz, entryPx: entry }, { cloid: '0xold', triggerPx: current }, mark, { kind: 'pct', pct: dec(trailBp).div(10_000) }, T);
        if (r === undefined) return;
        expect(direction === 'long' ? r.triggerPx.gt(current) && r.triggerPx.lt(mark) : r.triggerPx.lt(current) && r.triggerPx.gt(mark)).toBe(true);
        expect(isValidPrice(r.triggerPx, instrument.szDecimals)).toBe(true);
        expectPlaceBeforeCancel(r);
      }),
      { numRuns: 300, seed: 10 },
    );
  });
});
