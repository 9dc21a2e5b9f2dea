import { describe, expect, it } from 'vitest';
import { ERR, FIRST_OID, MM_ADDRESS } from '../../src/sim/engine/index.ts';
import { ALICE, BOB, block, limit, ofKind, setup, trigger, updates } from './sim-engine-helpers.ts';

describe('engine: trigger orders', () => {
  it('a sell stop-market fires when mark <= triggerPx and executes as Ioc at market', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.1', 'Ioc')]);
    expect(ex.placeOrders(ALICE, [trigger(0, false, 60000, '0.1', 64000, 'sl')])).toEqual(['waitingForTrigger']);
    const slOid = FIRST_OID + 1;
    expect(ex.frontendOpenOrders(ALICE)).toEqual([
      {
        coin: 'BTC', side: 'A', limitPx: '60000', sz: '0.1', oid: slOid, timestamp: expect.any(Number), triggerCondition: 'Price below 64000',
        isTrigger: true, triggerPx: '64000', children: [], isPositionTpsl: false, reduceOnly: true, orderType: 'Stop Market', origSz: '0.1', tif: null, cloid: null,
      },
    ]);
    ex.applyBlock(block('BTC', 64490, 64510)); // mark 64500: no trigger
    expect(updates(events, slOid)).toEqual(['open']);
    ex.applyBlock(block('BTC', 63900, 63920)); // mark 63910 <= 64000
    expect(updates(events, slOid)).toEqual(['open', 'triggered', 'filled']);
    expect(ex.userFills(ALICE)[0]).toMatchObject({ oid: slOid, px: '63900', sz: '0.1', dir: 'Close Long', closedPnl: '-111', crossed: true });
    expect(ex.clearinghouseState(ALICE).assetPositions).toEqual([]);
    expect(ex.orderStatus(ALICE, slOid)).toMatchObject({ order: { status: 'filled' } });
  });

  it('trigger direction follows the order side: buy tp fires on a fall, sell tp on a rise', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, false, 64990, '0.1', 'Ioc')]); // short 0.1
    ex.placeOrders(BOB, [limit(0, true, 65010, '0.1', 'Ioc')]); // long 0.1
    ex.placeOrders(ALICE, [trigger(0, true, 70000, '0.1', 64000, 'tp')]); // buy tp: fires when mark <= 64000
    ex.placeOrders(BOB, [trigger(0, false, 60000, '0.1', 66000, 'tp')]); // sell tp: fires when mark >= 66000
    ex.applyBlock(block('BTC', 63990, 64010)); // mark 64000
    expect(updates(events, FIRST_OID + 2)).toEqual(['open', 'triggered', 'filled']);
    expect(updates(events, FIRST_OID + 3)).toEqual(['open']);
    ex.applyBlock(block('BTC', 65990, 66010));
    expect(updates(events, FIRST_OID + 3)).toEqual(['open', 'triggered', 'filled']);
    expect(ex.frontendOpenOrders(BOB)).toEqual([]);
  });

  it('a triggered limit order rests at its limit price', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [trigger(0, true, 66500, '0.1', 66000, 'sl', false, false)]); // buy stop-limit
    expect(ex.frontendOpenOrders(ALICE)[0]).toMatchObject({ orderType: 'Stop Limit', triggerCondition: 'Price above 66000', reduceOnly: false });
    ex.applyBlock(block('BTC', 66990, 67010));
    expect(updates(events, FIRST_OID)).toEqual(['open', 'triggered', 'open']);
    expect(ex.openOrders(ALICE)).toEqual([expect.objectContaining({ oid: FIRST_OID, limitPx: '66500', sz: '0.1' })]);
  });

  it('normalTpsl: children wait for the parent fill, then the first to trigger cancels its sibling', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    const st = ex.placeOrders(ALICE, [limit(0, true, 65000, '0.1'), trigger(0, false, 70000, '0.1', 66000, 'tp'), trigger(0, false, 60000, '0.1', 64000, 'sl')], 'normalTpsl');
    expect(st).toEqual([{ resting: { oid: FIRST_OID } }, 'waitingForFill', 'waitingForFill']);
    const [parent] = ex.frontendOpenOrders(ALICE);
    expect(parent?.children.map((c) => [c.oid, c.orderType, c.reduceOnly])).toEqual([[FIRST_OID + 1, 'Take Profit Market', true], [FIRST_OID + 2, 'Stop Market', true]]);
    expect(ex.openOrders(ALICE).map((o) => o.oid)).toEqual([FIRST_OID]);
    ex.applyBlock(block('BTC', 64980, 64990)); // MM ask 64990 fills the parent bid at 65000
    expect(updates(events, FIRST_OID)).toEqual(['open', 'filled']);
    expect(updates(events, FIRST_OID + 1)).toEqual(['open']);
    expect(ex.openOrders(ALICE).map((o) => o.oid)).toEqual([FIRST_OID + 2, FIRST_OID + 1]);
    ex.applyBlock(block('BTC', 63890, 63910));
    expect(updates(events, FIRST_OID + 2)).toEqual(['open', 'triggered', 'filled']);
    expect(updates(events, FIRST_OID + 1)).toEqual(['open', 'siblingFilledCanceled']);
    expect(ex.clearinghouseState(ALICE).assetPositions).toEqual([]);
  });

  it('normalTpsl: cancelling the unfilled parent cancels its children; a failed parent fails them', () => {
    const { ex } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, true, 65000, '0.1'), trigger(0, false, 70000, '0.1', 66000, 'tp')], 'normalTpsl');
    expect(ex.cancel(ALICE, [{ asset: 0, oid: FIRST_OID }])).toEqual(['success']);
    expect(ex.orderStatus(ALICE, FIRST_OID + 1)).toMatchObject({ order: { status: 'canceled' } });
    expect(ex.placeOrders(ALICE, [limit(0, true, 65000, '0.0001'), trigger(0, false, 70000, '0.1', 66000, 'tp')], 'normalTpsl')).toEqual([
      { error: ERR.minValue },
      { error: ERR.parentFailed },
    ]);
  });

  it('positionTpsl: reduce-only, needs a position, cancelled when the position closes', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    expect(ex.placeOrders(ALICE, [trigger(0, false, 70000, '0.1', 66000, 'tp', true, false)], 'positionTpsl')).toEqual([{ error: ERR.reduceOnly }]);
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.1', 'Ioc')]);
    expect(ex.placeOrders(ALICE, [trigger(0, false, 70000, '0.1', 66000, 'tp', true, false), trigger(0, false, 60000, '0.1', 64000, 'sl', true, false)], 'positionTpsl')).toEqual([
      'waitingForTrigger',
      'waitingForTrigger',
    ]);
    expect(ex.frontendOpenOrders(ALICE).map((o) => [o.isPositionTpsl, o.reduceOnly])).toEqual([[true, true], [true, true]]);
    ex.placeOrders(ALICE, [limit(0, false, 64990, '0.1', 'Ioc')]);
    expect(updates(events, FIRST_OID + 1)).toEqual(['open', 'reduceOnlyCanceled']);
    expect(updates(events, FIRST_OID + 2)).toEqual(['open', 'reduceOnlyCanceled']);
    expect(ex.openOrders(ALICE)).toEqual([]);
  });
});

