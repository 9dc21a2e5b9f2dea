/**
 * Real-shaped Hyperliquid wire samples (hyperliquid-api.md, the simulator's answers) that the fuzz
 * suite mutates, and the domain invariants every parsed value must keep: finite Decimals, positive
 * sizes where the domain says so, known enums, non-negative integer ids and times.
 */
import { Decimal } from '../../src/domain/decimal.ts';
import type { AccountState, Candle, Fill, Instrument, VenueOrder, VenueOrderStatus } from '../../src/domain/types.ts';

export const CLOID = '0x1234567890abcdef1234567890abcdef';

export const META = { universe: [{ name: 'BTC', szDecimals: 5, maxLeverage: 40 }, { name: 'ETH', szDecimals: 4, maxLeverage: 25, onlyIsolated: false }, { name: 'OLD', szDecimals: 2, maxLeverage: 3, isDelisted: true }], marginTables: [] };
export const ALL_MIDS = { BTC: '65000.5', ETH: '3200.25', '@1': '1.0', 'PURR/USDC': '0.2' };
export const CANDLE = { t: 1_700_000_000_000, T: 1_700_000_059_999, s: 'BTC', i: '1m', o: '65000', c: '65010.5', h: '65020', l: '64990', v: '12.345', n: 42 };
export const CANDLES = [CANDLE, { ...CANDLE, t: 1_700_000_060_000, T: 1_700_000_119_999, o: '65010.5', c: '65000' }];
export const CLEARINGHOUSE = {
  assetPositions: [
    { type: 'oneWay', position: { coin: 'BTC', szi: '-0.5', leverage: { type: 'cross', value: 10 }, entryPx: '65000', positionValue: '32500', unrealizedPnl: '-12.5', returnOnEquity: '0.01', liquidationPx: '90000.1', marginUsed: '3250', maxLeverage: 40, cumFunding: { allTime: '0', sinceChange: '0', sinceOpen: '0' } } },
    { type: 'oneWay', position: { coin: 'ETH', szi: '0', leverage: { type: 'isolated', value: 5, rawUsd: '0' }, entryPx: '0', positionValue: '0', unrealizedPnl: '0', returnOnEquity: '0', liquidationPx: null, marginUsed: '0', maxLeverage: 25 } },
  ],
  crossMarginSummary: { accountValue: '100000', totalNtlPos: '32500', totalRawUsd: '0', totalMarginUsed: '3250' },
  marginSummary: { accountValue: '100000', totalNtlPos: '32500', totalRawUsd: '0', totalMarginUsed: '3250' },
  crossMaintenanceMarginUsed: '100',
  withdrawable: '96750',
  time: 1_700_000_000_000,
};
export const OPEN_ORDER = { coin: 'BTC', side: 'B', limitPx: '64000', sz: '0.1', oid: 77, timestamp: 1_700_000_000_000, origSz: '0.2', isTrigger: false, triggerPx: '0', reduceOnly: false, orderType: 'Limit', tif: 'Gtc', cloid: CLOID, isPositionTpsl: false, triggerCondition: 'N/A', children: [] };
export const OPEN_ORDERS = [OPEN_ORDER, { ...OPEN_ORDER, side: 'A', oid: 78, isTrigger: true, triggerPx: '70000', reduceOnly: true, cloid: null }];
export const ORDER_STATUS = { status: 'order', order: { order: OPEN_ORDER, status: 'open', statusTimestamp: 1_700_000_000_100 } };
export const ORDER_STATUS_MISSING = { status: 'unknownOid' };
export const FILL = { coin: 'BTC', px: '65000', sz: '0.1', side: 'B', time: 1_700_000_000_000, startPosition: '0', dir: 'Open Long', closedPnl: '0', hash: '0xabc', oid: 77, crossed: true, fee: '1.95', tid: 123456, feeToken: 'USDC', cloid: CLOID };
export const FILLS = [FILL, { ...FILL, tid: 123457, side: 'A', closedPnl: '-3.5', fee: '-0.1', cloid: undefined }];
export const ORDER_RESPONSE = { status: 'ok', response: { type: 'order', data: { statuses: [{ resting: { oid: 77, cloid: CLOID } }] } } };
export const ORDER_RESPONSE_FILLED = { status: 'ok', response: { type: 'order', data: { statuses: [{ filled: { oid: 78, totalSz: '0.1', avgPx: '65000.5' } }] } } };
export const ORDER_RESPONSE_ERROR = { status: 'ok', response: { type: 'order', data: { statuses: [{ error: 'Insufficient margin to place order.' }] } } };
export const ORDER_RESPONSE_WAITING = { status: 'ok', response: { type: 'order', data: { statuses: ['waitingForTrigger'] } } };
export const CANCEL_RESPONSE = { status: 'ok', response: { type: 'cancel', data: { statuses: ['success', { error: 'Order was never placed, already canceled, or filled.' }] } } };
export const DEFAULT_RESPONSE = { status: 'ok', response: { type: 'default' } };
export const ERROR_BODY = { status: 'err', response: 'User or API Wallet 0x0 does not exist.' };

