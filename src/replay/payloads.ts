/**
 * Parses black-box payloads (canonical JSON: Decimals as plain strings, Maps as objects, undefined
 * omitted) back into the domain values the decision makers were given, for `keel replay`.
 *
 * Invariants:
 * - The edge of the replay: a payload is validated here or refused with a clear message (a value,
 *   never a throw); nothing half-parsed reaches a strategy or `evaluateSignal`.
 * - Decimals come back from their recorded strings (never through a double), so a recomputed
 *   decision sees exactly the numbers the runtime saw; candles stay doubles, as the runtime's did.
 * - A missing optional field (`markPx`) is absent in the payload because the recorder omits
 *   undefined; it comes back as undefined, not as a default.
 */
import { z } from 'zod';
import { tryParseDecimal, type Decimal } from '../domain/decimal.ts';
import { DENIAL_REASONS, type Candle, type Instrument, type Signal } from '../domain/types.ts';
import { RiskConfigSchema, type RiskConfig, type RiskContext } from '../domain/risk.ts';

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: string };

/** A recorded Decimal: the plain string the recorder wrote (a number is refused: it would have lost digits). */
const decimal = z.string().transform((s, ctx): Decimal => {
  const d = tryParseDecimal(s);
  if (d === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a decimal: ${JSON.stringify(s)}` });
    return z.NEVER;
  }
  return d;
});

const time = z.number().int().nonnegative();
const coin = z.string().min(1);
const direction = z.enum(['long', 'short']);
const side = z.enum(['buy', 'sell']);

export const CandleSchema = z.object({
  coin,
  interval: z.string().min(1),
  t: time,
  T: time,
  o: z.number(),
  h: z.number(),
  l: z.number(),
  c: z.number(),
  v: z.number(),
  closed: z.boolean(),
});

export const InstrumentSchema = z.object({
  coin,
  assetId: z.number().int().nonnegative(),
  szDecimals: z.number().int().min(0).max(6),
  maxLeverage: z.number().int().positive(),
  isMajor: z.boolean(),
});

export const SignalSchema = z.object({
  coin,
  direction,
  refPx: decimal,
  stopPx: decimal,
  takeProfitPx: decimal,
  time,
  strategy: z.string(),
  reason: z.string(),
});

const RiskContextSchema = z.object({
  gate: z.enum(['active', 'reducing', 'halted']),
  instrument: InstrumentSchema,
  markPx: decimal.optional(),
  equity: decimal,
  dayStartEquity: decimal,
  marginUsed: decimal,
  positions: z.array(z.object({ coin, szi: decimal, entryPx: decimal, notional: decimal })),
  workingEntries: z.array(z.object({ coin, side, count: z.number().int().nonnegative(), notional: decimal })),
  pnlToday: decimal,
  recentOrderTimes: z.array(time),
  now: time,
  sizeMultiplier: z.number().min(0).max(1),
});

/** What the runtime feeds a strategy at boot: `feed.history`. `instrument` is optional (older records lack it). */
export interface HistoryInput {
  readonly coin: string;
  readonly strategy: { readonly name: string; readonly params: Readonly<Record<string, unknown>> };
  readonly candles: readonly Candle[];
  readonly instrument?: Instrument;
}

const HistorySchema = z.object({
  coin,
  strategy: z.object({ name: z.string().min(1), params: z.record(z.string(), z.unknown()).default({}) }),
  candles: z.array(CandleSchema),
  instrument: InstrumentSchema.optional(),
});

/** `risk.context`: everything `evaluateSignal` was given. */
export interface RiskInput {
  readonly signal: Signal;
  readonly context: RiskContext;
  readonly config: RiskConfig;
}

const RiskInputSchema = z.object({ signal: SignalSchema, context: RiskContextSchema, config: RiskConfigSchema });

/** A recorded risk verdict, only as far as replay needs to pair it (the rest is compared as JSON). */
const VerdictHeadSchema = z.union([
  z.object({ approved: z.literal(true), coin }),
  z.object({ approved: z.literal(false), coin, reason: z.enum(DENIAL_REASONS) }),
]);

function issues(e: z.ZodError): string {
  return e.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(payload)'}: ${i.message}`)
    .join('; ');
}

function parseWith<T>(schema: z.ZodType<T>, payload: string): Parsed<T> {
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return { ok: false, error: 'payload is not JSON' };
  }
  const r = schema.safeParse(json);
  return r.success ? { ok: true, value: r.data } : { ok: false, error: issues(r.error) };
}

/** A `feed.candle` payload (the candle plus the feed path it came on, which replay drops). */
export function parseCandle(payload: string): Parsed<Candle> {
  return parseWith(CandleSchema, payload);
}

export function parseHistory(payload: string): Parsed<HistoryInput> {
  return parseWith(HistorySchema, payload) as Parsed<HistoryInput>;
}

export function parseSignal(payload: string): Parsed<Signal> {
  return parseWith(SignalSchema, payload);
}

export function parseRiskInput(payload: string): Parsed<RiskInput> {
  return parseWith(RiskInputSchema, payload) as Parsed<RiskInput>;
}

export function parseVerdictHead(payload: string): Parsed<{ readonly approved: boolean; readonly coin: string }> {
  return parseWith(VerdictHeadSchema, payload);
}

/** Just the instrument of a `risk.context`, for strategies whose history did not record one. */
export function instrumentOfRiskContext(payload: string): Instrument | undefined {
  const r = parseWith(z.object({ context: z.object({ instrument: InstrumentSchema }) }), payload);
  return r.ok ? r.value.context.instrument : undefined;
}
