/**
 * Zod schemas for every Hyperliquid response and WebSocket message keel reads, and their
 * conversion into the domain types of src/domain/types.ts.
 *
 * Invariants: nothing from the wire reaches the domain unparsed; a decimal field goes through
 * `tryParseDecimal` (no NaN, no exponent, no empty string); unknown extra keys are tolerated (the
 * venue adds fields over time) but a missing or mistyped field we rely on is a parse failure, which
 * callers turn into `VenueError('invalid_response')` (queries) or `unknown` (actions) or a dropped,
 * counted message (subscriptions). Sizes are positive; direction lives in `side`.
 */
import { z } from 'zod';
import { tryParseDecimal, type Decimal } from '../domain/decimal.ts';
import type { AccountState, Candle, Cloid, Fill, Instrument, Position, VenueOrder, VenueOrderStatus } from '../domain/types.ts';

// ── primitives ──────────────────────────────────────────────────────────────────────────────

const PREVIEW_CHARS = 40;

/** A bounded echo of a bad wire value for an error message: a hostile payload must not flood the logs. */
export function preview(v: unknown): string {
  const s = typeof v === 'string' ? JSON.stringify(v) : String(v);
  return s.length > PREVIEW_CHARS ? `${s.slice(0, PREVIEW_CHARS)}… (${s.length} chars)` : s;
}

/** A wire decimal (string, or a finite number some endpoints send) parsed into a Decimal. */
export const decimalSchema = z.union([z.string(), z.number()]).transform((v, ctx): Decimal => {
  const d = tryParseDecimal(v);
  if (d === undefined) {
    ctx.addIssue({ code: 'custom', message: `not a decimal: ${preview(v)}` });
    return z.NEVER;
  }
  return d;
});
const nonNegDecimal = decimalSchema.refine((d) => d.gte(0), 'must be ≥ 0');
const posDecimal = decimalSchema.refine((d) => d.gt(0), 'must be > 0');
const ms = z.number().int().nonnegative();
const oid = z.number().int().nonnegative();
/** Cloids are compared lowercase everywhere in keel. */
export const cloidSchema = z
  .string()
  .regex(/^0x[0-9a-fA-F]{32}$/)
  .transform((s): Cloid => s.toLowerCase());
const sideSchema = z.enum(['B', 'A']).transform((s) => (s === 'B' ? ('buy' as const) : ('sell' as const)));
/** A finite double for indicator inputs (OHLCV): a decimal too large for a double is refused, not made Infinity. */
const finiteNumber = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const d = tryParseDecimal(v);
  const n = d?.toNumber();
  if (n === undefined || !Number.isFinite(n)) {
    ctx.addIssue({ code: 'custom', message: `not a finite number: ${preview(v)}` });
    return z.NEVER;
  }
  return n;
});

export const CANDLE_INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;
export type CandleInterval = (typeof CANDLE_INTERVALS)[number];
export const intervalSchema = z.enum(CANDLE_INTERVALS);

// ── info responses ──────────────────────────────────────────────────────────────────────────

export const MetaSchema = z.looseObject({
  universe: z.array(
    z.looseObject({
      name: z.string().min(1),
      szDecimals: z.number().int().min(0).max(8),
      maxLeverage: z.number().int().positive(),
      isDelisted: z.boolean().nullish(),
    }),
  ),
});

const MAJORS = new Set(['BTC', 'ETH']);

export function toInstruments(meta: z.infer<typeof MetaSchema>): Instrument[] {
  const out: Instrument[] = [];
  meta.universe.forEach((u, assetId) => {
    // The asset id is the position in the universe, so delisted entries are skipped after indexing.
    if (u.isDelisted) return;
    out.push({ coin: u.name, assetId, szDecimals: u.szDecimals, maxLeverage: u.maxLeverage, isMajor: MAJORS.has(u.name) });
  });
  return out;
}

export const AllMidsSchema = z.record(z.string(), z.string());

/** allMids → perp mids only (spot keys `@n` and `A/B` are skipped); any bad perp value fails the parse. */
export function toMids(raw: z.infer<typeof AllMidsSchema>): Map<string, Decimal> | { error: string } {
  const out = new Map<string, Decimal>();
  for (const [coin, v] of Object.entries(raw)) {
    if (coin.startsWith('@') || coin.includes('/')) continue;
    const d = tryParseDecimal(v);
    if (d === undefined || d.lte(0)) return { error: `bad mid for ${coin.length > PREVIEW_CHARS ? preview(coin) : coin}: ${preview(v)}` };
    out.set(coin, d);
  }
  return out;
}

