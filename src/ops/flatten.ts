/**
 * Emergency flatten: cancel every open order (ours, the operator's manual ones, triggers) and close
 * every position with reduce-only IOC orders capped at mid ± slippage, looping until the venue
 * itself reports no position and no open order, or the deadline passes. Used by the kill switch,
 * the Emergency mode, the independent watchdog and `keel flatten`.
 *
 * Invariants:
 *  - "Flat" is only ever concluded from the venue: one loop in which the open-orders read came back
 *    empty and the positions read that followed it came back empty. Nothing is assumed from an
 *    action's answer: a cancel or close whose outcome is `unknown` (timeout, lost response, 5xx) is
 *    settled by the next loop's reads, never by guessing.
 *  - A close order is never larger than the position the venue reported in the same loop, rounded
 *    down to the lot, is always reduce-only (the venue refuses to grow or flip a position with it)
 *    and IOC (nothing it leaves can rest), and its limit is within the slippage cap of the mid,
 *    rounded toward the mid to a valid tick.
 *  - Every close intent is committed by the caller (`commitIntent`: cloid allocated, intent
 *    durable) BEFORE it is sent; a failed commit means the order is not sent.
 *  - Every step tolerates transport errors, timeouts and garbage: a failed read skips what depends
 *    on it, backs off, and the loop reads again. No call outlives `requestTimeoutMs`, no new loop
 *    starts after the deadline, and the report says what the last successful reads left.
 *  - Orders without a cloid (placed by hand) are cancelled by oid when the venue can
 *    (`cancelByOid`, not yet in VenuePort); otherwise the venue's dead-man switch
 *    (`scheduleCancel`, which cancels every open order of the account) is armed once as a fallback.
 */
import { Decimal, dec, roundPrice, roundSize } from '../domain/decimal.ts';
import { closingSide, type CancelResult, type Cloid, type Coin, type Instrument, type OrderIntent, type PlaceResult, type Position, type VenueOrder } from '../domain/types.ts';
import { VenueError, type ActOptions, type VenuePort } from '../venue/port.ts';

/** What VenuePort lacks to cancel an order that has no cloid. The adapter should grow it. */
export interface OidCancelling {
  cancelByOid(coin: Coin, oid: number, opts: ActOptions): Promise<CancelResult>;
}

/** A venue flatten can drive: the port, plus cancel-by-oid when the caller can provide it. */
export type FlattenVenue = VenuePort & Partial<OidCancelling>;

/** A close intent before the caller has given it a cloid (the store's `NewIntent` accepts it). */
export type NewFlattenIntent = Omit<OrderIntent, 'cloid'> & { readonly expiresAfter: number };

/** The pino-compatible subset flatten logs through. */
export interface FlattenLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface FlattenOptions {
  /** Budget from the start, in ms of `now()`. */
  readonly deadlineMs: number;
  /** Slippage cap in percent of the mid (1 = 1 %). */
  readonly slippagePct: Decimal.Value;
  /** Known instruments (tick / lot rules); coins missing here are looked up on the venue. */
  readonly instruments?: readonly Instrument[];
  readonly now: () => number;
  /** Backoff between loops (injected so tests can drive a simulated clock). */
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: FlattenLogger;
  /**
   * Allocates the cloid and commits the intent durably, returning it with its cloid; called before
   * each close is sent. The runtime and the CLI pass the store's `orders.commitIntent`.
   */
  readonly commitIntent: (intent: NewFlattenIntent) => OrderIntent;
  /** Called after each close with the venue's answer (the caller records the order's lifecycle). */
  readonly onResult?: (intent: OrderIntent, result: PlaceResult) => void;
  /** `expiresAfter` of each action, ms ahead of `now()` (default 5000). */
  readonly expiresAfterMs?: number;
  /** Upper bound on any single venue call, real ms (default 5000); a call cut short is a failure / unknown. */
  readonly requestTimeoutMs?: number;
  /**
   * Pause after a loop that failed to read or act: `initialMs` when it still made progress
   * (something cancelled or filled), else doubling per loop without progress up to `maxMs`, or up to
   * `rateLimitMaxMs` while the venue answers 429. Default 100 ms / 1 s / 10 s.
   */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number; readonly rateLimitMaxMs?: number };
  /** Concurrent cancels / closes (default 8; 1 makes the request order deterministic). */
  readonly concurrency?: number;
  /** Cancel by oid for orders without a cloid, when the venue itself lacks `cancelByOid`. */
  readonly cancelByOid?: OidCancelling['cancelByOid'];
  /** Arm the dead-man switch for orders without a cloid when no cancel-by-oid exists (default true). */
  readonly deadManFallback?: boolean;
  /** Stops the loop early (reported as not flat). */
  readonly signal?: AbortSignal;
}

