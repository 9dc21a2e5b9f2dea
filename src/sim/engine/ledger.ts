/**
 * Accounts and positions: collateral, signed sizes, cost basis, realized PnL and funding.
 *
 * Invariants:
 * - A position keeps its signed cost basis `cost` (Σ signed px × size of the opening fills,
 *   reduced pro rata on closes) instead of an entry price, so that value is conserved EXACTLY:
 *   for a trade of signed size q at px between two accounts, Σ (balance + szi × mark − cost)
 *   changes by −fees only. Entry price = cost / szi is derived for display.
 * - The pro rata share of cost removed on a partial close is rounded to COST_DP decimals, and the
 *   remaining cost is the exact difference, so a position closed to zero has cost exactly zero.
 * - A position with szi = 0 is deleted.
 */
import { Decimal, ZERO } from '../../domain/decimal.ts';
import type { FillWire, Side } from '../types.ts';
import type { EngineOrder } from './order-book.ts';

const COST_DP = 18;

export interface CumFunding {
  /** Funding PAID (positive = paid, negative = received), as Hyperliquid's cumFunding reports it. */
  allTime: Decimal;
  sinceOpen: Decimal;
  sinceChange: Decimal;
}

export interface Position {
  readonly asset: number;
  szi: Decimal;
  cost: Decimal;
  cumFunding: CumFunding;
}

export interface Account {
  readonly address: string;
  readonly isMM: boolean;
  balance: Decimal;
  readonly positions: Map<number, Position>;
  /** Leverage per asset; absent = the asset's default. */
  readonly leverage: Map<number, { value: number; isCross: boolean }>;
  /** Live orders by oid: resting, waiting for a trigger, or waiting for their parent's fill. */
  readonly openOrders: Map<number, EngineOrder>;
  /** The reduce-only subset of openOrders (swept when a position closes or flips). */
  readonly reduceOnlyOrders: Set<EngineOrder>;
  /** Σ px × remaining of resting non-reduce-only limit orders per asset (reserved margin basis). */
  readonly openNtl: Map<number, Decimal>;
  /** Every cloid this user ever used, with its order's oid. */
  readonly cloids: Map<string, number>;
  /** Fill history, oldest first. */
  readonly fills: FillWire[];
  scheduledCancel: number | undefined;
  scheduledCancelDay: number;
  scheduledCancelCount: number;
}

export function newAccount(address: string, isMM = false): Account {
  return {
    address,
    isMM,
    balance: ZERO,
    positions: new Map(),
    leverage: new Map(),
    openOrders: new Map(),
    reduceOnlyOrders: new Set(),
    openNtl: new Map(),
    cloids: new Map(),
    fills: [],
    scheduledCancel: undefined,
    scheduledCancelDay: -1,
    scheduledCancelCount: 0,
  };
}

export interface PositionChange {
  readonly startPosition: Decimal;
  readonly closedPnl: Decimal;
  readonly dir: string;
  readonly endPosition: Decimal;
}

/** Hyperliquid's fill direction label, from the position before the fill and the fill's side. */
export function fillDir(start: Decimal, side: Side, sz: Decimal): string {
  if (side === 'B') {
    if (start.gte(0)) return 'Open Long';
    return sz.lte(start.abs()) ? 'Close Short' : 'Short > Long';
  }
  if (start.lte(0)) return 'Open Short';
  return sz.lte(start) ? 'Close Long' : 'Long > Short';
}

/**
 * Applies a fill of `sz` on `side` at `px` to the account's position in `asset`; credits the
 * realized PnL to the balance. A flip closes the whole position then opens the rest.
 */
export function applyFill(acct: Account, asset: number, side: Side, sz: Decimal, px: Decimal): PositionChange {
  const q = side === 'B' ? sz : sz.neg();
  let pos = acct.positions.get(asset);
  const start = pos?.szi ?? ZERO;
  const dir = fillDir(start, side, sz);
  let closedPnl = ZERO;
  if (pos === undefined) {
    pos = { asset, szi: ZERO, cost: ZERO, cumFunding: { allTime: ZERO, sinceOpen: ZERO, sinceChange: ZERO } };
    acct.positions.set(asset, pos);
  }
  if (start.isZero() || start.isPositive() === q.isPositive()) {
    pos.cost = pos.cost.plus(q.times(px));
    pos.szi = start.plus(q);
    if (start.isZero()) pos.cumFunding.sinceOpen = ZERO;
  } else {
    const closeAbs = Decimal.min(q.abs(), start.abs());
    const qc = q.isPositive() ? closeAbs : closeAbs.neg();
    const costRemoved = closeAbs.eq(start.abs()) ? pos.cost : pos.cost.times(closeAbs).div(start.abs()).toDecimalPlaces(COST_DP);
    closedPnl = qc.neg().times(px).minus(costRemoved);
    pos.cost = pos.cost.minus(costRemoved);
    pos.szi = start.plus(qc);
    const rest = q.minus(qc);
    if (!rest.isZero()) {
      pos.cost = pos.cost.plus(rest.times(px));
      pos.szi = pos.szi.plus(rest);
      pos.cumFunding.sinceOpen = ZERO;
    }
    acct.balance = acct.balance.plus(closedPnl);
  }
  pos.cumFunding.sinceChange = ZERO;
  if (pos.szi.isZero()) acct.positions.delete(asset);
  return { startPosition: start, closedPnl, dir, endPosition: pos.szi };
}

/** Entry price of a position (cost / szi), undefined when flat. */
export function entryPx(pos: Position): Decimal | undefined {
  if (pos.szi.isZero()) return undefined;
  return pos.cost.div(pos.szi);
}

/** Unrealized PnL at `mark`. */
export function unrealizedPnl(pos: Position, mark: Decimal): Decimal {
  return pos.szi.times(mark).minus(pos.cost);
}
