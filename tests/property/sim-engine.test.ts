/**
 * Property tests of the exchange engine over random streams of market blocks and user actions.
 * After every step: size and value are conserved (market maker included), every order's
 * filled + cancelled + remaining = origSz, positions equal the signed sum of the user's fills,
 * reduce-only fills never increase |position|, maker fills are at the maker's price, and taker
 * fills of a placed order are at prices that were in the book and within the order's limit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal, ZERO, dec } from '../../src/domain/decimal.ts';
import { Exchange } from '../../src/sim/engine/index.ts';
import type { ExchangeEvent, FillWire, Grouping, MarketBlock, OrderRequest, Tif } from '../../src/sim/types.ts';

const ASSETS = [
  { name: 'BTC', szDecimals: 3, maxLeverage: 50 },
  { name: 'ETH', szDecimals: 2, maxLeverage: 25 },
];
const BASE = [30000, 2000];
const USERS = ['0x00000000000000000000000000000000000000a1', '0x00000000000000000000000000000000000000a2', '0x00000000000000000000000000000000000000a3'];
const FUNDING = ['300', '5000', '100000'];

type Cmd =
  | { k: 'block'; asset: number; drift: number; spread: number; levels: number; szMilli: number; advance: number; trade: boolean; rateMicro: number }
  | { k: 'order'; user: number; asset: number; isBuy: boolean; offset: number; szMilli: number; tif: Tif; reduceOnly: boolean; cloid: number | undefined }
  | { k: 'tpsl'; user: number; asset: number; isBuy: boolean; offset: number; szMilli: number; grouping: Grouping; tpOff: number; slOff: number }
  | { k: 'cancel'; user: number; pick: number }
  | { k: 'modify'; user: number; pick: number; offset: number; szMilli: number }
  | { k: 'leverage'; user: number; asset: number; lev: number }
  | { k: 'schedule'; user: number; inMs: number | undefined };

const user = fc.integer({ min: 0, max: USERS.length - 1 });
const asset = fc.integer({ min: 0, max: ASSETS.length - 1 });
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant('block' as const), asset, drift: fc.integer({ min: -60, max: 60 }), spread: fc.integer({ min: 1, max: 20 }), levels: fc.integer({ min: 0, max: 6 }), szMilli: fc.integer({ min: 1, max: 3000 }), advance: fc.integer({ min: 0, max: 1_800_000 }), trade: fc.boolean(), rateMicro: fc.integer({ min: -100, max: 100 }) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('order' as const), user, asset, isBuy: fc.boolean(), offset: fc.integer({ min: -80, max: 80 }), szMilli: fc.integer({ min: 1, max: 2000 }), tif: fc.constantFrom<Tif>('Gtc', 'Ioc', 'Alo', 'FrontendMarket'), reduceOnly: fc.boolean(), cloid: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tpsl' as const), user, asset, isBuy: fc.boolean(), offset: fc.integer({ min: -40, max: 40 }), szMilli: fc.integer({ min: 1, max: 1000 }), grouping: fc.constantFrom<Grouping>('normalTpsl', 'positionTpsl'), tpOff: fc.integer({ min: 1, max: 100 }), slOff: fc.integer({ min: 1, max: 100 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cancel' as const), user, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('modify' as const), user, pick: fc.nat(), offset: fc.integer({ min: -50, max: 50 }), szMilli: fc.integer({ min: 1, max: 1000 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('leverage' as const), user, asset, lev: fc.integer({ min: 0, max: 60 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('schedule' as const), user, inMs: fc.option(fc.integer({ min: 0, max: 600_000 }), { nil: undefined }) }) },
);

function sizeOf(a: number, milli: number): Decimal {
  return new Decimal(milli).div(1000).toDecimalPlaces((ASSETS[a] as { szDecimals: number }).szDecimals, Decimal.ROUND_DOWN);
}

class World {
  readonly clock = { t: Date.UTC(2025, 2, 1, 0, 0, 0), now: () => this.clock.t };
  readonly ex = new Exchange({ assets: ASSETS, clock: this.clock });
  readonly mids = [...BASE];
  readonly events: ExchangeEvent[] = [];
  /** Signed size per user per coin from fill events. */
  readonly fromFills = new Map<string, Decimal>();
  block = 0;

  constructor() {
    this.ex.onEvent((e) => this.events.push(e));
    USERS.forEach((u, i) => this.ex.fund(u, dec(FUNDING[i] as string)));
    for (let a = 0; a < ASSETS.length; a++) this.ex.applyBlock(this.#block(a, 0, 5, 5, 1000, false, 0));
  }

  #block(a: number, drift: number, spread: number, levels: number, szMilli: number, trade: boolean, rateMicro: number): MarketBlock {
    const mid = Math.max(100, (this.mids[a] as number) + drift * (a === 0 ? 10 : 1));
    this.mids[a] = mid;
    const sz = sizeOf(a, szMilli).plus(a === 0 ? '0.001' : '0.01');
    const m = new Decimal(mid);
    return {
      coin: (ASSETS[a] as { name: string }).name,
      block: this.block++,
      time: this.clock.t,
      marketTime: this.clock.t,
      mid: m,
      oraclePx: m,
      bids: Array.from({ length: levels }, (_, i) => ({ px: m.minus(spread + i), sz, n: 1 })),
      asks: Array.from({ length: levels }, (_, i) => ({ px: m.plus(spread + i), sz, n: 1 })),
      trades: trade ? [{ px: m, sz, side: 'B' as const }] : [],
      fundingRate: new Decimal(rateMicro).div(1_000_000),
    };
  }

  run(c: Cmd): void {
    const ex = this.ex;
    switch (c.k) {
      case 'block':
        this.clock.t += c.advance;
        ex.applyBlock(this.#block(c.asset, c.drift, c.spread, c.levels, c.szMilli, c.trade, c.rateMicro));
        return;
      case 'order': {
        const px = new Decimal((this.mids[c.asset] as number) + c.offset * (c.asset === 0 ? 10 : 1));
        const req: OrderRequest = {
          asset: c.asset, isBuy: c.isBuy, px, sz: sizeOf(c.asset, c.szMilli), reduceOnly: c.reduceOnly, type: { kind: 'limit', tif: c.tif },
          cloid: c.cloid === undefined ? undefined : `0x${c.cloid.toString(16).padStart(32, '0')}`,
        };
        this.#placeChecked(USERS[c.user] as string, [req], 'na');
        return;
      }
      case 'tpsl': {
        const mid = this.mids[c.asset] as number;
        const unit = c.asset === 0 ? 10 : 1;
        const sz = sizeOf(c.asset, c.szMilli);
        const closeBuy = !c.isBuy;
        const tp = new Decimal(mid + (c.isBuy ? c.tpOff : -c.tpOff) * unit);
        const sl = new Decimal(mid + (c.isBuy ? -c.slOff : c.slOff) * unit);
        const trig = (triggerPx: Decimal, tpsl: 'tp' | 'sl'): OrderRequest => ({
          asset: c.asset, isBuy: closeBuy, px: triggerPx, sz, reduceOnly: true, type: { kind: 'trigger', isMarket: tpsl === 'sl', triggerPx, tpsl },
        });
        const orders: OrderRequest[] = c.grouping === 'normalTpsl'
          ? [{ asset: c.asset, isBuy: c.isBuy, px: new Decimal(mid + c.offset * unit), sz, reduceOnly: false, type: { kind: 'limit', tif: 'Gtc' } }, trig(tp, 'tp'), trig(sl, 'sl')]
          : [trig(tp, 'tp'), trig(sl, 'sl')];
        this.#placeChecked(USERS[c.user] as string, orders, c.grouping);
        return;
      }
      case 'cancel': {
        const u = USERS[c.user] as string;
        const open = ex.frontendOpenOrders(u);
        const o = open[c.pick % Math.max(1, open.length)];
        const st = ex.cancel(u, [{ asset: o === undefined ? 0 : ex.assetId(o.coin) as number, oid: o?.oid ?? 1 }]);
        expect(st[0]).toEqual(o === undefined ? { error: 'Order was never placed, already canceled, or filled.' } : 'success');
        return;
      }
      case 'modify': {
        const u = USERS[c.user] as string;
        const open = ex.openOrders(u);
        const o = open[c.pick % Math.max(1, open.length)];
        if (o === undefined) return;
        const a = ex.assetId(o.coin) as number;
        const px = new Decimal((this.mids[a] as number) + c.offset * (a === 0 ? 10 : 1));
        ex.modify(u, o.oid, { asset: a, isBuy: o.side === 'B', px, sz: sizeOf(a, c.szMilli), reduceOnly: false, type: { kind: 'limit', tif: 'Gtc' } });
        return;
      }
      case 'leverage':
        ex.updateLeverage(USERS[c.user] as string, c.asset, true, c.lev);
        return;
      case 'schedule':
        ex.scheduleCancel(USERS[c.user] as string, c.inMs === undefined ? undefined : this.clock.t + c.inMs);
        return;
    }
  }

  /** Places orders and checks the taker fills they produced against the book as it was. */
  #placeChecked(u: string, orders: OrderRequest[], grouping: Grouping): void {
    const ex = this.ex;
    const before = orders.map((o) => ex._bookPrices((ASSETS[o.asset] as { name: string }).name));
    const from = this.events.length;
    ex.placeOrders(u, orders, grouping);
    for (const e of this.events.slice(from)) {
      if (e.kind !== 'fill' || !e.fill.crossed || e.user !== u) continue;
      const i = orders.findIndex((o) => (ASSETS[o.asset] as { name: string }).name === e.fill.coin);
      const book = before[i] as { bids: Decimal[]; asks: Decimal[] };
      const side = e.fill.side === 'B' ? book.asks : book.bids;
      expect(side.some((p) => p.eq(e.fill.px)), `taker fill at ${e.fill.px} not in book`).toBe(true);
      const order = ex._allOrders().find((o) => o.oid === e.fill.oid);
      if (order === undefined) throw new Error('fill of unknown order');
      if (order.side === 'B') expect(dec(e.fill.px).lte(order.px)).toBe(true);
      else expect(dec(e.fill.px).gte(order.px)).toBe(true);
    }
  }

  /** Checks every invariant; `from` = first event index produced by the last step. */
  check(from: number): void {
    const ex = this.ex;
    const t = ex._internalTotals();
    for (const [coin, net] of Object.entries(t.netSize)) expect(net.isZero(), `net size ${coin} = ${net}`).toBe(true);
    expect(t.totalValue.plus(t.feesCollected).eq(t.funded), `value ${t.totalValue} + fees ${t.feesCollected} ≠ funded ${t.funded}`).toBe(true);

    const orders = new Map(ex._allOrders().map((o) => [o.oid, o]));
    for (const o of orders.values()) {
      expect(o.sz.gte(0) && o.filled.gte(0) && o.cancelled.gte(0)).toBe(true);
      expect(o.filled.plus(o.cancelled).plus(o.sz).eq(o.origSz), `order ${o.oid} sizes`).toBe(true);
      if (o.status !== 'open') expect(o.sz.isZero(), `closed order ${o.oid} (${o.status}) has size`).toBe(true);
    }

    for (const e of this.events.slice(from)) {
      if (e.kind !== 'fill') continue;
      const f: FillWire = e.fill;
      const key = `${e.user}|${f.coin}`;
      const signed = f.side === 'B' ? dec(f.sz) : dec(f.sz).neg();
      const start = dec(f.startPosition);
      expect(start.eq(this.fromFills.get(key) ?? ZERO), `startPosition of fill ${f.tid}`).toBe(true);
      this.fromFills.set(key, start.plus(signed));
      const order = orders.get(f.oid);
      if (order === undefined) throw new Error(`fill of unknown order ${f.oid}`);
      if (!f.crossed) expect(dec(f.px).eq(order.px), 'maker fill at its own price').toBe(true);
      if (order.reduceOnly) {
        expect(start.plus(signed).abs().lte(start.abs()), `reduce-only fill ${f.tid} increased |position|`).toBe(true);
        expect(start.isZero() || start.isPositive() !== signed.isPositive()).toBe(true);
      }
    }
    const positions = new Map<string, Decimal>();
    for (const p of t.positions) positions.set(`${p.user}|${p.coin}`, p.szi);
    for (const u of USERS) {
      for (const a of ASSETS) {
        const key = `${u}|${a.name}`;
        expect((positions.get(key) ?? ZERO).eq(this.fromFills.get(key) ?? ZERO), `position ${key}`).toBe(true);
      }
    }
    // Fills per order add up to the order's filled size.
    const perOrder = new Map<number, Decimal>();
    for (const u of USERS) for (const f of ex.userFills(u)) perOrder.set(f.oid, (perOrder.get(f.oid) ?? ZERO).plus(f.sz));
    for (const [oid, sz] of perOrder) expect(sz.eq((orders.get(oid) as { filled: Decimal }).filled), `fills of ${oid}`).toBe(true);
  }
}

