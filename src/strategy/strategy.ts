/**
 * The strategy contract and the registry that builds strategies by name, so the runtime depends
 * only on `Strategy` and another strategy plugs in by adding a `StrategyFactory`.
 *
 * Invariants every strategy keeps (the black box replays them and expects the same decisions):
 *   - pure and deterministic: no clock, no randomness, no I/O; the same candles in the same order
 *     give the same signals; time comes only from the candles;
 *   - acts on closed candles only and ignores duplicates and out-of-order bars (same or older `t`);
 *   - one instance per market; every price in a `Signal` is a Decimal valid for the instrument.
 * `createStrategy` never throws on bad input: an unknown name or an invalid config is a value.
 */
import type { z } from 'zod';
import type { Candle, Instrument, Signal } from '../domain/types.ts';
import { enhancedMacdFactory } from './enhanced-macd.ts';

export interface Strategy {
  readonly name: string;
  /** Candle intervals this strategy must be fed (e.g. `['1m']`); anything else is ignored. */
  readonly intervals: readonly string[];
  /** Closed base bars to replay before its signals mean anything (history to fetch at boot). */
  readonly warmupBars: number;
  /** Feeds one candle; returns a signal when this closed candle triggers one. */
  onCandle(candle: Candle): Signal | undefined;
  /** Indicator state for status pages and the black box (plain JSON). */
  snapshot?(): unknown;
}

export interface StrategyFactory<Config = unknown> {
  readonly name: string;
  readonly description: string;
  /** Parses a raw config (defaults applied); the registry reports its issues. */
  readonly configSchema: z.ZodType<Config>;
  create(config: Config, instrument: Instrument): Strategy;
}

export type StrategyCreateError =
  | { readonly kind: 'unknown_strategy'; readonly name: string; readonly known: readonly string[]; readonly message: string }
  | { readonly kind: 'invalid_config'; readonly name: string; readonly issues: readonly string[]; readonly message: string };

export type StrategyCreateResult = { readonly ok: true; readonly strategy: Strategy } | { readonly ok: false; readonly error: StrategyCreateError };

/** An immutable set of strategy factories by name; `with` returns a new registry. */
export class StrategyRegistry {
  readonly #factories: ReadonlyMap<string, StrategyFactory<unknown>>;

  constructor(factories: readonly StrategyFactory<any>[] = []) {
    const m = new Map<string, StrategyFactory<unknown>>();
    for (const f of factories) m.set(f.name, f as StrategyFactory<unknown>);
    this.#factories = m;
  }

  /** A registry with `factory` added (replacing one of the same name). */
  with<C>(factory: StrategyFactory<C>): StrategyRegistry {
    return new StrategyRegistry([...this.#factories.values(), factory as StrategyFactory<unknown>]);
  }

  names(): string[] {
    return [...this.#factories.keys()].sort();
  }

  get(name: string): StrategyFactory<unknown> | undefined {
    return this.#factories.get(name);
  }

  /** Validates `config` with the factory's schema and builds the strategy for `instrument`. */
  create(name: string, config: unknown, instrument: Instrument): StrategyCreateResult {
    const factory = this.#factories.get(name);
    if (factory === undefined) {
      const known = this.names();
      return { ok: false, error: { kind: 'unknown_strategy', name, known, message: `unknown strategy ${JSON.stringify(name)}; known: ${known.join(', ')}` } };
    }
    const parsed = factory.configSchema.safeParse(config ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(config)'}: ${i.message}`);
      return { ok: false, error: { kind: 'invalid_config', name, issues, message: `invalid ${name} config: ${issues.join('; ')}` } };
    }
    return { ok: true, strategy: factory.create(parsed.data, instrument) };
  }
}

/** The strategies keel ships. */
export const BUILTIN_STRATEGIES: StrategyRegistry = new StrategyRegistry([enhancedMacdFactory]);

export const DEFAULT_STRATEGY = 'enhanced-macd';

/**
 * Builds a strategy by name from a raw config (parsed here, defaults applied).
 * @example createStrategy('enhanced-macd', { minAdx: 25 }, instrument)
 */
export function createStrategy(name: string, config: unknown, instrument: Instrument, registry: StrategyRegistry = BUILTIN_STRATEGIES): StrategyCreateResult {
  return registry.create(name, config, instrument);
}