describe('engine: scheduleCancel', () => {
  it('validates the time, cancels everything when due, can be cleared', () => {
    const { ex, clock, events } = setup();
    ex.placeOrders(ALICE, [limit(0, true, 60000, '0.01'), limit(1, true, 3000, '0.01')]);
    expect(ex.scheduleCancel(ALICE, clock.now() + 4999)).toEqual({ error: 'Scheduled cancel time too early, must be at least 5 seconds from now.' });
    expect(ex.scheduleCancel(ALICE, clock.now() + 5000)).toEqual({ ok: true });
    clock.advance(4999);
    ex.tick();
    expect(ex.openOrders(ALICE)).toHaveLength(2);
    clock.advance(1);
    ex.tick();
    expect(ex.openOrders(ALICE)).toEqual([]);
    expect(updates(events, FIRST_OID)).toEqual(['open', 'scheduledCancel']);
    expect(ex.orderStatus(ALICE, FIRST_OID + 1)).toMatchObject({ order: { status: 'scheduledCancel' } });

    ex.placeOrders(ALICE, [limit(0, true, 60000, '0.01')]);
    ex.scheduleCancel(ALICE, clock.now() + 10_000);
    expect(ex.scheduleCancel(ALICE, undefined)).toEqual({ ok: true });
    clock.advance(20_000);
    ex.tick();
    expect(ex.openOrders(ALICE)).toHaveLength(1);
  });

  it('allows at most 10 triggers per UTC day', () => {
    const { ex, clock } = setup();
    for (let i = 0; i < 10; i++) {
      expect(ex.scheduleCancel(ALICE, clock.now() + 5000)).toEqual({ ok: true });
      clock.advance(5000);
      ex.tick();
    }
    expect(ex.scheduleCancel(ALICE, clock.now() + 5000)).toEqual({ error: 'Too many scheduled cancels today.' });
    clock.advance(86_400_000);
    expect(ex.scheduleCancel(ALICE, clock.now() + 5000)).toEqual({ ok: true });
  });
});

