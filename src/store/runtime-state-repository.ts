/**
 * runtime_state: small key → JSON values that must survive a restart (mode, gate, pause, last
 * fill time seen, …). Typed keys are validated with zod on the way in and out; other keys are
 * plain JSON.
 *
 * Invariants: the cloid prefix and counter live here too, but only the order repository writes
 * them (`set` refuses those keys).
 */
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { MODES } from '../domain/types.ts';
import { jsonFromDb, jsonToDb } from './codec.ts';
import { StoreError } from './errors.ts';
import { CLOID_COUNTER_KEY, RUNTIME_PREFIX_KEY } from './order-repository.ts';
import type { Database, RuntimeStateKey, RuntimeStateValues } from './schema.ts';
import type { SyncExecutor } from './sync-executor.ts';

const WIRE_DECIMAL = z.string().regex(/^-?(?:0|[1-9]\d*)(?:\.\d+)?$/);

const SCHEMAS: { readonly [K in RuntimeStateKey]: z.ZodType<RuntimeStateValues[K]> } = {
  mode: z.enum(MODES),
  gate: z.enum(['active', 'reducing', 'halted']),
  paused: z.boolean(),
  last_fill_time: z.number().int().nonnegative(),
  day_start: z.object({ day: z.number().int(), equity: WIRE_DECIMAL }),
  peak_equity: WIRE_DECIMAL,
  last_reconciliation: z.object({ time: z.number().int(), clean: z.boolean(), summary: z.string() }),
};

const RESERVED: ReadonlySet<string> = new Set([CLOID_COUNTER_KEY, RUNTIME_PREFIX_KEY]);

export class RuntimeStateRepository {
  readonly #db: Kysely<Database>;
  readonly #exec: SyncExecutor;
  readonly #clock: () => number;

  constructor(deps: { readonly db: Kysely<Database>; readonly exec: SyncExecutor; readonly clock: () => number }) {
    this.#db = deps.db;
    this.#exec = deps.exec;
    this.#clock = deps.clock;
  }

  /** A typed value, or undefined when never set. A stored value that fails its schema is a StoreError. */
  get<K extends RuntimeStateKey>(key: K): RuntimeStateValues[K] | undefined {
    const raw = this.getJson(key);
    if (raw === undefined) return undefined;
    const parsed = SCHEMAS[key].safeParse(raw);
    if (!parsed.success) throw new StoreError('corrupt_row', `runtime_state.${key} is invalid: ${parsed.error.message}`, raw);
    return parsed.data;
  }

  set<K extends RuntimeStateKey>(key: K, value: RuntimeStateValues[K], time?: number): void {
    const parsed = SCHEMAS[key].safeParse(value);
    if (!parsed.success) throw new StoreError('invalid_input', `runtime_state.${key}: ${parsed.error.message}`, value);
    this.setJson(key, parsed.data, time);
  }

  /** Any key, as stored JSON. */
  getJson(key: string): unknown {
    const row = this.#exec.first(this.#db.selectFrom('runtime_state').select('value').where('key', '=', key));
    return row === undefined ? undefined : jsonFromDb(row.value, `runtime_state.${key}`);
  }

  /** Any key other than the reserved cloid keys; a typed key is validated as `set` would. */
  setJson(key: string, value: unknown, time?: number): void {
    if (RESERVED.has(key)) throw new StoreError('invalid_input', `runtime_state.${key} is managed by the order repository`);
    if (Object.hasOwn(SCHEMAS, key)) {
      const parsed = SCHEMAS[key as RuntimeStateKey].safeParse(value);
      if (!parsed.success) throw new StoreError('invalid_input', `runtime_state.${key}: ${parsed.error.message}`, value);
    }
    const row = { key, value: jsonToDb(value), updated_at: time ?? this.#clock() };
    this.#exec.run(this.#db.insertInto('runtime_state').values(row).onConflict((oc) => oc.column('key').doUpdateSet({ value: row.value, updated_at: row.updated_at })));
  }

  delete(key: string): boolean {
    if (RESERVED.has(key)) throw new StoreError('invalid_input', `runtime_state.${key} is managed by the order repository`);
    return this.#exec.run(this.#db.deleteFrom('runtime_state').where('key', '=', key)).changes === 1;
  }
}