export const CandleWireSchema = z.looseObject({
  t: ms,
  T: ms,
  s: z.string().min(1),
  i: z.string(),
  o: finiteNumber,
  c: finiteNumber,
  h: finiteNumber,
  l: finiteNumber,
  v: finiteNumber,
}).refine((c) => c.T >= c.t && c.h >= c.l && c.v >= 0, 'inconsistent candle');
export const CandleSnapshotSchema = z.array(CandleWireSchema);

export function toCandle(c: z.infer<typeof CandleWireSchema>, closed: boolean): Candle {
  return { coin: c.s, interval: c.i, t: c.t, T: c.T, o: c.o, h: c.h, l: c.l, c: c.c, v: c.v, closed };
}

const MarginSummarySchema = z.looseObject({
  accountValue: decimalSchema,
  totalNtlPos: decimalSchema,
  totalMarginUsed: decimalSchema,
});

export const ClearinghouseStateSchema = z.looseObject({
  assetPositions: z.array(
    z.looseObject({
      position: z.looseObject({
        coin: z.string().min(1),
        szi: decimalSchema,
        leverage: z.looseObject({ type: z.string(), value: z.number().positive() }),
        entryPx: nonNegDecimal,
        unrealizedPnl: decimalSchema,
        liquidationPx: decimalSchema.nullish(),
        marginUsed: nonNegDecimal,
      }),
    }),
  ),
  marginSummary: MarginSummarySchema,
  withdrawable: decimalSchema,
  time: ms,
});

export function toAccountState(s: z.infer<typeof ClearinghouseStateSchema>): AccountState {
  const positions: Position[] = [];
  for (const { position: p } of s.assetPositions) {
    if (p.szi.isZero()) continue;
    positions.push({
      coin: p.coin,
      szi: p.szi,
      entryPx: p.entryPx,
      unrealizedPnl: p.unrealizedPnl,
      leverage: p.leverage.value,
      ...(p.liquidationPx != null ? { liquidationPx: p.liquidationPx } : {}),
      marginUsed: p.marginUsed,
    });
  }
  return {
    accountValue: s.marginSummary.accountValue,
    totalMarginUsed: s.marginSummary.totalMarginUsed,
    totalNtlPos: s.marginSummary.totalNtlPos,
    withdrawable: s.withdrawable,
    positions,
    time: s.time,
  };
}

export const FrontendOrderSchema = z.looseObject({
  coin: z.string().min(1),
  side: sideSchema,
  limitPx: nonNegDecimal,
  sz: nonNegDecimal,
  oid,
  timestamp: ms,
  origSz: nonNegDecimal,
  isTrigger: z.boolean().optional(),
  triggerPx: nonNegDecimal.optional(),
  reduceOnly: z.boolean().optional(),
  cloid: cloidSchema.nullish(),
});
export const FrontendOpenOrdersSchema = z.array(FrontendOrderSchema);

export function toVenueOrder(o: z.infer<typeof FrontendOrderSchema>): VenueOrder {
  const isTrigger = o.isTrigger === true;
  return {
    oid: o.oid,
    ...(o.cloid ? { cloid: o.cloid } : {}),
    coin: o.coin,
    side: o.side,
    px: o.limitPx,
    sz: o.sz,
    origSz: o.origSz,
    reduceOnly: o.reduceOnly === true,
    isTrigger,
    ...(isTrigger && o.triggerPx !== undefined ? { triggerPx: o.triggerPx } : {}),
    timestamp: o.timestamp,
  };
}

export const OrderStatusSchema = z.discriminatedUnion('status', [
  z.looseObject({ status: z.literal('unknownOid') }),
  z.looseObject({
    status: z.literal('order'),
    order: z.looseObject({ order: FrontendOrderSchema, status: z.string().min(1), statusTimestamp: ms }),
  }),
]);

const KNOWN_STATUSES = new Set(['open', 'filled', 'canceled', 'triggered', 'rejected']);

export function toVenueOrderStatus(s: z.infer<typeof OrderStatusSchema>): VenueOrderStatus {
  if (s.status === 'unknownOid') return { found: false };
  const raw = s.order.status;
  const status = (KNOWN_STATUSES.has(raw) ? raw : 'other') as 'open' | 'filled' | 'canceled' | 'triggered' | 'rejected' | 'other';
  return { found: true, oid: s.order.order.oid, status, rawStatus: raw, sz: s.order.order.sz, origSz: s.order.order.origSz, statusTimestamp: s.order.statusTimestamp };
}

export const FillWireSchema = z.looseObject({
  coin: z.string().min(1),
  px: posDecimal,
  sz: posDecimal,
  side: sideSchema,
  time: ms,
  closedPnl: decimalSchema,
  oid,
  crossed: z.boolean(),
  fee: decimalSchema,
  tid: z.number().int().nonnegative(),
  cloid: cloidSchema.nullish(),
});
export const FillsSchema = z.array(FillWireSchema);

