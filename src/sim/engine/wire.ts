/**
 * Wire shapes the engine returns from its queries (hyperliquid-api.md §2), and the deterministic
 * transaction hash. The server serializes these objects as-is, so every decimal here is a string
 * produced by `toWire`, and optional keys are omitted rather than set to undefined.
 */
import type { OrderState, Side } from '../types.ts';

export interface OpenOrderWire {
  coin: string;
  limitPx: string;
  oid: number;
  side: Side;
  sz: string;
  timestamp: number;
  origSz: string;
  cloid?: string;
  reduceOnly?: true;
}

export interface FrontendOpenOrderWire {
  coin: string;
  side: Side;
  limitPx: string;
  sz: string;
  oid: number;
  timestamp: number;
  triggerCondition: string;
  isTrigger: boolean;
  triggerPx: string;
  children: FrontendOpenOrderWire[];
  isPositionTpsl: boolean;
  reduceOnly: boolean;
  orderType: string;
  origSz: string;
  tif: string | null;
  cloid: string | null;
}

export type OrderStatusInfoWire =
  | { status: 'order'; order: { order: FrontendOpenOrderWire; status: OrderState; statusTimestamp: number } }
  | { status: 'unknownOid' };

export interface MarginSummaryWire {
  accountValue: string;
  totalNtlPos: string;
  totalRawUsd: string;
  totalMarginUsed: string;
}

export interface AssetPositionWire {
  type: 'oneWay';
  position: {
    coin: string;
    szi: string;
    leverage: { type: 'cross'; value: number };
    entryPx: string;
    positionValue: string;
    unrealizedPnl: string;
    returnOnEquity: string;
    liquidationPx: string | null;
    marginUsed: string;
    maxLeverage: number;
    cumFunding: { allTime: string; sinceOpen: string; sinceChange: string };
  };
}

export interface ClearinghouseStateWire {
  assetPositions: AssetPositionWire[];
  marginSummary: MarginSummaryWire;
  crossMarginSummary: MarginSummaryWire;
  crossMaintenanceMarginUsed: string;
  withdrawable: string;
  time: number;
}

export interface MetaWire {
  universe: { name: string; szDecimals: number; maxLeverage: number; marginTableId: number }[];
  marginTables: [number, { description: string; marginTiers: { lowerBound: string; maxLeverage: number }[] }][];
  collateralToken: number;
}

export interface AssetCtxWire {
  dayNtlVlm: string;
  funding: string;
  impactPxs: [string, string] | null;
  markPx: string;
  midPx: string | null;
  openInterest: string;
  oraclePx: string;
  premium: string | null;
  prevDayPx: string;
  dayBaseVlm: string;
}

export interface L2LevelWire {
  px: string;
  sz: string;
  n: number;
}

export interface L2BookWire {
  coin: string;
  time: number;
  levels: [L2LevelWire[], L2LevelWire[]];
}

export interface TradeWire {
  coin: string;
  side: Side;
  px: string;
  sz: string;
  hash: string;
  time: number;
  tid: number;
  users: [string, string];
}

export interface UserFeesWire {
  dailyUserVlm: { date: string; userCross: string; userAdd: string; exchange: string }[];
  feeSchedule: { cross: string; add: string; spotCross: string; spotAdd: string; tiers: { vip: unknown[]; mm: unknown[] }; referralDiscount: string; stakingDiscountTiers: unknown[] };
  userCrossRate: string;
  userAddRate: string;
  userSpotCrossRate: string;
  userSpotAddRate: string;
  activeReferralDiscount: string;
  trial: null;
  feeTrialReward: string;
  nextTrialAvailableTimestamp: null;
  stakingLink: null;
  activeStakingDiscount: { bpsOfMaxSupply: string; discount: string };
}

/** `{ok:true}` or an error string: the outcome of modify, updateLeverage and scheduleCancel. */
export type ActionResult = { ok: true } | { error: string };

/**
 * A deterministic `0x` + 64-hex transaction hash for trade number `n`: eight rounds of a 32-bit
 * integer mix (murmur3 finalizer), so it is cheap on the matching hot path and identical across runs.
 */
export function tradeHash(n: number): string {
  let out = '0x';
  let h = (n ^ 0x9e3779b9) >>> 0;
  const hi = Math.floor(n / 0x1_0000_0000) >>> 0;
  for (let i = 0; i < 8; i++) {
    h = (h + Math.imul(i + 1, 0x85ebca6b) + hi) >>> 0;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b) >>> 0;
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
    out += (h >>> 0).toString(16).padStart(8, '0');
  }
  return out;
}