export interface CloseOrderRecord {
  readonly loop: number;
  readonly cloid: Cloid;
  readonly coin: Coin;
  readonly side: 'buy' | 'sell';
  readonly sz: Decimal;
  readonly px: Decimal;
  /** The venue-reported position this close was sized from. */
  readonly positionSzi: Decimal;
  readonly sentAt: number;
  /** `undefined` when the intent could not be committed (nothing was sent). */
  readonly result: PlaceResult | undefined;
}

export interface FlattenReport {
  readonly flat: boolean;
  readonly loops: number;
  /** Cancels the venue confirmed. */
  readonly cancelled: number;
  /** Cancel requests sent (including unknown and not-found answers). */
  readonly cancelRequests: number;
  readonly closeOrders: readonly CloseOrderRecord[];
  /** What the last successful reads showed (minus confirmed cancels); empty when flat. */
  readonly remaining: { readonly positions: readonly Position[]; readonly orders: readonly VenueOrder[]; readonly readAt: number | undefined };
  readonly elapsedMs: number;
  /** Reads or actions that failed and were retried. */
  readonly failures: number;
  /** When the dead-man switch was armed as the fallback for orders without a cloid. */
  readonly deadManArmedFor?: number;
  /** One line: why it is not flat. */
  readonly reason?: string;
}

const DEFAULTS = { expiresAfterMs: 5_000, requestTimeoutMs: 5_000, backoff: { initialMs: 100, maxMs: 1_000, rateLimitMaxMs: 10_000 }, concurrency: 8 } as const;
/** The venue refuses a dead-man time less than 5 s ahead; the extra second absorbs clock skew. */
const DEAD_MAN_LEAD_MS = 6_000;

class CallTimeout extends Error {
  constructor(what: string, ms: number) {
    super(`${what}: no answer within ${ms} ms`);
    this.name = 'CallTimeout';
  }
}

/** Resolves or rejects with `p`, or rejects after `ms` real ms (the call is also aborted when it takes a signal). */
function bounded<T>(what: string, ms: number, start: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort();
      reject(new CallTimeout(what, ms));
    }, ms);
    timer.unref?.();
  });
  const p = start(ac.signal);
  p.catch(() => {});
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The limit of a close: mid ∓ slippage for a sell / ± for a buy, rounded toward the mid so the cap
 * holds after rounding. Undefined when no valid price exists (mid missing or not positive).
 */
export function closePrice(side: 'buy' | 'sell', mid: Decimal | undefined, slippagePct: Decimal.Value, szDecimals: number): Decimal | undefined {
  if (mid === undefined || mid.lte(0)) return undefined;
  const s = dec(slippagePct).div(100);
  const raw = side === 'buy' ? mid.mul(dec(1).plus(s)) : mid.mul(dec(1).minus(s));
  const px = roundPrice(raw, szDecimals, side === 'buy' ? 'down' : 'up');
  return px.gt(0) ? px : undefined;
}

/** The close of one position, or why there is none. */
export function closeIntentFor(
  position: Position,
  instrument: Instrument,
  mid: Decimal | undefined,
  slippagePct: Decimal.Value,
  now: number,
  expiresAfter: number,
): { ok: true; intent: NewFlattenIntent } | { ok: false; error: string } {
  const side = closingSide(position.szi.gt(0) ? 'long' : 'short');
  const sz = roundSize(position.szi.abs(), instrument.szDecimals, 'down');
  if (sz.lte(0)) return { ok: false, error: `position ${position.szi.toFixed()} is below the lot (${instrument.szDecimals} decimals)` };
  const px = closePrice(side, mid, slippagePct, instrument.szDecimals);
  if (px === undefined) return { ok: false, error: `no usable mid for ${position.coin}` };
  return {
    ok: true,
    intent: { coin: position.coin, assetId: instrument.assetId, side, sz, px, reduceOnly: true, tif: 'Ioc', kind: 'flatten', createdAt: now, expiresAfter },
  };
}

