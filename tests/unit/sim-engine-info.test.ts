import { describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import { FIRST_OID, MM_ADDRESS, tradeHash } from '../../src/sim/engine/index.ts';
import { ALICE, BOB, block, limit, ofKind, setup } from './sim-engine-helpers.ts';

describe('engine: info queries', () => {
  it('meta and metaAndAssetCtxs have the wire shape', () => {
    const { ex } = setup();
    expect(ex.meta()).toEqual({
      universe: [
        { name: 'BTC', szDecimals: 5, maxLeverage: 50, marginTableId: 50 },
        { name: 'ETH', szDecimals: 4, maxLeverage: 25, marginTableId: 25 },
      ],
      marginTables: [
        [25, { description: '', marginTiers: [{ lowerBound: '0.0', maxLeverage: 25 }] }],
        [50, { description: '', marginTiers: [{ lowerBound: '0.0', maxLeverage: 50 }] }],
      ],
      collateralToken: 0,
    });
    ex.applyBlock(block('BTC', 64990, 65010, { oraclePx: 64995, fundingRate: '0.0000125', trades: [{ px: dec(65000), sz: dec('0.5'), side: 'B' }] }));
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.1', 'Ioc')]);
    const [meta, ctxs] = ex.metaAndAssetCtxs();
    expect(meta.universe).toHaveLength(2);
    expect(ctxs[0]).toEqual({
      dayNtlVlm: '39001', // 0.5 × 65000 + 0.1 × 65010
      funding: '0.0000125',
      impactPxs: ['64990', '65010'],
      markPx: '65000',
      midPx: '65000',
      openInterest: '0.1',
      oraclePx: '64995',
      premium: '0.00007693',
      prevDayPx: '65000',
      dayBaseVlm: '0.6',
    });
    expect(ctxs[1]).toMatchObject({ markPx: '0', midPx: null, impactPxs: null, premium: null });
    expect(ex.allMids()).toEqual({ BTC: '65000' });
  });

  it('clearinghouseState of an unknown user is all zeros', () => {
    const { ex } = setup();
    const z = { accountValue: '0', totalNtlPos: '0', totalRawUsd: '0', totalMarginUsed: '0' };
    expect(ex.clearinghouseState('0x1111111111111111111111111111111111111111')).toEqual({
      assetPositions: [], marginSummary: z, crossMarginSummary: z, crossMaintenanceMarginUsed: '0', withdrawable: '0', time: expect.any(Number),
    });
    expect(ex.openOrders('0x1111111111111111111111111111111111111111')).toEqual([]);
    expect(ex.userFills('0x1111111111111111111111111111111111111111')).toEqual([]);
    expect(ex.orderStatus('0x1111111111111111111111111111111111111111', 5)).toEqual({ status: 'unknownOid' });
    // Actions of an unfunded address do not make it an account.
    ex.placeOrders('0x1111111111111111111111111111111111111111', [limit(0, true, 60000, '0.01')]);
    expect(ex.hasAccount('0x1111111111111111111111111111111111111111')).toBe(false);
    expect(ex.hasAccount(ALICE)).toBe(true);
  });

  it('orderStatus answers the owner only, by oid or cloid', () => {
    const { ex } = setup();
    const c = '0x0000000000000000000000000000abcd';
    ex.placeOrders(ALICE, [limit(0, false, 70000, '0.01', 'Gtc', { cloid: c, reduceOnly: false })]);
    const st = ex.orderStatus(ALICE, FIRST_OID);
    expect(st).toEqual({
      status: 'order',
      order: {
        order: {
          coin: 'BTC', side: 'A', limitPx: '70000', sz: '0.01', oid: FIRST_OID, timestamp: expect.any(Number), triggerCondition: 'N/A', isTrigger: false, triggerPx: '0',
          children: [], isPositionTpsl: false, reduceOnly: false, orderType: 'Limit', origSz: '0.01', tif: 'Gtc', cloid: c,
        },
        status: 'open',
        statusTimestamp: expect.any(Number),
      },
    });
    expect(ex.orderStatus(ALICE, c)).toEqual(st);
    expect(ex.orderStatus(BOB, FIRST_OID)).toEqual({ status: 'unknownOid' });
  });

  it('l2Book merges user and MM orders, caps at 20 levels, buckets by nSigFigs and mantissa', () => {
    const { ex } = setup();
    ex.applyBlock(block('BTC', 64990, 65010, { levels: 30, sz: '0.5' }));
    ex.placeOrders(ALICE, [limit(0, true, 64990, '0.1')]);
    const full = ex.l2Book('BTC');
    expect(full?.coin).toBe('BTC');
    expect(full?.levels[0]).toHaveLength(20);
    expect(full?.levels[1]).toHaveLength(20);
    expect(full?.levels[0][0]).toEqual({ px: '64990', sz: '0.6', n: 3 });
    expect(full?.levels[1][0]).toEqual({ px: '65010', sz: '0.5', n: 2 });
    const two = ex.l2Book('BTC', 2);
    // bids 64990..64961 all floor to 64000; asks 65010..65039 ceil to 66000
    expect(two?.levels).toEqual([[{ px: '64000', sz: '15.1', n: 61 }], [{ px: '66000', sz: '15', n: 60 }]]);
    const five = ex.l2Book('BTC', 5, 5);
    expect(five?.levels[0].slice(0, 2)).toEqual([{ px: '64990', sz: '0.6', n: 3 }, { px: '64985', sz: '2.5', n: 10 }]);
    expect(five?.levels[1][0]).toEqual({ px: '65010', sz: '0.5', n: 2 });
    expect(ex.l2Book('NOPE')).toBeNull();
  });

  it('synthetic trades reach recentTrades and the trades event with MM users', () => {
    const { ex, events } = setup();
    ex.applyBlock(block('BTC', 64990, 65010, { trades: [{ px: dec(65000), sz: dec('0.25'), side: 'A' }] }));
    const [t] = ofKind(events, 'trades');
    expect(t?.trades).toEqual([{ coin: 'BTC', side: 'A', px: '65000', sz: '0.25', hash: tradeHash(1), time: expect.any(Number), tid: 1, users: [MM_ADDRESS, MM_ADDRESS] }]);
    expect(ex.recentTrades('BTC')).toEqual(t?.trades);
    expect(ofKind(events, 'book')).toHaveLength(1);
    expect(ofKind(events, 'mids')).toEqual([{ kind: 'mids', mids: { BTC: '65000' } }]);
  });

  it('userFillsByTime filters by time, oldest first; tradeHash is 0x + 64 hex and deterministic', () => {
    const { ex, clock } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    const t0 = clock.now();
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.01', 'Ioc')]);
    clock.advance(1000);
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.02', 'Ioc')]);
    expect(ex.userFillsByTime(ALICE, t0).map((f) => f.sz)).toEqual(['0.01', '0.02']);
    expect(ex.userFillsByTime(ALICE, t0 + 1).map((f) => f.sz)).toEqual(['0.02']);
    expect(ex.userFillsByTime(ALICE, 0, t0).map((f) => f.sz)).toEqual(['0.01']);
    expect(tradeHash(123)).toMatch(/^0x[0-9a-f]{64}$/);
    expect(tradeHash(123)).toBe(tradeHash(123));
    expect(tradeHash(123)).not.toBe(tradeHash(124));
  });

  it('groundTruth lists users (not the MM), every order and every fill', () => {
    const { ex } = setup();
    ex.applyBlock(block('BTC', 64990, 65010));
    ex.placeOrders(ALICE, [limit(0, true, 65010, '0.01', 'Ioc'), limit(0, true, 60000, '0.01')]);
    const g = ex.groundTruth();
    expect(g.accounts.map((a) => a.address)).toEqual([ALICE, BOB]);
    expect(g.orders.map((o) => [o.oid, o.status])).toEqual([[FIRST_OID, 'filled'], [FIRST_OID + 1, 'open']]);
    expect(g.openOrders.map((o) => o.oid)).toEqual([FIRST_OID + 1]);
    expect(g.fills).toEqual([expect.objectContaining({ user: ALICE, oid: FIRST_OID, sz: '0.01' })]);
    expect(g.feesCollected).toBe('0.292545');
    expect(g.totalFunded).toBe('20000');
    expect(g.accounts[0]?.positions[0]).toMatchObject({ coin: 'BTC', szi: '0.01', entryPx: '65010' });
  });
});
