/**
 * Public surface of the simulated exchange engine (see exchange.ts for its invariants).
 */
export { Exchange, MM_ADDRESS, ERR, FIRST_OID, DEFAULT_MAKER_FEE, DEFAULT_TAKER_FEE } from './exchange.ts';
export type { ExchangeOptions, FaultHooks, ExchangeListener, InternalTotals, GroundTruth, GroundTruthOrder } from './exchange.ts';
export type { EngineOrder, TriggerSpec } from './order-book.ts';
export { tradeHash } from './wire.ts';
export type {
  ActionResult,
  AssetCtxWire,
  AssetPositionWire,
  ClearinghouseStateWire,
  FrontendOpenOrderWire,
  L2BookWire,
  L2LevelWire,
  MarginSummaryWire,
  MetaWire,
  OpenOrderWire,
  OrderStatusInfoWire,
  TradeWire,
  UserFeesWire,
} from './wire.ts';
