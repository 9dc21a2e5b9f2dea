/** keel's persistence: the public surface of src/store. */
export { openStore, type OpenStoreOptions, type Store } from './open-store.ts';
export { StoreError, type StoreErrorKind } from './errors.ts';
export { OrderRepository, ORDER_KINDS, OPEN_ORDER_STATES, formatCloid, parseCloidCounter } from './order-repository.ts';
export { FillRepository } from './fill-repository.ts';
export { PositionRepository } from './position-repository.ts';
export { TradeRepository, type TradeInsertResult } from './trade-repository.ts';
export { EquityRepository } from './equity-repository.ts';
export { RuntimeStateRepository } from './runtime-state-repository.ts';
export { ModeRepository } from './mode-repository.ts';
export { AuditRepository } from './audit-repository.ts';
export {
  POSITION_STAGES,
  type AuditEntry,
  type Database,
  type EquitySnapshot,
  type FillRecord,
  type ModeTransition,
  type NewAuditEntry,
  type NewIntent,
  type NewModeTransition,
  type NewTrade,
  type OrderRecord,
  type OrderStatePatch,
  type PositionRecord,
  type PositionStage,
  type RuntimeStateKey,
  type RuntimeStateValues,
  type TradeRecord,
  type TrailingStop,
} from './schema.ts';
