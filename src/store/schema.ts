/**
 * The database's row types, as SQLite holds them (the `Database` interface Kysely is typed with),
 * and the domain records the repositories return.
 *
 * Invariants: row columns mirror migrations/ exactly (snake_case, decimals as wire TEXT, times as
 * INTEGER ms, booleans as 0/1); records use domain types (Decimal, boolean, optional fields).
 */
import type { Generated } from 'kysely';
import type { Decimal } from '../domain/decimal.ts';
import type { Cloid, Coin, Direction, Fill, Mode, OrderIntent, OrderState, Side, TradingGate } from '../domain/types.ts';

export interface OrdersTable {
  cloid: string;
  seq: number;
  coin: string;
  asset_id: number;
  side: Side;
  sz: string;
  px: string;
  reduce_only: number;
  tif: 'Gtc' | 'Ioc' | 'Alo';
  trigger_px: string | null;
  tpsl: 'tp' | 'sl' | null;
  is_market: number | null;
  kind: string;
  parent_cloid: string | null;
  created_at: number;
  expires_after: number | null;
  state: OrderState;
  oid: number | null;
  filled_sz: string;
  avg_px: string | null;
  last_error: string | null;
  updated_at: number;
  submitted_at: number | null;
  resolved_at: number | null;
}

export interface FillsTable {
  tid: number;
  oid: number;
  cloid: string | null;
  coin: string;
  side: Side;
  px: string;
  sz: string;
  fee: string;
  closed_pnl: string;
  time: number;
  crossed: number;
}

export interface PositionsTable {
  coin: string;
  szi: string;
  entry_px: string;
  entry_cloid: string | null;
  opened_at: number | null;
  entry_fees: string;
  stage: string;
  stop_cloid: string | null;
  tp_cloids: string;
  initial_stop_px: string | null;
  take_profit_px: string | null;
  r_unit: string | null;
  trail_distance: string | null;
  trail_activate_px: string | null;
  trail_extreme_px: string | null;
  updated_at: number;
}

export interface TradesTable {
  id: Generated<number>;
  coin: string;
  direction: Direction;
  sz: string;
  entry_px: string;
  exit_px: string;
  gross_pnl: string;
  fees: string;
  net_pnl: string;
  opened_at: number;
  closed_at: number;
  entry_cloid: string | null;
  exit_cloid: string | null;
  exit_tid: number | null;
  exit_oid: number | null;
}

export interface EquitySnapshotsTable {
  id: Generated<number>;
  time: number;
  account_value: string;
  margin_used: string;
  unrealized_pnl: string;
  realized_pnl_day: string;
  drawdown: string;
}

export interface RuntimeStateTable {
  key: string;
  value: string;
  updated_at: number;
}

export interface ModeTransitionsTable {
  id: Generated<number>;
  time: number;
  from_mode: Mode | null;
  to_mode: Mode;
  reason: string;
}

export interface AuditLogTable {
  id: Generated<number>;
  time: number;
  actor: string;
  action: string;
  detail: string;
}

export interface Database {
  orders: OrdersTable;
  fills: FillsTable;
  positions: PositionsTable;
  trades: TradesTable;
  equity_snapshots: EquitySnapshotsTable;
  runtime_state: RuntimeStateTable;
  mode_transitions: ModeTransitionsTable;
  audit_log: AuditLogTable;
}

// ---- domain records -------------------------------------------------------------------------

/** What `commitIntent` takes: the intent minus the cloid the store allocates. */
export type NewIntent = Omit<OrderIntent, 'cloid'> & {
  /** Absolute ms after which the venue must refuse the action, when already known at commit time. */
  readonly expiresAfter?: number;
};

/** One order (one cloid): the committed intent and where its lifecycle stands. */
export interface OrderRecord extends OrderIntent {
  /** The cloid counter value it consumed (strictly increasing in commit order). */
  readonly seq: number;
  readonly expiresAfter?: number;
  readonly state: OrderState;
  readonly oid?: number;
  readonly filledSz: Decimal;
  readonly avgPx?: Decimal;
  readonly lastError?: string;
  readonly updatedAt: number;
  readonly submittedAt?: number;
  readonly resolvedAt?: number;
}

/**
 * A change to an order's lifecycle. Absent fields are left as they are; `lastError: null` clears
 * the error. Reaching a terminal state sets `resolvedAt` (to `updatedAt`) unless given.
 */
