import { describe, expect, it } from 'vitest';
import { ERR, FIRST_OID, MM_ADDRESS } from '../../src/sim/engine/index.ts';
import { ALICE, BOB, block, limit, ofKind, setup, trigger, updates } from './sim-engine-helpers.ts';

describe('engine: order validation errors (exact strings)', () => {
  const { ex } = setup();
  ex.applyBlock(block('BTC', 64990, 65010));
  const one = (o: Parameters<typeof limit>) => ex.placeOrders(ALICE, [limit(...o)])[0];

  it('rejects each invalid order with the documented string', () => {
    expect(ex.placeOrders(ALICE, [limit(7, true, 100, 1)])[0]).toEqual({ error: ERR.invalidAsset });
    expect(one([0, true, 65000, 0])).toEqual({ error: 'Order has zero size.' });
    expect(one([0, true, 65000, '0.000001'])).toEqual({ error: 'Order has invalid size.' });
    expect(one([0, true, '65000.5', '0.01'])).toEqual({ error: 'Price must be divisible by tick size.' });
    expect(one([0, true, 65000, '0.0001'])).toEqual({ error: 'Order must have minimum value of $10.' });
    expect(one([0, true, 64990, 4])).toEqual({ error: 'Insufficient margin to place order.' });
    expect(one([0, false, 65100, '0.01', 'Gtc', { reduceOnly: true }])).toEqual({ error: 'Reduce only order would increase position.' });
    expect(one([0, true, 65010, '0.01', 'Alo'])).toEqual({ error: 'Post only order would have immediately matched, bbo was 64990@65010.' });
    expect(one([0, true, 65000, '0.01', 'Ioc'])).toEqual({ error: 'Order could not immediately match against any resting orders.' });
    expect(one([0, true, 120000, '0.01'])).toEqual({ error: 'Order price cannot be more than 80% away from the reference price' });
    expect(ex.placeOrders(ALICE, [trigger(0, false, 60000, '0.01', '64000.5', 'sl', true, false)])[0]).toEqual({ error: 'Invalid TP/SL price.' });
    expect(ex.openOrders(ALICE)).toEqual([]);
  });

  it('reserves margin for resting orders', () => {
    const { ex: e } = setup();
    e.applyBlock(block('BTC', 64990, 65010));
    // 10000 USDC at 20x: 2 × 64000 / 20 = 6400 reserved, another 6400 does not fit.
    expect(e.placeOrders(ALICE, [limit(0, true, 64000, 2)])[0]).toEqual({ resting: { oid: FIRST_OID } });
    expect(e.placeOrders(ALICE, [limit(0, true, 64000, 2)])[0]).toEqual({ error: ERR.margin });
    expect(e.updateLeverage(ALICE, 0, true, 40)).toEqual({ ok: true });
    // A rejected order consumes no oid.
    expect(e.placeOrders(ALICE, [limit(0, true, 64000, 2)])[0]).toEqual({ resting: { oid: FIRST_OID + 1 } });
  });

  it('rejects a reused cloid, and FrontendMarket on an empty book', () => {
    const { ex: e } = setup();
    const c = '0x0000000000000000000000000000000a';
    expect(e.placeOrders(ALICE, [limit(1, true, 3000, '0.01', 'Gtc', { cloid: c })])[0]).toEqual({ resting: { oid: FIRST_OID, cloid: c } });
    expect(e.placeOrders(ALICE, [limit(1, true, 3000, '0.01', 'Gtc', { cloid: c })])[0]).toEqual({ error: 'Cloid already used.' });
    // The same cloid is another user's to use.
    expect(e.placeOrders(BOB, [limit(1, true, 3000, '0.01', 'Gtc', { cloid: c })])[0]).toEqual({ resting: { oid: FIRST_OID + 1, cloid: c } });
    expect(e.placeOrders(ALICE, [limit(0, true, 65000, '0.01', 'FrontendMarket')])[0]).toEqual({ error: 'No liquidity available for market order.' });
  });

  it('applies fault hooks: reject and partial fill', () => {
    const { ex: e } = setup();
    e.applyBlock(block('BTC', 64990, 65010));
    e.setFaultHooks({ reject: () => 'Simulated rejection.' });
    expect(e.placeOrders(ALICE, [limit(0, true, 65010, '0.01', 'Ioc')])[0]).toEqual({ error: 'Simulated rejection.' });
    e.setFaultHooks({ partialFill: () => 0.5 });
    expect(e.placeOrders(ALICE, [limit(0, true, 65020, '0.1', 'Ioc')])[0]).toEqual({ filled: { totalSz: '0.05', avgPx: '65010', oid: FIRST_OID } });
    expect(e.placeOrders(ALICE, [limit(0, true, 65020, '0.1', 'Gtc')])[0]).toEqual({ resting: { oid: FIRST_OID + 1 } });
    expect(e.openOrders(ALICE)[0]).toMatchObject({ oid: FIRST_OID + 1, sz: '0.05', origSz: '0.1' });
  });
});

