/**
 * Orders: one row per cloid, the committed intent and its lifecycle. Holds the exactly-once hot
 * path: `commitIntent` allocates the cloid and inserts the intent in one durable transaction
 * (synchronous=FULL) that has returned before anything is signed.
 *
 * Invariants:
 * - cloid = `0x` + the database's 8-hex runtime prefix + the counter as 24 hex digits; the counter
 *   lives in runtime_state and is bumped in the same transaction as the insert, and `orders.seq`
 *   is UNIQUE, so a cloid is never reused, across crashes included.
 * - The intent commit is its own transaction: it refuses to run inside an open one (a savepoint
 *   inside someone else's transaction is not durable when it returns).
 * - Reads validate every row (decimals, enums): a corrupt row is a StoreError, not a guess.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import { ZERO } from '../domain/decimal.ts';
import { ORDER_STATES, TERMINAL_ORDER_STATES, type Cloid, type OrderIntent, type OrderKind, type OrderState } from '../domain/types.ts';
import { boolFromDb, boolToDb, decFromDb, decToDb, oneOf, optDecFromDb, optDecToDb, undefIfNull } from './codec.ts';
import { StoreError } from './errors.ts';
import type { Database, NewIntent, OrderRecord, OrdersTable, OrderStatePatch } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

export const ORDER_KINDS = ['entry', 'stop_loss', 'take_profit', 'take_profit_1', 'exit', 'flatten'] as const satisfies readonly OrderKind[];
// Fails to compile if types.ts grows an OrderKind this list lacks.
const _allKinds: Exclude<OrderKind, (typeof ORDER_KINDS)[number]> extends never ? true : never = true;
void _allKinds;

/** Orders known to be working on the exchange (the venue holds them). */
export const OPEN_ORDER_STATES = ['resting', 'partially_filled', 'cancelling'] as const satisfies readonly OrderState[];
const UNRESOLVED = sql<boolean>`state NOT IN (${sql.join([...TERMINAL_ORDER_STATES].map((st) => sql.lit(st)))})`;

export const CLOID_COUNTER_KEY = 'cloid_counter';
export const RUNTIME_PREFIX_KEY = 'runtime_prefix';
const PREFIX_RE = /^[0-9a-f]{8}$/;
const CLOID_RE = /^0x[0-9a-f]{32}$/;
const COUNTER_HEX_DIGITS = 24;

/** The cloid for a prefix and a counter value. */
export function formatCloid(prefix: string, counter: number): Cloid {
  return `0x${prefix}${counter.toString(16).padStart(COUNTER_HEX_DIGITS, '0')}`;
}

/** The counter a cloid of this database encodes, or undefined when it is not one of ours. */
export function parseCloidCounter(prefix: string, cloid: Cloid): number | undefined {
  if (!CLOID_RE.test(cloid) || cloid.slice(2, 10) !== prefix) return undefined;
  return Number.parseInt(cloid.slice(10), 16);
}

export interface OrderRepositoryDeps {
  readonly raw: BetterSqlite3.Database;
  readonly db: Kysely<Database>;
  readonly exec: SyncExecutor;
  readonly clock: () => number;
  readonly prefix: string;
  /** The connection's usual synchronous level; the intent commit raises it to FULL around itself. */
  readonly baseSynchronous: 'NORMAL' | 'FULL';
}

export class OrderRepository {
  readonly #raw: BetterSqlite3.Database;
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;
  readonly #clock: () => number;
  readonly #prefix: string;
  readonly #switchSync: boolean;
  readonly #syncFull: BetterSqlite3.Statement;
  readonly #syncBase: BetterSqlite3.Statement;
  readonly #bump: BetterSqlite3.Statement<[number], { counter: number }>;
  readonly #insert: BetterSqlite3.Statement;
  readonly #update: BetterSqlite3.Statement;
  readonly #commitMany: BetterSqlite3.Transaction<(intents: readonly NewIntent[]) => OrderIntent[]>;