export function toFill(f: z.infer<typeof FillWireSchema>): Fill {
  return {
    tid: f.tid,
    oid: f.oid,
    ...(f.cloid ? { cloid: f.cloid } : {}),
    coin: f.coin,
    side: f.side,
    px: f.px,
    sz: f.sz,
    fee: f.fee,
    closedPnl: f.closedPnl,
    time: f.time,
    crossed: f.crossed,
  };
}

// ── exchange responses ──────────────────────────────────────────────────────────────────────

/** One per-order status of an order response, normalized to a tagged value. */
export const OrderStatusWireSchema = z.union([
  z.looseObject({ resting: z.looseObject({ oid, cloid: cloidSchema.nullish() }) }).transform((s) => ({ kind: 'resting' as const, oid: s.resting.oid })),
  z
    .looseObject({ filled: z.looseObject({ oid, totalSz: nonNegDecimal, avgPx: nonNegDecimal, cloid: cloidSchema.nullish() }) })
    .transform((s) => ({ kind: 'filled' as const, oid: s.filled.oid, totalSz: s.filled.totalSz, avgPx: s.filled.avgPx })),
  z.looseObject({ error: z.string() }).transform((s) => ({ kind: 'error' as const, error: s.error })),
  z.enum(['waitingForFill', 'waitingForTrigger']).transform(() => ({ kind: 'waiting' as const })),
]);

export const OrderResponseSchema = z.looseObject({
  status: z.literal('ok'),
  response: z.looseObject({
    type: z.literal('order'),
    data: z.looseObject({ statuses: z.array(OrderStatusWireSchema).min(1) }),
  }),
});

export const CancelResponseSchema = z.looseObject({
  status: z.literal('ok'),
  response: z.looseObject({
    type: z.literal('cancel'),
    data: z.looseObject({ statuses: z.array(z.union([z.literal('success'), z.looseObject({ error: z.string() })])).min(1) }),
  }),
});

export const DefaultResponseSchema = z.looseObject({ status: z.literal('ok'), response: z.looseObject({ type: z.literal('default') }) });

/** Either shape of an error body the SDK puts in `ApiRequestError.response`. */
export const ErrorBodySchema = z.union([
  z.looseObject({ status: z.literal('err'), response: z.string() }),
  z.looseObject({
    status: z.literal('ok'),
    response: z.looseObject({ data: z.looseObject({ statuses: z.array(z.unknown()) }) }),
  }),
]);

/** The venue's own error string in an `ApiRequestError.response`, and whether it is per-order or top-level. */
export function venueErrorOf(body: unknown): { scope: 'order' | 'top'; error: string } | undefined {
  const p = ErrorBodySchema.safeParse(body);
  if (!p.success) return undefined;
  if (p.data.status === 'err') return { scope: 'top', error: p.data.response };
  for (const s of p.data.response.data.statuses) {
    if (typeof s === 'object' && s !== null && typeof (s as { error?: unknown }).error === 'string') return { scope: 'order', error: (s as { error: string }).error };
  }
  return undefined;
}

// ── WebSocket messages ──────────────────────────────────────────────────────────────────────

export const WsAllMidsSchema = z.looseObject({ mids: AllMidsSchema });

const BookLevelSchema = z.looseObject({ px: posDecimal, sz: nonNegDecimal, n: z.number().int().nonnegative() });
export const WsBookSchema = z.looseObject({
  coin: z.string().min(1),
  time: ms,
  levels: z.tuple([z.array(BookLevelSchema), z.array(BookLevelSchema)]),
});

export const WsTradesSchema = z.array(
  z.looseObject({ coin: z.string().min(1), side: sideSchema, px: posDecimal, sz: posDecimal, time: ms, tid: z.number().int().nonnegative() }),
);

export const WsUserFillsSchema = z.looseObject({ isSnapshot: z.boolean().nullish(), user: z.string(), fills: FillsSchema });

export const WsOrderUpdatesSchema = z.array(
  z.looseObject({
    order: z.looseObject({ coin: z.string().min(1), oid, sz: nonNegDecimal, origSz: nonNegDecimal, timestamp: ms, cloid: cloidSchema.nullish() }),
    status: z.string().min(1),
    statusTimestamp: ms,
  }),
);

const ISSUE_CHARS = 200;

/** Short human text for a zod failure (logged, never shown as garbage downstream); bounded whatever the input. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => {
      const text = `${i.path.map(String).join('.') || '(root)'}: ${i.message}`;
      return text.length > ISSUE_CHARS ? `${text.slice(0, ISSUE_CHARS)}…` : text;
    })
    .join('; ');
}