describe('engine: funding', () => {
  it('charges szi × oraclePx × rate once per hour boundary; longs pay when positive', () => {
    const { ex, clock, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.1', 'Ioc')]);
    ex.placeOrders(BOB, [limit(0, false, 64990, '0.2', 'Ioc')]);
    const before = ex.clearinghouseState(ALICE);
    clock.advance(3_600_000);
    ex.applyBlock(block('BTC', 64990, 65010, { oraclePx: 65000, fundingRate: '0.0001' }));
    ex.applyBlock(block('BTC', 64990, 65010, { oraclePx: 65000, fundingRate: '0.0001' }));
    const funding = ofKind(events, 'funding');
    expect(funding.map((f) => [f.user, f.funding])).toEqual([
      [ALICE, { time: 3_600_000 * Math.floor(clock.now() / 3_600_000), coin: 'BTC', usdc: '-0.65', szi: '0.1', fundingRate: '0.0001' }],
      [BOB, { time: 3_600_000 * Math.floor(clock.now() / 3_600_000), coin: 'BTC', usdc: '1.3', szi: '-0.2', fundingRate: '0.0001' }],
    ]);
    const after = ex.clearinghouseState(ALICE);
    expect(Number(before.marginSummary.accountValue) - Number(after.marginSummary.accountValue)).toBeCloseTo(0.65, 9);
    expect(after.assetPositions[0]?.position.cumFunding).toEqual({ allTime: '0.65', sinceOpen: '0.65', sinceChange: '0.65' });
    // Funding is zero-sum once the market maker's position is counted.
    const t = ex._internalTotals();
    expect(t.totalValue.plus(t.feesCollected).eq(t.funded)).toBe(true);
  });
});

describe('engine: liquidation', () => {
  it('closes an under-margined account at market with liquidation fills and cancels its orders', () => {
    const { ex, events } = setup({ fundAlice: '1000' });
    ex.applyBlock(block('BTC', 64990, 65010));
    expect(ex.updateLeverage(ALICE, 0, true, 50)).toEqual({ ok: true });
    expect(ex.placeOrders(ALICE, [limit(0, true, 65020, '0.7', 'Ioc')])[0]).toEqual({ filled: { totalSz: '0.7', avgPx: '65010', oid: FIRST_OID } });
    ex.placeOrders(ALICE, [limit(0, true, 60000, '0.001')]);
    // (0 − 972.52185 + 0.7 × 65000) / (0.7 − 0.7 / 100) = 64253.215…
    expect(ex.clearinghouseState(ALICE).assetPositions[0]?.position.liquidationPx).toBe('64253.2');
    ex.applyBlock(block('BTC', 64490, 64510)); // still above maintenance
    expect(ofKind(events, 'liquidation')).toEqual([]);
    ex.applyBlock(block('BTC', 64000, 64020)); // mark 64010: account value ≈ 279 < maintenance ≈ 448
    const [liq] = ofKind(events, 'liquidation');
    expect(liq).toEqual({
      kind: 'liquidation',
      user: ALICE,
      liquidation: { lid: 1, liquidator: MM_ADDRESS, liquidated_user: ALICE, liquidated_ntl_pos: '44807', liquidated_account_value: '279.52185' },
    });
    expect(updates(events, FIRST_OID + 1)).toEqual(['open', 'liquidatedCanceled']);
    expect(ofKind(events, 'nonUserCancel')).toEqual([{ kind: 'nonUserCancel', user: ALICE, cancels: [{ coin: 'BTC', oid: FIRST_OID + 1 }] }]);
    expect(ex.userFills(ALICE)[0]).toMatchObject({ px: '64000', sz: '0.7', dir: 'Close Long', closedPnl: '-707', liquidation: { liquidatedUser: ALICE, markPx: '64010', method: 'market' } });
    const ch = ex.clearinghouseState(ALICE);
    expect(ch.assetPositions).toEqual([]);
    // 1000 − 20.47815 (open fee) − 707 − 20.16 (close fee)
    expect(ch.marginSummary.accountValue).toBe('252.36185');
  });
});