  constructor(deps: OrderRepositoryDeps) {
    if (!PREFIX_RE.test(deps.prefix)) throw new StoreError('invalid_input', `runtime prefix must be 8 lowercase hex, got ${JSON.stringify(deps.prefix)}`);
    this.#raw = deps.raw;
    this.#db = deps.db;
    this.#exec = deps.exec;
    this.#clock = deps.clock;
    this.#prefix = deps.prefix;
    this.#switchSync = deps.baseSynchronous !== 'FULL';
    this.#syncFull = deps.raw.prepare('PRAGMA synchronous = FULL');
    this.#syncBase = deps.raw.prepare(`PRAGMA synchronous = ${deps.baseSynchronous}`);
    this.#bump = deps.raw.prepare(
      `UPDATE runtime_state SET value = CAST(value AS INTEGER) + 1, updated_at = ? WHERE key = '${CLOID_COUNTER_KEY}' RETURNING CAST(value AS INTEGER) AS counter`,
    );
    this.#insert = deps.raw.prepare(
      `INSERT INTO orders (cloid, seq, coin, asset_id, side, sz, px, reduce_only, tif, trigger_px, tpsl, is_market, kind, parent_cloid,
         created_at, expires_after, state, oid, filled_sz, avg_px, last_error, updated_at, submitted_at, resolved_at)
       VALUES (@cloid, @seq, @coin, @asset_id, @side, @sz, @px, @reduce_only, @tif, @trigger_px, @tpsl, @is_market, @kind, @parent_cloid,
         @created_at, @expires_after, 'intent', NULL, '0', NULL, NULL, @created_at, NULL, NULL)`,
    );
    this.#update = deps.raw.prepare(
      `UPDATE orders SET
         state = COALESCE(@state, state),
         oid = COALESCE(@oid, oid),
         filled_sz = COALESCE(@filled_sz, filled_sz),
         avg_px = COALESCE(@avg_px, avg_px),
         last_error = CASE WHEN @set_last_error = 1 THEN @last_error ELSE last_error END,
         expires_after = COALESCE(@expires_after, expires_after),
         submitted_at = COALESCE(@submitted_at, submitted_at),
         resolved_at = COALESCE(@resolved_at, resolved_at,
           CASE WHEN COALESCE(@state, state) IN ('filled', 'cancelled', 'rejected') THEN @updated_at END),
         updated_at = @updated_at
       WHERE cloid = @cloid`,
    );
    this.#commitMany = deps.raw.transaction((intents: readonly NewIntent[]) => intents.map((i) => this.#commitOne(i)));
  }

  /** This database's runtime prefix (8 hex), fixed at its creation. */
  get runtimePrefix(): string {
    return this.#prefix;
  }

  /**
   * Allocates a fresh cloid and commits the intent durably (synchronous=FULL) in one transaction.
   * When it returns, the intent survives kill -9 and power loss; sign and send only after it.
   * Throws StoreError('nested_intent_commit') inside an open transaction, 'invalid_input' for an
   * intent that breaks the domain rules (non-positive size or price, incomplete trigger).
   *
   * @example const intent = store.orders.commitIntent({ coin: 'BTC', assetId: 0, side: 'buy', sz, px, reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: now });
   */
  commitIntent(intent: NewIntent): OrderIntent {
    return this.commitIntents([intent])[0]!;
  }

  /** Several intents (an entry's stop and take-profits) committed atomically, cloids in order. */
  commitIntents(intents: readonly NewIntent[]): OrderIntent[] {
    if (intents.length === 0) return [];
    for (const i of intents) validateIntent(i);
    if (this.#raw.inTransaction) {
      throw new StoreError('nested_intent_commit', 'an intent commit must be its own transaction: it would not be durable inside an open one');
    }
    if (this.#switchSync) this.#syncFull.run();
    try {
      return this.#commitMany.immediate(intents);
    } finally {
      if (this.#switchSync) this.#syncBase.run();
    }
  }

  #commitOne(i: NewIntent): OrderIntent {
    const bumped = this.#bump.get(this.#clock());
    if (bumped === undefined) throw new StoreError('corrupt_row', 'runtime_state has no cloid counter');
    const counter = Number(bumped.counter);
    if (!Number.isSafeInteger(counter) || counter < 1) throw new StoreError('counter_exhausted', `cloid counter out of range: ${String(bumped.counter)}`);
    const cloid = formatCloid(this.#prefix, counter);
    this.#insert.run({
      cloid,
      seq: counter,
      coin: i.coin,
      asset_id: i.assetId,
      side: i.side,
      sz: decToDb(i.sz),
      px: decToDb(i.px),
      reduce_only: boolToDb(i.reduceOnly),
      tif: i.tif,
      trigger_px: i.trigger ? decToDb(i.trigger.triggerPx) : null,
      tpsl: i.trigger?.tpsl ?? null,
      is_market: i.trigger ? boolToDb(i.trigger.isMarket) : null,
      kind: i.kind,
      parent_cloid: i.parentCloid ?? null,
      created_at: i.createdAt,
      expires_after: i.expiresAfter ?? null,
    });
    const { expiresAfter: _drop, ...rest } = i;
    return { ...rest, cloid };
  }

  /**
   * Applies a lifecycle change. Returns false when no order has this cloid (nothing written).
   * Runs at the connection's usual synchronous level: a lost state update is recovered from the
   * venue (orderStatus by cloid), a lost intent would not be.
   */
  updateState(cloid: Cloid, patch: OrderStatePatch): boolean {
    const updatedAt = patch.updatedAt ?? this.#clock();
    const r = this.#update.run({
      cloid,
      state: patch.state ?? null,
      oid: patch.oid ?? null,
      filled_sz: patch.filledSz === undefined ? null : decToDb(patch.filledSz),
      avg_px: optDecToDb(patch.avgPx),
      set_last_error: patch.lastError === undefined ? 0 : 1,
      last_error: patch.lastError ?? null,
      expires_after: patch.expiresAfter ?? null,
      submitted_at: patch.submittedAt ?? null,
      resolved_at: patch.resolvedAt ?? null,
      updated_at: updatedAt,
    });
    return r.changes === 1;
  }

  byCloid(cloid: Cloid): OrderRecord | undefined {
    const row = this.#exec.first(this.#db.selectFrom('orders').selectAll().where('cloid', '=', cloid));
    return row && orderFromRow(row);
  }

  /** The order the venue knows by this oid (the newest, should an oid ever repeat). */
  byOid(oid: number): OrderRecord | undefined {
    const row = this.#exec.first(this.#db.selectFrom('orders').selectAll().where('oid', '=', oid).orderBy('seq', 'desc').limit(1));
    return row && orderFromRow(row);
  }

  /** Every order not in a terminal state, oldest first: what boot must resolve with the venue. */
  unresolved(): OrderRecord[] {
    // Literal, not bound, so SQLite can match it to the partial index orders_unresolved.
    return this.#exec.all(this.#db.selectFrom('orders').selectAll().where(UNRESOLVED).orderBy('seq')).map(orderFromRow);
  }

  /** Orders known to be working on the exchange (resting, partially filled, being cancelled). */
  open(coin?: string): OrderRecord[] {
    let q = this.#db.selectFrom('orders').selectAll().where('state', 'in', OPEN_ORDER_STATES);
    if (coin !== undefined) q = q.where('coin', '=', coin);
    return this.#exec.all(q.orderBy('seq')).map(orderFromRow);
  }

  /** Protective orders placed for an entry. */
  children(parentCloid: Cloid): OrderRecord[] {
    return this.#exec.all(this.#db.selectFrom('orders').selectAll().where('parent_cloid', '=', parentCloid).orderBy('seq')).map(orderFromRow);
  }

  /** Newest first. */
  recent(limit = 100): OrderRecord[] {
    return this.#exec.all(this.#db.selectFrom('orders').selectAll().orderBy('seq', 'desc').limit(limit)).map(orderFromRow);
  }

  /** The last counter value allocated (0 before the first intent). */
  lastCounter(): number {
    const row = this.#exec.first(this.#db.selectFrom('runtime_state').select('value').where('key', '=', CLOID_COUNTER_KEY));
    if (row === undefined) throw new StoreError('corrupt_row', 'runtime_state has no cloid counter');
    const n = Number(row.value);
    if (!Number.isSafeInteger(n) || n < 0) throw new StoreError('corrupt_row', `cloid counter is ${row.value}`);
    return n;
  }
}

