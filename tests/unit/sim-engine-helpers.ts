/**
 * Test fixtures for the exchange engine: a manual clock, a two-asset exchange and a block builder
 * that lays synthetic market-maker levels one tick apart around a mid.
 */
import { Decimal, dec } from '../../src/domain/decimal.ts';
import { Exchange } from '../../src/sim/engine/index.ts';
import type { ExchangeEvent, MarketBlock, OrderRequest, Side, Tif } from '../../src/sim/types.ts';

export class ManualClock {
  t: number;
  constructor(t = Date.UTC(2025, 0, 1, 0, 0, 10)) {
    this.t = t;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export const ALICE = '0x00000000000000000000000000000000000a11ce';
export const BOB = '0x0000000000000000000000000000000000000b0b';

export const ASSETS = [
  { name: 'BTC', szDecimals: 5, maxLeverage: 50 },
  { name: 'ETH', szDecimals: 4, maxLeverage: 25 },
];

export function setup(opts: { fundAlice?: string; fundBob?: string } = {}): { ex: Exchange; clock: ManualClock; events: ExchangeEvent[] } {
  const clock = new ManualClock();
  const ex = new Exchange({ assets: ASSETS, clock });
  const events: ExchangeEvent[] = [];
  ex.onEvent((e) => events.push(e));
  ex.fund(ALICE, dec(opts.fundAlice ?? '10000'));
  ex.fund(BOB, dec(opts.fundBob ?? '10000'));
  return { ex, clock, events };
}

let blockNo = 0;

/** A block with `levels` MM levels a side: bids at bid, bid−tick, …; asks at ask, ask+tick, …. */
export function block(
  coin: string,
  bid: Decimal.Value,
  ask: Decimal.Value,
  opts: { levels?: number; sz?: Decimal.Value; tick?: Decimal.Value; time?: number; trades?: MarketBlock['trades']; fundingRate?: Decimal.Value; oraclePx?: Decimal.Value; mid?: Decimal.Value } = {},
): MarketBlock {
  const b = dec(bid);
  const a = dec(ask);
  const tick = dec(opts.tick ?? 1);
  const sz = dec(opts.sz ?? 1);
  const n = opts.levels ?? 5;
  const mid = opts.mid !== undefined ? dec(opts.mid) : b.plus(a).div(2);
  return {
    coin,
    block: blockNo++,
    time: opts.time ?? 0,
    marketTime: 0,
    mid,
    oraclePx: opts.oraclePx !== undefined ? dec(opts.oraclePx) : mid,
    bids: Array.from({ length: n }, (_, i) => ({ px: b.minus(tick.times(i)), sz, n: 2 })),
    asks: Array.from({ length: n }, (_, i) => ({ px: a.plus(tick.times(i)), sz, n: 2 })),
    trades: opts.trades ?? [],
    fundingRate: dec(opts.fundingRate ?? '0.0000125'),
  };
}

export function limit(asset: number, isBuy: boolean, px: Decimal.Value, sz: Decimal.Value, tif: Tif = 'Gtc', extra: { reduceOnly?: boolean; cloid?: string } = {}): OrderRequest {
  return { asset, isBuy, px: dec(px), sz: dec(sz), reduceOnly: extra.reduceOnly ?? false, type: { kind: 'limit', tif }, cloid: extra.cloid };
}

export function trigger(asset: number, isBuy: boolean, px: Decimal.Value, sz: Decimal.Value, triggerPx: Decimal.Value, tpsl: 'tp' | 'sl', isMarket = true, reduceOnly = true): OrderRequest {
  return { asset, isBuy, px: dec(px), sz: dec(sz), reduceOnly, type: { kind: 'trigger', isMarket, triggerPx: dec(triggerPx), tpsl } };
}

export function ofKind<K extends ExchangeEvent['kind']>(events: readonly ExchangeEvent[], kind: K): Extract<ExchangeEvent, { kind: K }>[] {
  return events.filter((e): e is Extract<ExchangeEvent, { kind: K }> => e.kind === kind);
}

export function updates(events: readonly ExchangeEvent[], oid: number): string[] {
  return ofKind(events, 'orderUpdate')
    .filter((e) => e.update.order.oid === oid)
    .map((e) => e.update.status);
}

export const sideOf = (isBuy: boolean): Side => (isBuy ? 'B' : 'A');