describe('engine: matching, fills, fees and PnL', () => {
  it('an Ioc buy walks the asks; avgPx, fee and fill fields are exact', () => {
    const { ex, clock, events } = setup();
    ex.applyBlock(block('BTC', 65000, 65001));
    const st = ex.placeOrders(ALICE, [limit(0, true, 65002, '1.5', 'Ioc')]);
    // 1 @ 65001 + 0.5 @ 65002 = 97502 / 1.5
    expect(st).toEqual([{ filled: { totalSz: '1.5', avgPx: '65001.333', oid: FIRST_OID } }]);
    const fills = ex.userFills(ALICE);
    expect(fills).toHaveLength(2);
    // newest first
    expect(fills[1]).toEqual({
      coin: 'BTC', px: '65001', sz: '1', side: 'B', time: clock.now(), startPosition: '0', dir: 'Open Long', closedPnl: '0',
      hash: expect.stringMatching(/^0x[0-9a-f]{64}$/), oid: FIRST_OID, crossed: true, fee: '29.25045', feeToken: 'USDC', tid: 1,
    });
    expect(fills[0]).toMatchObject({ px: '65002', sz: '0.5', startPosition: '1', dir: 'Open Long', fee: '14.62545', tid: 2 });
    expect(ex.userFills(ALICE, true)).toEqual([expect.objectContaining({ sz: '1.5', px: '65001.333', fee: '43.8759' })]);
    expect(updates(events, FIRST_OID)).toEqual(['filled']);
    const trades = ofKind(events, 'trades').at(-1);
    expect(trades?.trades.map((t) => t.users)).toEqual([[ALICE, MM_ADDRESS], [ALICE, MM_ADDRESS]]);

    const ch = ex.clearinghouseState(ALICE);
    // cost 97502, mark 65000.5 → uPnL = 1.5 × 65000.5 − 97502 = −1.25
    expect(ch.assetPositions[0]?.position).toMatchObject({
      coin: 'BTC', szi: '1.5', entryPx: '65001.333333', positionValue: '97500.75', unrealizedPnl: '-1.25', marginUsed: '4875.0375',
      leverage: { type: 'cross', value: 20 }, maxLeverage: 50,
    });
    expect(ch.marginSummary.accountValue).toBe('9954.8741'); // 10000 − 43.8759 − 1.25
    expect(ch.withdrawable).toBe('5079.8366');
    expect(ch.crossMaintenanceMarginUsed).toBe('975.0075');
  });

  it('user vs user: both fills share tid and hash; maker fee, crossed flag, dirs; closing realizes PnL', () => {
    const { ex } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    expect(ex.placeOrders(ALICE, [limit(0, false, 65005, '0.1')])).toEqual([{ resting: { oid: FIRST_OID } }]);
    expect(ex.placeOrders(BOB, [limit(0, true, 65005, '0.1', 'Ioc')])).toEqual([{ filled: { totalSz: '0.1', avgPx: '65005', oid: FIRST_OID + 1 } }]);
    const [a] = ex.userFills(ALICE);
    const [b] = ex.userFills(BOB);
    expect(a).toMatchObject({ side: 'A', dir: 'Open Short', crossed: false, fee: '0.975075', oid: FIRST_OID });
    expect(b).toMatchObject({ side: 'B', dir: 'Open Long', crossed: true, fee: '2.925225', oid: FIRST_OID + 1 });
    expect(a?.tid).toBe(b?.tid);
    expect(a?.hash).toBe(b?.hash);
    expect(ex.orderStatus(ALICE, FIRST_OID)).toMatchObject({ status: 'order', order: { status: 'filled' } });

    // Bob closes into the MM bid at 64990: (64990 − 65005) × 0.1 = −1.5
    ex.placeOrders(BOB, [limit(0, false, 64990, '0.1', 'Ioc')]);
    expect(ex.userFills(BOB)[0]).toMatchObject({ dir: 'Close Long', startPosition: '0.1', closedPnl: '-1.5', fee: '2.92455' });
    expect(ex.clearinghouseState(BOB).assetPositions).toEqual([]);
    // 10000 − 2.925225 − 1.5 − 2.92455
    expect(ex.clearinghouseState(BOB).marginSummary.accountValue).toBe('9992.650225');
  });

  it('a flip closes then opens (Long > Short) and the new entry is the fill price', () => {
    const { ex } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.1', 'Ioc')]);
    ex.placeOrders(ALICE, [limit(0, false, 64990, '0.3', 'Ioc')]);
    expect(ex.userFills(ALICE)[0]).toMatchObject({ dir: 'Long > Short', startPosition: '0.1', sz: '0.3', closedPnl: '-2' });
    expect(ex.clearinghouseState(ALICE).assetPositions[0]?.position).toMatchObject({ szi: '-0.2', entryPx: '64990' });
  });

  it('a Gtc order partly filled rests its remainder and reports resting', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    expect(ex.placeOrders(ALICE, [limit(0, true, 65010, '1.5')])).toEqual([{ resting: { oid: FIRST_OID } }]);
    expect(ex.openOrders(ALICE)).toEqual([{ coin: 'BTC', limitPx: '65010', oid: FIRST_OID, side: 'B', sz: '0.5', timestamp: expect.any(Number), origSz: '1.5' }]);
    expect(updates(events, FIRST_OID)).toEqual(['open']);
    expect(ex.clearinghouseState(ALICE).assetPositions[0]?.position.szi).toBe('1');
  });

  it('Ioc / FrontendMarket remainders are cancelled; Alo rests when it does not cross', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010, { levels: 2, sz: '0.1' }));
    // Only 0.2 on the asks within the limit: 0.1 @ 65010 + 0.1 @ 65011.
    expect(ex.placeOrders(ALICE, [limit(0, true, 65100, '0.5', 'Ioc')])).toEqual([{ filled: { totalSz: '0.2', avgPx: '65010.5', oid: FIRST_OID } }]);
    expect(updates(events, FIRST_OID)).toEqual(['canceled']);
    expect(ex.orderStatus(ALICE, FIRST_OID)).toMatchObject({ order: { status: 'canceled', order: { sz: '0.3', origSz: '0.5' } } });
    expect(ex.placeOrders(ALICE, [limit(0, false, 64000, '0.05', 'FrontendMarket')])).toEqual([{ filled: { totalSz: '0.05', avgPx: '64990', oid: FIRST_OID + 1 } }]);
    expect(ex.placeOrders(ALICE, [limit(0, true, 64995, '0.05', 'Alo')])).toEqual([{ resting: { oid: FIRST_OID + 2 } }]);
    expect(ex.l2Book('BTC')?.levels[0][0]).toEqual({ px: '64995', sz: '0.05', n: 1 });
  });

  it('a new MM level crossing a resting user order trades at the user price, user as maker', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, true, 65000, '0.1')]);
    ex.applyBlock(block('BTC', 64980, 64990));
    expect(ex.userFills(ALICE)).toEqual([expect.objectContaining({ px: '65000', sz: '0.1', crossed: false, fee: '0.975', dir: 'Open Long' })]);
    expect(ex.openOrders(ALICE)).toEqual([]);
    expect(ofKind(events, 'trades').some((t) => t.trades.some((x) => x.users[0] === ALICE && x.users[1] === MM_ADDRESS && x.side === 'A'))).toBe(true);
    // The MM ask level at 64990 keeps its unfilled part.
    expect(ex.l2Book('BTC')?.levels[1][0]).toEqual({ px: '64990', sz: '0.9', n: 2 });
  });

  it('self-trade prevention cancels the resting order of the same user', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, false, 65005, '0.1')]);
    expect(ex.placeOrders(ALICE, [limit(0, true, 65010, '0.1', 'Ioc')])[0]).toEqual({ filled: { totalSz: '0.1', avgPx: '65010', oid: FIRST_OID + 1 } });
    expect(updates(events, FIRST_OID)).toEqual(['open', 'canceled']);
  });

  it('reduce-only is clamped to the position and cancelled once flat', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.1', 'Ioc')]);
    expect(ex.placeOrders(ALICE, [limit(0, false, 65000, '0.5', 'Gtc', { reduceOnly: true })])).toEqual([{ resting: { oid: FIRST_OID + 1 } }]);
    ex.placeOrders(BOB, [limit(0, true, 65000, '0.5', 'Ioc')]);
    expect(ex.userFills(ALICE)[0]).toMatchObject({ sz: '0.1', dir: 'Close Long' });
    expect(updates(events, FIRST_OID + 1)).toEqual(['open', 'reduceOnlyCanceled']);
    expect(ex.clearinghouseState(ALICE).assetPositions).toEqual([]);
  });
});