/**
 * Flattens the account. Never throws for venue trouble: the report says whether the venue ended
 * flat and, if not, what is left and why.
 *
 * @example
 * const r = await flatten(venue, { deadlineMs: 30_000, slippagePct: 1, now: Date.now, sleep, log,
 *   commitIntent: (i) => store.orders.commitIntent(i) });
 * if (!r.flat) alert(r.reason);
 */
export async function flatten(venue: FlattenVenue, opts: FlattenOptions): Promise<FlattenReport> {
  const expiresAfterMs = opts.expiresAfterMs ?? DEFAULTS.expiresAfterMs;
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  const backoff = opts.backoff ?? DEFAULTS.backoff;
  const concurrency = opts.concurrency ?? DEFAULTS.concurrency;
  const deadManFallback = opts.deadManFallback ?? true;
  const cancelByOid = opts.cancelByOid ?? venue.cancelByOid?.bind(venue);
  const log = opts.log;
  const start = opts.now();
  const deadline = start + opts.deadlineMs;
  const instruments = new Map<Coin, Instrument>((opts.instruments ?? []).map((i) => [i.coin, i]));

  let loops = 0;
  let cancelled = 0;
  let cancelRequests = 0;
  let failures = 0;
  let stalled = 0;
  // Per loop: whether anything definite happened, and whether the venue said to slow down.
  let progress = false;
  let rateLimited = false;
  let deadManArmedFor: number | undefined;
  const closeOrders: CloseOrderRecord[] = [];
  let lastOrders: VenueOrder[] = [];
  let lastPositions: Position[] = [];
  let readAt: number | undefined;
  let flat = false;
  let stopReason: string | undefined;

  const timeLeft = () => deadline - opts.now();
  const callMs = () => Math.max(1, Math.min(requestTimeoutMs, timeLeft()));
  const act = (signal: AbortSignal): ActOptions => ({ expiresAfter: opts.now() + expiresAfterMs, signal });

  type Read<T> = { ok: true; value: T } | { ok: false; error: unknown };
  async function attempt<T>(what: string, call: () => Promise<T>): Promise<Read<T>> {
    try {
      return { ok: true, value: await bounded(what, callMs(), () => call()) };
    } catch (e) {
      return { ok: false, error: e };
    }
  }
  function readFailed(what: string, e: unknown): void {
    failures++;
    if (e instanceof VenueError && e.kind === 'rate_limited') rateLimited = true;
    log.warn({ what, err: errText(e), loop: loops }, 'flatten: read failed, will retry');
  }
  async function read<T>(what: string, call: () => Promise<T>): Promise<Read<T>> {
    const r = await attempt(what, call);
    if (!r.ok) readFailed(what, r.error);
    return r;
  }

  async function instrumentOf(coin: Coin): Promise<Instrument | undefined> {
    const known = instruments.get(coin);
    if (known) return known;
    const r = await read('instruments', () => venue.instruments());
    if (r.ok) for (const i of r.value) instruments.set(i.coin, i);
    return instruments.get(coin);
  }

  /** Cancels what was read; returns whether every cancel got a definite answer. */
  async function cancelAll(orders: readonly VenueOrder[]): Promise<boolean> {
    let definite = true;
    const gone = new Set<number>();
    const withoutCloid: VenueOrder[] = [];
    await pool(orders, concurrency, async (o) => {
      if (timeLeft() <= 0) {
        definite = false;
        return;
      }
      let r: CancelResult;
      if (o.cloid !== undefined) {
        const cloid = o.cloid;
        cancelRequests++;
        r = await bounded('cancel', callMs(), (signal) => venue.cancel(o.coin, cloid, act(signal))).catch((e: unknown) => ({ kind: 'unknown' as const, cause: errText(e) }));
      } else if (cancelByOid) {
        const byOid = cancelByOid;
        cancelRequests++;
        r = await bounded('cancelByOid', callMs(), (signal) => byOid(o.coin, o.oid, act(signal))).catch((e: unknown) => ({ kind: 'unknown' as const, cause: errText(e) }));
      } else {
        withoutCloid.push(o);
        definite = false;
        return;
      }
      if (r.kind === 'cancelled') {
        cancelled++;
        progress = true;
        gone.add(o.oid);
      } else if (r.kind === 'not_found') {
        // Filled or cancelled meanwhile: the next read confirms.
        progress = true;
        gone.add(o.oid);
      } else {
        failures++;
        definite = false;
        log.warn({ coin: o.coin, oid: o.oid, cloid: o.cloid, cause: r.cause }, 'flatten: cancel outcome unknown, will re-read');
      }
    });
    lastOrders = lastOrders.filter((o) => !gone.has(o.oid));
    if (withoutCloid.length > 0) await armDeadMan(withoutCloid);
    return definite;
  }

  async function armDeadMan(orders: readonly VenueOrder[]): Promise<void> {
    if (deadManArmedFor !== undefined && opts.now() < deadManArmedFor + expiresAfterMs) return;
    if (!deadManFallback) {
      log.error({ oids: orders.map((o) => o.oid) }, 'flatten: orders without a cloid cannot be cancelled through this venue');
      return;
    }
    const time = opts.now() + DEAD_MAN_LEAD_MS;
    const r = await bounded('scheduleCancel', callMs(), (signal) => venue.scheduleCancel(time, act(signal))).catch((e: unknown) => ({ ok: false as const, error: errText(e) }));
    if (r.ok) {
      deadManArmedFor = time;
      log.warn({ oids: orders.map((o) => o.oid), time }, 'flatten: orders without a cloid; dead-man switch armed to cancel them');
    } else {
      failures++;
      log.warn({ error: r.error }, 'flatten: arming the dead-man switch failed, will retry');
    }
  }

  /** Sends one close per position; returns whether each was definitely filled. */
  async function closeAll(positions: readonly Position[], mids: ReadonlyMap<Coin, Decimal> | undefined): Promise<boolean> {
    let definite = true;
    await pool(positions, concurrency, async (p) => {
      if (timeLeft() <= 0) {
        definite = false;
        return;
      }
      const inst = await instrumentOf(p.coin);
      if (!inst) {
        definite = false;
        log.error({ coin: p.coin }, 'flatten: no instrument for the position, cannot price a close');
        return;
      }
      const now = opts.now();
      const c = closeIntentFor(p, inst, mids?.get(p.coin), opts.slippagePct, now, now + expiresAfterMs);
      if (!c.ok) {
        definite = false;
        log.error({ coin: p.coin, error: c.error }, 'flatten: cannot close this loop');
        return;
      }
      let intent: OrderIntent;
      try {
        intent = opts.commitIntent(c.intent);
      } catch (e) {
        definite = false;
        failures++;
        log.error({ coin: p.coin, err: errText(e) }, 'flatten: intent commit failed; close not sent');
        closeOrders.push({ loop: loops, cloid: '', coin: p.coin, side: c.intent.side, sz: c.intent.sz, px: c.intent.px, positionSzi: p.szi, sentAt: now, result: undefined });
        return;
      }
      const result = await bounded('place', callMs(), (signal) => venue.place(intent, { expiresAfter: c.intent.expiresAfter, signal })).catch(
        (e: unknown): PlaceResult => ({ kind: 'unknown', cause: errText(e) }),
      );
      closeOrders.push({ loop: loops, cloid: intent.cloid, coin: p.coin, side: intent.side, sz: intent.sz, px: intent.px, positionSzi: p.szi, sentAt: now, result });
      try {
        opts.onResult?.(intent, result);
      } catch (e) {
        log.error({ cloid: intent.cloid, err: errText(e) }, 'flatten: onResult threw');
      }
      if (result.kind === 'filled' && result.totalSz.gt(0)) progress = true;
      if (result.kind === 'filled' && result.totalSz.gte(intent.sz)) return;
      definite = false;
      if (result.kind === 'unknown') failures++;
      log.warn({ cloid: intent.cloid, coin: p.coin, result: result.kind, detail: 'error' in result ? result.error : 'cause' in result ? result.cause : undefined }, 'flatten: close not (fully) filled, will re-read');
    });
    return definite;
  }

  log.warn({ deadlineMs: opts.deadlineMs, slippagePct: String(opts.slippagePct) }, 'flatten: started');
  for (;;) {
    if (opts.signal?.aborted) {
      stopReason = 'stopped by the caller';
      break;
    }
    if (timeLeft() <= 0) {
      stopReason = 'deadline passed';
      break;
    }
    loops++;
    let clean = true;
    progress = false;
    rateLimited = false;

    const orders = await read('openOrders', () => venue.openOrders());
    if (orders.ok) {
      lastOrders = orders.value;
      if (orders.value.length > 0) clean = (await cancelAll(orders.value)) && clean;
    } else clean = false;

    if (timeLeft() <= 0) {
      stopReason = 'deadline passed';
      break;
    }
    // Mids are read alongside the positions (one round trip less); they matter only if a position is open.
    const readAcct = () => read('accountState', () => venue.accountState());
    const readMids = () => attempt('mids', () => venue.mids());
    // With concurrency 1 every request is sequential, so a seeded fault schedule replays exactly.
    const [acct, mids] = concurrency === 1 ? [await readAcct(), await readMids()] : await Promise.all([readAcct(), readMids()]);
    if (acct.ok) {
      lastPositions = acct.value.positions.filter((p) => !p.szi.isZero());
      readAt = opts.now();
      if (orders.ok && orders.value.length === 0 && lastPositions.length === 0) {
        flat = true;
        break;
      }
      if (lastPositions.length > 0) {
        if (!mids.ok) readFailed('mids', mids.error);
        clean = (await closeAll(lastPositions, mids.ok ? mids.value : undefined)) && clean;
      }
    } else clean = false;

    // A clean loop re-reads at once to confirm. Trouble that still made progress retries soon;
    // trouble without progress (or a 429) backs off, doubling, bounded by the deadline.
    if (!clean) {
      const escalate = rateLimited || !progress;
      const cap = rateLimited ? Math.max(backoff.maxMs, backoff.rateLimitMaxMs ?? DEFAULTS.backoff.rateLimitMaxMs) : backoff.maxMs;
      const wanted = escalate ? backoff.initialMs * 2 ** Math.min(stalled, 20) : backoff.initialMs;
      stalled = escalate ? stalled + 1 : 0;
      const wait = Math.min(wanted, cap, Math.max(0, timeLeft()));
      if (wait > 0) await opts.sleep(wait);
    } else stalled = 0;
  }

  const elapsedMs = opts.now() - start;
  const report: FlattenReport = {
    flat,
    loops,
    cancelled,
    cancelRequests,
    closeOrders,
    remaining: flat ? { positions: [], orders: [], readAt } : { positions: lastPositions, orders: lastOrders, readAt },
    elapsedMs,
    failures,
    ...(deadManArmedFor !== undefined ? { deadManArmedFor } : {}),
    ...(flat ? {} : { reason: notFlatReason(stopReason ?? 'stopped', lastPositions, lastOrders, readAt) }),
  };
  if (flat) log.warn({ loops, cancelled, closes: closeOrders.length, elapsedMs, failures }, 'flatten: venue reports flat');
  else log.error({ loops, reason: report.reason, elapsedMs, failures }, 'flatten: NOT flat');
  return report;
}

