import { describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import type { Instrument, VenueOrder } from '../../src/domain/types.ts';
import { isProtected, onTp1Filled, planProtection, trailStop, type ProtectionPlan } from '../../src/domain/protection.ts';

const BTC: Instrument = { coin: 'BTC', assetId: 0, szDecimals: 5, maxLeverage: 40, isMajor: true };
const ETH: Instrument = { coin: 'ETH', assetId: 1, szDecimals: 4, maxLeverage: 25, isMajor: true };
const T = 1_700_000_000_000;
const ENTRY = '0x000000000000000000000000000000e1';

function plan(r: ReturnType<typeof planProtection>): ProtectionPlan {
  if (!r.ok) throw new Error(`refused: ${r.reason} ${r.detail}`);
  return r.plan;
}

/** Decimal fields as strings, for readable hand-computed expectations. */
function show(i: ProtectionPlan['stopLoss']) {
  return { side: i.side, sz: i.sz.toFixed(), px: i.px.toFixed(), trigger: i.trigger && { ...i.trigger, triggerPx: i.trigger.triggerPx.toFixed() }, reduceOnly: i.reduceOnly, kind: i.kind };
}

describe('planProtection', () => {
  it('long BTC 0.1 @ 65000, stop 64000, target 67000: SL full size, TP1 half at 1R, TP2 rest at target', () => {
    const p = plan(planProtection({ instrument: BTC, direction: 'long', filledSz: dec('0.1'), avgEntryPx: dec('65000'), stopPx: dec('64000'), takeProfitPx: dec('67000'), entryCloid: ENTRY, time: T }));
    expect(p.risk.toFixed()).toBe('1000');
    // 64000 · 0.95 = 60800; 66000 · 0.95 = 62700; 67000 · 0.95 = 63650
    expect(show(p.stopLoss)).toEqual({ side: 'sell', sz: '0.1', px: '60800', trigger: { triggerPx: '64000', tpsl: 'sl', isMarket: true }, reduceOnly: true, kind: 'stop_loss' });
    expect(p.takeProfits.map(show)).toEqual([
      { side: 'sell', sz: '0.05', px: '62700', trigger: { triggerPx: '66000', tpsl: 'tp', isMarket: true }, reduceOnly: true, kind: 'take_profit_1' },
      { side: 'sell', sz: '0.05', px: '63650', trigger: { triggerPx: '67000', tpsl: 'tp', isMarket: true }, reduceOnly: true, kind: 'take_profit' },
    ]);
    expect(p.stopLoss.parentCloid).toBe(ENTRY);
    expect(p.stopLoss.createdAt).toBe(T);
    expect(p.stopLoss.coin).toBe('BTC');
  });

  it('short ETH 1.5 @ 3000.5: prices rounded to 5 significant figures toward the entry', () => {
    const p = plan(planProtection({ instrument: ETH, direction: 'short', filledSz: dec('1.5'), avgEntryPx: dec('3000.5'), stopPx: dec('3050.37'), takeProfitPx: dec('2900.04'), time: T }));
    // stop 3050.37 → 3050.3 (down, toward the entry); R = 49.8; TP1 = 2950.7; target 2900.04 → 2900.1 (up)
    expect(p.risk.toFixed()).toBe('49.8');
    // 3050.3 · 1.05 = 3202.815 → 3202.9 (up: a buy's worst price)
    expect(show(p.stopLoss)).toEqual({ side: 'buy', sz: '1.5', px: '3202.9', trigger: { triggerPx: '3050.3', tpsl: 'sl', isMarket: true }, reduceOnly: true, kind: 'stop_loss' });
    expect(p.takeProfits.map((t) => [t.sz.toFixed(), t.trigger!.triggerPx.toFixed(), t.side])).toEqual([
      ['0.75', '2950.7', 'buy'],
      ['0.75', '2900.1', 'buy'],
    ]);
  });

  it('an odd lot splits with the larger half at the target', () => {
    const p = plan(planProtection({ instrument: ETH, direction: 'long', filledSz: dec('0.0003'), avgEntryPx: dec('50000'), stopPx: dec('49000'), takeProfitPx: dec('53000'), time: T }));
    // half = 0.00015 → 0.0001 (lot 4); notional 0.0001 · 51000 = 5.1 < 10 → one TP
    expect(p.takeProfits).toHaveLength(1);
    const q = plan(planProtection({ instrument: ETH, direction: 'long', filledSz: dec('0.0011'), avgEntryPx: dec('50000'), stopPx: dec('49000'), takeProfitPx: dec('53000'), time: T }));
    // half 0.00055 → 0.0005 (25.5 $), rest 0.0006
    expect(q.takeProfits.map((t) => t.sz.toFixed())).toEqual(['0.0005', '0.0006']);
  });

  it('one TP for the whole size when half rounds to zero or is below $10', () => {
    const tiny = plan(planProtection({ instrument: BTC, direction: 'long', filledSz: dec('0.00001'), avgEntryPx: dec('65000'), stopPx: dec('64000'), takeProfitPx: dec('67000'), time: T }));
    expect(tiny.takeProfits.map((t) => [t.sz.toFixed(), t.trigger!.triggerPx.toFixed(), t.kind])).toEqual([['0.00001', '67000', 'take_profit']]);
    // 0.00015 · 66000 = 9.9 $ < 10
    const small = plan(planProtection({ instrument: BTC, direction: 'long', filledSz: dec('0.0003'), avgEntryPx: dec('65000'), stopPx: dec('64000'), takeProfitPx: dec('67000'), time: T }));
    expect(small.takeProfits).toHaveLength(1);
    expect(small.takeProfits[0]!.sz.toFixed()).toBe('0.0003');
  });

  it('one TP when the target is nearer than 1R', () => {
    const p = plan(planProtection({ instrument: BTC, direction: 'long', filledSz: dec('0.1'), avgEntryPx: dec('65000'), stopPx: dec('64000'), takeProfitPx: dec('65500'), time: T }));
    expect(p.takeProfits.map((t) => t.trigger!.triggerPx.toFixed())).toEqual(['65500']);
  });

  it('refuses a stop or a target on the wrong side, and sizes that are not lots', () => {
    const base = { instrument: BTC, filledSz: dec('0.1'), avgEntryPx: dec('65000'), time: T };
    expect(planProtection({ ...base, direction: 'long', stopPx: dec('66000'), takeProfitPx: dec('67000') })).toMatchObject({ ok: false, reason: 'stop_side' });
    expect(planProtection({ ...base, direction: 'short', stopPx: dec('64000'), takeProfitPx: dec('63000') })).toMatchObject({ ok: false, reason: 'stop_side' });
    expect(planProtection({ ...base, direction: 'long', stopPx: dec('64000'), takeProfitPx: dec('64500') })).toMatchObject({ ok: false, reason: 'take_profit_side' });
    expect(planProtection({ ...base, direction: 'long', stopPx: dec('64999.6'), takeProfitPx: dec('67000') })).toMatchObject({ ok: false, reason: 'rounding' });
    expect(planProtection({ ...base, filledSz: dec('0.000001'), direction: 'long', stopPx: dec('64000'), takeProfitPx: dec('67000') })).toMatchObject({ ok: false, reason: 'size' });
  });
});

describe('onTp1Filled', () => {
  const position = { instrument: BTC, direction: 'long' as const, sz: dec('0.05'), entryPx: dec('65000.37'), entryCloid: ENTRY };
  const old = { cloid: '0x000000000000000000000000000000b1', triggerPx: dec('64000') };

  it('moves the stop to break-even (rounded up for a long) for the remaining size: place first, then cancel', () => {
    const r = onTp1Filled(position, old, T);
    expect(r.triggerPx.toFixed()).toBe('65001');
    expect(r.steps.map((s) => s.kind)).toEqual(['place', 'cancel']);
    const placed = r.steps[0]!;
    if (placed.kind !== 'place') throw new Error('expected place');
    expect(placed.intent.sz.toFixed()).toBe('0.05');
    expect(placed.intent.trigger).toMatchObject({ tpsl: 'sl', isMarket: true });
    expect(placed.intent.reduceOnly).toBe(true);
    expect(r.steps[1]).toEqual({ kind: 'cancel', cloid: old.cloid });
  });

  it('short: break-even rounds down', () => {
    const r = onTp1Filled({ instrument: ETH, direction: 'short', sz: dec('0.75'), entryPx: dec('3000.57') }, { cloid: old.cloid, triggerPx: dec('3050.3') }, T);
    expect(r.triggerPx.toFixed()).toBe('3000.5');
  });

  it('never loosens a stop already tighter than break-even', () => {
    const r = onTp1Filled(position, { cloid: old.cloid, triggerPx: dec('65500') }, T);
    expect(r.triggerPx.toFixed()).toBe('65500');
  });

  it('with nothing left only cancels the old stop', () => {
    expect(onTp1Filled({ ...position, sz: dec('0') }, old, T).steps).toEqual([{ kind: 'cancel', cloid: old.cloid }]);
  });
});

describe('trailStop', () => {
  const long = { instrument: BTC, direction: 'long' as const, sz: dec('0.1'), entryPx: dec('65000') };
  const stop = { cloid: '0x000000000000000000000000000000b1', triggerPx: dec('64000') };

  it('trails a long up by a percentage, and never down', () => {
    // 70000 · (1 − 0.02) = 68600
    expect(trailStop(long, stop, dec('70000'), { kind: 'pct', pct: dec('0.02') }, T)?.triggerPx.toFixed()).toBe('68600');
    expect(trailStop(long, stop, dec('65000'), { kind: 'pct', pct: dec('0.02') }, T)).toBeUndefined(); // 63700 < 64000
  });

  it('trails a short down by ATR multiples', () => {
    const short = { instrument: ETH, direction: 'short' as const, sz: dec('1'), entryPx: dec('3000') };
    // 2800 + 2 · 25.5 = 2851
    const r = trailStop(short, { cloid: stop.cloid, triggerPx: dec('3050') }, dec('2800'), { kind: 'atr', atr: dec('25.5'), multiple: dec('2') }, T);
    expect(r?.triggerPx.toFixed()).toBe('2851');
    expect(r?.steps.map((s) => s.kind)).toEqual(['place', 'cancel']);
    expect(trailStop(short, { cloid: stop.cloid, triggerPx: dec('2850') }, dec('2800'), { kind: 'atr', atr: dec('25.5'), multiple: dec('2') }, T)).toBeUndefined();
  });
});

describe('isProtected', () => {
  const order = (over: Partial<VenueOrder>): VenueOrder => ({ oid: 1, coin: 'BTC', side: 'sell', px: dec('60800'), sz: dec('0.1'), origSz: dec('0.1'), reduceOnly: true, isTrigger: true, triggerPx: dec('64000'), timestamp: T, ...over });
  const long = { coin: 'BTC', szi: dec('0.1') };

  it('a flat position is protected', () => {
    expect(isProtected({ coin: 'BTC', szi: dec('0') }, [])).toBe(true);
  });

  it('a long needs reduce-only sell stops below the mark covering its size', () => {
    expect(isProtected(long, [order({})], dec('65000'))).toBe(true);
    expect(isProtected(long, [order({ sz: dec('0.05') })], dec('65000'))).toBe(false);
    expect(isProtected(long, [order({ sz: dec('0.05') }), order({ oid: 2, sz: dec('0.05'), triggerPx: dec('63000') })], dec('65000'))).toBe(true);
    expect(isProtected(long, [order({ reduceOnly: false })], dec('65000'))).toBe(false);
    expect(isProtected(long, [order({ side: 'buy' })], dec('65000'))).toBe(false);
    expect(isProtected(long, [order({ coin: 'ETH' })], dec('65000'))).toBe(false);
    expect(isProtected(long, [order({ triggerPx: dec('66000') })], dec('65000'))).toBe(false); // a take profit
    expect(isProtected(long, [order({ isTrigger: false, triggerPx: undefined })], dec('65000'))).toBe(false);
    expect(isProtected(long, [order({})])).toBe(false); // untagged and no mark: cannot tell
  });

  it('intents say what they are, with no mark needed', () => {
    const p = plan(planProtection({ instrument: BTC, direction: 'short', filledSz: dec('0.1'), avgEntryPx: dec('65000'), stopPx: dec('66000'), takeProfitPx: dec('62000'), time: T }));
    const short = { coin: 'BTC', szi: dec('-0.1') };
    expect(isProtected(short, [p.stopLoss, ...p.takeProfits])).toBe(true);
    expect(isProtected(short, p.takeProfits)).toBe(false);
  });
});
