/**
 * The default strategy on the real bundled BTC day (data/candles/20221213_btcusd_minute_trade_perp.csv,
 * Binance COIN-M BTCUSD perpetual, 1,440 contiguous minutes once the loader fills the one absent
 * minute): it must trade about once an hour, both ways, with well-formed prices.
 */
import { describe, expect, it } from 'vitest';
import { isValidPrice } from '../../src/domain/decimal.ts';
import type { Candle, Instrument, Signal } from '../../src/domain/types.ts';
import { type Bar, loadBundledSeries } from '../../src/sim/market/index.ts';
import { ENHANCED_MACD_DEFAULTS, createStrategy } from '../../src/strategy/index.ts';

function toCandle(coin: string, b: Bar): Candle {
  return { coin, interval: '1m', t: b.t, T: b.t + 59_999, o: b.o.toNumber(), h: b.h.toNumber(), l: b.l.toNumber(), c: b.c.toNumber(), v: b.v.toNumber(), closed: true };
}

describe('enhanced-macd defaults on the bundled BTC day', () => {
  const btc = loadBundledSeries().find((s) => s.coin === 'BTC')!;
  const instrument: Instrument = { coin: 'BTC', assetId: 0, szDecimals: btc.szDecimals, maxLeverage: btc.maxLeverage, isMajor: true };
  const candles = btc.bars.map((b) => toCandle('BTC', b));

  it('emits roughly one signal an hour, long and short, each well-formed', () => {
    expect(candles.length).toBe(1440);
    const r = createStrategy('enhanced-macd', {}, instrument);
    if (!r.ok) throw new Error(r.error.message);
    const out: Signal[] = [];
    for (const c of candles) {
      const s = r.strategy.onCandle(c);
      if (s) out.push(s);
    }
    // 18 with the defaults at the time of writing; the band catches a filter turning into a no-op
    // (far more) or into a wall (far fewer).
    expect(out.length).toBeGreaterThanOrEqual(12);
    expect(out.length).toBeLessThanOrEqual(48);
    expect(out.some((s) => s.direction === 'long')).toBe(true);
    expect(out.some((s) => s.direction === 'short')).toBe(true);
    // Paper mode replays from a history offset: with 200 history bars (≥ warmupBars) the first
    // live signal comes within the first live hour, i.e. within a minute of wall time at 60×.
    const firstLive = out.find((s) => s.time >= candles[200]!.t);
    expect(firstLive!.time - candles[200]!.t).toBeLessThan(60 * 60_000);
    const hours = new Set(out.map((s) => Math.floor((s.time - candles[0]!.t) / 3_600_000)));
    expect(hours.size).toBeGreaterThanOrEqual(8);
    const nominal = ENHANCED_MACD_DEFAULTS.atrTpMult / ENHANCED_MACD_DEFAULTS.atrStopMult;
    for (const s of out) {
      for (const px of [s.refPx, s.stopPx, s.takeProfitPx]) expect(isValidPrice(px, instrument.szDecimals)).toBe(true);
      const long = s.direction === 'long';
      expect(long ? s.stopPx.lt(s.refPx) && s.takeProfitPx.gt(s.refPx) : s.stopPx.gt(s.refPx) && s.takeProfitPx.lt(s.refPx)).toBe(true);
      const rr = s.takeProfitPx.minus(s.refPx).abs().div(s.refPx.minus(s.stopPx).abs()).toNumber();
      expect(rr).toBeLessThanOrEqual(nominal);
      expect(rr).toBeGreaterThan(1);
    }
  });
});