function validateIntent(i: NewIntent): void {
  const bad = (why: string): never => {
    throw new StoreError('invalid_input', `intent refused: ${why}`, i);
  };
  if (i.coin.length === 0) bad('empty coin');
  if (!Number.isSafeInteger(i.assetId) || i.assetId < 0) bad('assetId must be a non-negative integer');
  if (!i.sz.isFinite() || i.sz.lte(0)) bad('size must be positive');
  if (!i.px.isFinite() || i.px.lte(0)) bad('price must be positive');
  if (i.trigger && (!i.trigger.triggerPx.isFinite() || i.trigger.triggerPx.lte(0))) bad('trigger price must be positive');
  if (!Number.isSafeInteger(i.createdAt)) bad('createdAt must be integer ms');
  if (i.expiresAfter !== undefined && !Number.isSafeInteger(i.expiresAfter)) bad('expiresAfter must be integer ms');
  if (i.parentCloid !== undefined && !CLOID_RE.test(i.parentCloid)) bad('parentCloid is not a cloid');
  if (!(ORDER_KINDS as readonly string[]).includes(i.kind)) bad(`unknown kind ${i.kind}`);
}

export function orderFromRow(row: OrdersTable): OrderRecord {
  const trigger =
    row.trigger_px === null
      ? undefined
      : {
          triggerPx: decFromDb(row.trigger_px, 'orders.trigger_px'),
          tpsl: oneOf(row.tpsl ?? '', ['tp', 'sl'] as const, 'orders.tpsl'),
          isMarket: boolFromDb(row.is_market ?? -1, 'orders.is_market'),
        };
  return {
    cloid: row.cloid,
    seq: row.seq,
    coin: row.coin,
    assetId: row.asset_id,
    side: oneOf(row.side, ['buy', 'sell'] as const, 'orders.side'),
    sz: decFromDb(row.sz, 'orders.sz'),
    px: decFromDb(row.px, 'orders.px'),
    reduceOnly: boolFromDb(row.reduce_only, 'orders.reduce_only'),
    tif: oneOf(row.tif, ['Gtc', 'Ioc', 'Alo'] as const, 'orders.tif'),
    trigger,
    kind: oneOf(row.kind, ORDER_KINDS, 'orders.kind'),
    parentCloid: undefIfNull(row.parent_cloid),
    createdAt: row.created_at,
    expiresAfter: undefIfNull(row.expires_after),
    state: oneOf(row.state, ORDER_STATES, 'orders.state'),
    oid: undefIfNull(row.oid),
    filledSz: row.filled_sz === '0' ? ZERO : decFromDb(row.filled_sz, 'orders.filled_sz'),
    avgPx: optDecFromDb(row.avg_px, 'orders.avg_px'),
    lastError: undefIfNull(row.last_error),
    updatedAt: row.updated_at,
    submittedAt: undefIfNull(row.submitted_at),
    resolvedAt: undefIfNull(row.resolved_at),
  };
}