export interface OrderStatePatch {
  readonly state?: OrderState;
  readonly oid?: number;
  readonly filledSz?: Decimal;
  readonly avgPx?: Decimal;
  readonly lastError?: string | null;
  readonly expiresAfter?: number;
  readonly submittedAt?: number;
  readonly resolvedAt?: number;
  /** Defaults to the store's clock. */
  readonly updatedAt?: number;
}

export type FillRecord = Fill;

/** How far the protection of a position has progressed (the order manager's bookkeeping). */
export const POSITION_STAGES = ['unprotected', 'open', 'tp1_done', 'trailing', 'closing'] as const;
export type PositionStage = (typeof POSITION_STAGES)[number];

export interface TrailingStop {
  /** Price distance the stop follows the extreme at. */
  readonly distance: Decimal;
  /** The stop starts trailing once the price reaches this level (immediately when absent). */
  readonly activatePx?: Decimal;
  /** Best price seen since activation: the stop only ratchets toward it. */
  readonly extremePx?: Decimal;
}

/**
 * keel's view of a position it manages, with its protective state. A row with `szi` zero is a
 * planned position: written with the entry intent (stop, target, R) before the entry fills.
 */
export interface PositionRecord {
  readonly coin: Coin;
  /** Signed size: + long, − short. */
  readonly szi: Decimal;
  readonly entryPx: Decimal;
  readonly entryCloid?: Cloid;
  readonly openedAt?: number;
  readonly entryFees: Decimal;
  readonly stage: PositionStage;
  readonly stopCloid?: Cloid;
  readonly tpCloids: readonly Cloid[];
  readonly initialStopPx?: Decimal;
  readonly takeProfitPx?: Decimal;
  /** One R: the entry-to-initial-stop distance in price. */
  readonly rUnit?: Decimal;
  readonly trailing?: TrailingStop;
  readonly updatedAt: number;
}

/** A closed round trip (or a partial close of one) with its PnL, fees included. */
export interface TradeRecord {
  readonly id: number;
  readonly coin: Coin;
  readonly direction: Direction;
  readonly sz: Decimal;
  readonly entryPx: Decimal;
  readonly exitPx: Decimal;
  readonly grossPnl: Decimal;
  readonly fees: Decimal;
  readonly netPnl: Decimal;
  readonly openedAt: number;
  readonly closedAt: number;
  readonly entryCloid?: Cloid;
  readonly exitCloid?: Cloid;
  /** The exit fill that realised it: recording the same fill's trade twice is a no-op. */
  readonly exitFill?: { readonly tid: number; readonly oid: number };
}
export type NewTrade = Omit<TradeRecord, 'id'>;

export interface EquitySnapshot {
  readonly time: number;
  readonly accountValue: Decimal;
  readonly marginUsed: Decimal;
  readonly unrealizedPnl: Decimal;
  readonly realizedPnlDay: Decimal;
  /** Fraction below the peak (0.05 = 5 %). */
  readonly drawdown: Decimal;
}

export interface ModeTransition {
  readonly id: number;
  readonly time: number;
  readonly from?: Mode;
  readonly to: Mode;
  readonly reason: string;
}
export type NewModeTransition = Omit<ModeTransition, 'id'>;

export interface AuditEntry {
  readonly id: number;
  readonly time: number;
  readonly actor: string;
  readonly action: string;
  readonly detail: unknown;
}
export type NewAuditEntry = Omit<AuditEntry, 'id'>;

/** Typed runtime_state keys. The cloid prefix and counter are the order repository's alone. */
export interface RuntimeStateValues {
  mode: Mode;
  gate: TradingGate;
  /** Operator pause: no new entries. */
  paused: boolean;
  /** Newest fill time applied: the REST backfill starts here after a restart. */
  last_fill_time: number;
  /** The trading day's start (ms, UTC midnight) and the equity then (wire decimal). */
  day_start: { readonly day: number; readonly equity: string };
  /** Highest account value seen (wire decimal): drawdown is measured from it. */
  peak_equity: string;
  /** Last reconciliation outcome, for `keel status`. */
  last_reconciliation: { readonly time: number; readonly clean: boolean; readonly summary: string };
}
export type RuntimeStateKey = keyof RuntimeStateValues;
