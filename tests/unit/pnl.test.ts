/**
 * Round-trip PnL against hand-computed cases: longs and shorts, fees (and a maker rebate)
 * subtracted, a two-step take-profit priced from its fills.
 */
import { describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import { roundTripFromFills, tradePnl } from '../../src/domain/pnl.ts';

describe('tradePnl', () => {
  it('long: gross = (exit − entry) × sz, net = gross − entry and exit fees', () => {
    // 0.5 BTC bought at 60000 (taker 0.045 %: 0.5 × 60000 × 0.00045 = 13.5), sold at 61000
    // (0.5 × 61000 × 0.00045 = 13.725). gross = 1000 × 0.5 = 500; fees = 27.225; net = 472.775.
    const p = tradePnl({ direction: 'long', sz: dec('0.5'), entryPx: dec('60000'), exitPx: dec('61000'), entryFees: dec('13.5'), exitFees: dec('13.725') });
    expect(p.gross.toFixed()).toBe('500');
    expect(p.fees.toFixed()).toBe('27.225');
    expect(p.net.toFixed()).toBe('472.775');
  });

  it('short: gross = (entry − exit) × sz; a maker rebate (negative fee) adds to net', () => {
    // 10 ETH sold at 3000, bought back at 3100: gross = (3000 − 3100) × 10 = −1000.
    // Entry maker rebate −0.6, exit taker fee 13.95: fees = 13.35, net = −1013.35.
    const p = tradePnl({ direction: 'short', sz: dec('10'), entryPx: dec('3000'), exitPx: dec('3100'), entryFees: dec('-0.6'), exitFees: dec('13.95') });
    expect(p.gross.toFixed()).toBe('-1000');
    expect(p.fees.toFixed()).toBe('13.35');
    expect(p.net.toFixed()).toBe('-1013.35');
  });

  it('a losing long and a winning short are mirror images before fees', () => {
    const args = { sz: dec('2'), entryPx: dec('100'), exitPx: dec('90'), entryFees: dec(0), exitFees: dec(0) };
    expect(tradePnl({ ...args, direction: 'long' }).gross.toFixed()).toBe('-20');
    expect(tradePnl({ ...args, direction: 'short' }).gross.toFixed()).toBe('20');
  });
});

describe('roundTripFromFills', () => {
  it('prices a two-step take-profit exactly', () => {
    // Long 1 SOL in two fills: 0.4 @ 150.1 and 0.6 @ 150.2 → entry notional 60.04 + 90.12 = 150.16.
    // Exits: 0.5 @ 153 (1R) and 0.5 @ 156 → exit notional 76.5 + 78 = 154.5. gross = 4.34.
    // Fees: 0.03 + 0.04 + 0.05 + 0.05 = 0.17 → net = 4.17. Average entry 150.16, exit 154.5.
    const rt = roundTripFromFills(
      'long',
      [
        { px: dec('150.1'), sz: dec('0.4'), fee: dec('0.03') },
        { px: dec('150.2'), sz: dec('0.6'), fee: dec('0.04') },
      ],
      [
        { px: dec('153'), sz: dec('0.5'), fee: dec('0.05') },
        { px: dec('156'), sz: dec('0.5'), fee: dec('0.05') },
      ],
    );
    expect(rt).toBeDefined();
    expect(rt!.sz.toFixed()).toBe('1');
    expect(rt!.entryPx.toFixed()).toBe('150.16');
    expect(rt!.exitPx.toFixed()).toBe('154.5');
    expect(rt!.gross.toFixed()).toBe('4.34');
    expect(rt!.fees.toFixed()).toBe('0.17');
    expect(rt!.net.toFixed()).toBe('4.17');
    // Agrees with the formula on the averages.
    const viaFormula = tradePnl({ direction: 'long', sz: rt!.sz, entryPx: rt!.entryPx, exitPx: rt!.exitPx, entryFees: dec('0.07'), exitFees: dec('0.1') });
    expect(viaFormula.net.eq(rt!.net)).toBe(true);
  });

  it('a short round trip from fills', () => {
    // Sell 3 @ 20, buy back 1 @ 19 and 2 @ 18.5: gross = 60 − (19 + 37) = 4; fees 0.1 → net 3.9.
    const rt = roundTripFromFills('short', [{ px: dec('20'), sz: dec('3'), fee: dec('0.04') }], [
      { px: dec('19'), sz: dec('1'), fee: dec('0.02') },
      { px: dec('18.5'), sz: dec('2'), fee: dec('0.04') },
    ]);
    expect(rt!.gross.toFixed()).toBe('4');
    expect(rt!.net.toFixed()).toBe('3.9');
  });

  it('refuses fills that do not close what they opened', () => {
    expect(roundTripFromFills('long', [{ px: dec('1'), sz: dec('2'), fee: dec(0) }], [{ px: dec('1'), sz: dec('1'), fee: dec(0) }])).toBeUndefined();
    expect(roundTripFromFills('long', [], [])).toBeUndefined();
  });
});