describe('engine: cancel and modify', () => {
  it('cancel / cancelByCloid answer success once, then the documented error', () => {
    const { ex, events } = setup();
    const c = '0x000000000000000000000000000000ff';
    ex.placeOrders(ALICE, [limit(0, true, 60000, '0.01'), limit(0, true, 60001, '0.01', 'Gtc', { cloid: c })]);
    expect(ex.cancel(ALICE, [{ asset: 1, oid: FIRST_OID }])).toEqual([{ error: 'Order was never placed, already canceled, or filled.' }]);
    expect(ex.cancel(ALICE, [{ asset: 0, oid: FIRST_OID }, { asset: 0, oid: FIRST_OID }])).toEqual(['success', { error: ERR.cancel }]);
    expect(ex.cancel(BOB, [{ asset: 0, oid: FIRST_OID + 1 }])).toEqual([{ error: ERR.cancel }]);
    expect(ex.cancelByCloid(ALICE, [{ asset: 0, cloid: c }])).toEqual(['success']);
    expect(ex.cancelByCloid(ALICE, [{ asset: 0, cloid: c }])).toEqual([{ error: ERR.cancel }]);
    expect(updates(events, FIRST_OID)).toEqual(['open', 'canceled']);
    expect(ex.orderStatus(ALICE, c)).toMatchObject({ status: 'order', order: { status: 'canceled', order: { oid: FIRST_OID + 1, cloid: c } } });
    expect(ex.openOrders(ALICE)).toEqual([]);
  });

  it('modify replaces the order under a new oid, keeping its cloid; batchModify returns statuses', () => {
    const { ex } = setup();
    const c = '0x000000000000000000000000000000aa';
    ex.placeOrders(ALICE, [limit(0, true, 60000, '0.01', 'Gtc', { cloid: c })]);
    expect(ex.modify(ALICE, FIRST_OID, limit(0, true, 60100, '0.02', 'Gtc', { cloid: c }))).toEqual({ ok: true });
    expect(ex.openOrders(ALICE)).toEqual([expect.objectContaining({ oid: FIRST_OID + 1, limitPx: '60100', sz: '0.02', cloid: c })]);
    expect(ex.orderStatus(ALICE, FIRST_OID)).toMatchObject({ order: { status: 'canceled' } });
    expect(ex.modify(ALICE, FIRST_OID, limit(0, true, 60100, '0.02'))).toEqual({ error: 'Cannot modify canceled or filled order' });
    expect(ex.batchModify(ALICE, [{ oid: c, order: limit(0, true, 60200, '0.02', 'Gtc', { cloid: c }) }, { oid: 5, order: limit(0, true, 1, 1) }])).toEqual([
      { resting: { oid: FIRST_OID + 2, cloid: c } },
      { error: ERR.modify },
    ]);
  });
});

describe('engine: leverage', () => {
  it('accepts 1..maxLeverage integers only', () => {
    const { ex } = setup();
    expect(ex.updateLeverage(ALICE, 0, true, 0)).toEqual({ error: 'Invalid leverage value' });
    expect(ex.updateLeverage(ALICE, 0, true, 51)).toEqual({ error: ERR.leverage });
    expect(ex.updateLeverage(ALICE, 1, false, 25)).toEqual({ ok: true });
    expect(ex.updateLeverage(ALICE, 9, true, 2)).toEqual({ error: ERR.invalidAsset });
    ex.applyBlock(block('ETH', '2999.9', '3000.1', { tick: '0.1' }));
    ex.placeOrders(ALICE, [limit(1, true, '3000.1', '0.01', 'Ioc')]);
    expect(ex.clearinghouseState(ALICE).assetPositions[0]?.position).toMatchObject({ leverage: { type: 'cross', value: 25 }, maxLeverage: 25 });
    // position value at mark 3000 = 30, / 25
    expect(ex.clearinghouseState(ALICE).assetPositions[0]?.position.marginUsed).toBe('1.2');
  });
});