function notFlatReason(why: string, positions: readonly Position[], orders: readonly VenueOrder[], readAt: number | undefined): string {
  if (readAt === undefined) return `${why} before the venue could be read`;
  const ps = positions.map((p) => `${p.coin} ${p.szi.toFixed()}`).join(', ');
  return `${why}: ${positions.length} position(s)${ps ? ` (${ps})` : ''} and ${orders.length} open order(s) remain`;
}

/** The report as plain JSON (decimals as wire strings), for printing, the audit log and `/status`. */
export function flattenReportToJson(r: FlattenReport): Record<string, unknown> {
  const result = (x: PlaceResult | undefined) => {
    if (x === undefined) return { kind: 'not_sent' };
    if (x.kind === 'filled') return { kind: x.kind, oid: x.oid, totalSz: x.totalSz.toFixed(), avgPx: x.avgPx.toFixed() };
    return x;
  };
  return {
    flat: r.flat,
    loops: r.loops,
    cancelled: r.cancelled,
    cancelRequests: r.cancelRequests,
    closeOrders: r.closeOrders.map((c) => ({ loop: c.loop, cloid: c.cloid, coin: c.coin, side: c.side, sz: c.sz.toFixed(), px: c.px.toFixed(), positionSzi: c.positionSzi.toFixed(), result: result(c.result) })),
    remaining: {
      positions: r.remaining.positions.map((p) => ({ coin: p.coin, szi: p.szi.toFixed() })),
      orders: r.remaining.orders.map((o) => ({ oid: o.oid, ...(o.cloid ? { cloid: o.cloid } : {}), coin: o.coin, side: o.side, sz: o.sz.toFixed(), isTrigger: o.isTrigger })),
      readAt: r.remaining.readAt ?? null,
    },
    elapsedMs: r.elapsedMs,
    failures: r.failures,
    ...(r.deadManArmedFor !== undefined ? { deadManArmedFor: r.deadManArmedFor } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
  };
}