describe('engine properties', () => {
  const seen = new Map<string, number>();
  it('conservation, book-consistent fills and reduce-only hold over random streams', () => {
    fc.assert(
      fc.property(fc.array(cmd, { minLength: 10, maxLength: 80, size: 'max' }), (cmds) => {
        const w = new World();
        w.check(0);
        for (const c of cmds) {
          const from = w.events.length;
          w.run(c);
          w.check(from);
        }
        for (const e of w.events) {
          const k = e.kind === 'orderUpdate' ? `status:${e.update.status}` : e.kind === 'fill' ? (e.fill.crossed ? 'takerFill' : 'makerFill') : e.kind;
          seen.set(k, (seen.get(k) ?? 0) + 1);
        }
      }),
      { seed: 42, numRuns: 120 },
    );
    // The streams must actually reach the interesting paths, or the properties above prove little.
    for (const k of ['takerFill', 'makerFill', 'funding', 'liquidation', 'status:triggered', 'status:reduceOnlyCanceled', 'status:scheduledCancel', 'status:siblingFilledCanceled']) {
      expect(seen.get(k) ?? 0, `${k} never happened: ${JSON.stringify([...seen])}`).toBeGreaterThan(0);
    }
  });

  it('is deterministic: the same stream gives the same ground truth', () => {
    fc.assert(
      fc.property(fc.array(cmd, { minLength: 1, maxLength: 40 }), (cmds) => {
        const a = new World();
        const b = new World();
        for (const c of cmds) {
          a.run(c);
          b.run(c);
        }
        expect(JSON.stringify(a.ex.groundTruth())).toBe(JSON.stringify(b.ex.groundTruth()));
        expect(a.events).toEqual(b.events);
      }),
      { seed: 42, numRuns: 30 },
    );
  });
});