// WebSocket `data` payloads per channel.
export const WS_ALL_MIDS = { mids: ALL_MIDS };
export const WS_BOOK = { coin: 'BTC', time: 1_700_000_000_000, levels: [[{ px: '64999', sz: '1.5', n: 3 }, { px: '64998', sz: '0.5', n: 1 }], [{ px: '65001', sz: '2', n: 4 }]] };
export const WS_TRADES = [{ coin: 'BTC', side: 'A', px: '65000', sz: '0.01', time: 1_700_000_000_000, tid: 99, hash: '0x0', users: ['0x1', '0x2'] }];
export const WS_USER_FILLS = { isSnapshot: false, user: '0x0000000000000000000000000000000000000001', fills: FILLS };
export const WS_ORDER_UPDATES = [{ order: { coin: 'BTC', side: 'B', limitPx: '64000', sz: '0.05', oid: 77, timestamp: 1_700_000_000_000, origSz: '0.1', cloid: CLOID }, status: 'open', statusTimestamp: 1_700_000_000_100 }];

// ── domain invariants ─────────────────────────────────────────────────────────────────────
// Plain throwing checks (fast-check reports the input): vitest's `expect` is too slow for 10,000
// inputs per target.

export class InvariantError extends Error {
  override readonly name = 'InvariantError';
}

export function check(cond: boolean, what: string): void {
  if (!cond) throw new InvariantError(what);
}

export function expectFiniteDecimal(d: unknown, what: string): void {
  check(d instanceof Decimal && d.isFinite(), `${what} is a finite Decimal: ${String(d)}`);
}

export function expectPositive(d: unknown, what: string): void {
  expectFiniteDecimal(d, what);
  check((d as Decimal).gt(0), `${what} > 0`);
}

export function expectNonNegative(d: unknown, what: string): void {
  expectFiniteDecimal(d, what);
  check((d as Decimal).gte(0), `${what} ≥ 0`);
}

export function expectId(n: unknown, what: string): void {
  check(Number.isSafeInteger(n) && (n as number) >= 0, `${what} is a non-negative integer: ${String(n)}`);
}

export function expectCloid(c: unknown): void {
  if (c !== undefined) check(typeof c === 'string' && /^0x[0-9a-f]{32}$/.test(c), `cloid ${String(c)}`);
}

export function checkInstrument(i: Instrument): void {
  check(typeof i.coin === 'string' && i.coin.length > 0, 'coin');
  expectId(i.assetId, 'assetId');
  check(Number.isInteger(i.szDecimals) && i.szDecimals >= 0 && i.szDecimals <= 8, 'szDecimals');
  check(Number.isInteger(i.maxLeverage) && i.maxLeverage > 0, 'maxLeverage');
}

export function checkCandle(c: Candle): void {
  for (const k of ['o', 'h', 'l', 'c', 'v'] as const) check(Number.isFinite(c[k]), `candle ${k} finite: ${c[k]}`);
  check(c.h >= c.l && c.v >= 0 && c.T >= c.t, 'candle consistent');
  expectId(c.t, 'candle t');
}

export function checkAccount(a: AccountState): void {
  for (const k of ['accountValue', 'totalMarginUsed', 'totalNtlPos', 'withdrawable'] as const) expectFiniteDecimal(a[k], k);
  expectId(a.time, 'time');
  for (const p of a.positions) {
    expectFiniteDecimal(p.szi, 'szi');
    check(!p.szi.isZero(), 'a zero position is not a position');
    expectNonNegative(p.entryPx, 'entryPx');
    expectFiniteDecimal(p.unrealizedPnl, 'unrealizedPnl');
    expectNonNegative(p.marginUsed, 'marginUsed');
    check(Number.isFinite(p.leverage) && p.leverage > 0, 'leverage');
    if (p.liquidationPx !== undefined) expectFiniteDecimal(p.liquidationPx, 'liquidationPx');
  }
}

export function checkVenueOrder(o: VenueOrder): void {
  expectId(o.oid, 'oid');
  expectCloid(o.cloid);
  check(o.side === 'buy' || o.side === 'sell', 'side');
  expectNonNegative(o.px, 'px');
  expectNonNegative(o.sz, 'sz');
  expectNonNegative(o.origSz, 'origSz');
  check(typeof o.reduceOnly === 'boolean', 'reduceOnly');
  if (o.triggerPx !== undefined) expectNonNegative(o.triggerPx, 'triggerPx');
}

export function checkOrderStatus(s: VenueOrderStatus): void {
  if (!s.found) return;
  expectId(s.oid, 'oid');
  check(['open', 'filled', 'canceled', 'triggered', 'rejected', 'other'].includes(s.status), `status ${s.status}`);
  expectNonNegative(s.sz, 'sz');
  expectNonNegative(s.origSz, 'origSz');
  expectId(s.statusTimestamp, 'statusTimestamp');
}

export function checkFill(f: Fill): void {
  expectId(f.tid, 'tid');
  expectId(f.oid, 'oid');
  expectCloid(f.cloid);
  check(f.side === 'buy' || f.side === 'sell', 'side');
  expectPositive(f.px, 'px');
  expectPositive(f.sz, 'sz');
  expectFiniteDecimal(f.fee, 'fee');
  expectFiniteDecimal(f.closedPnl, 'closedPnl');
  expectId(f.time, 'time');
  check(typeof f.crossed === 'boolean', 'crossed');
}
