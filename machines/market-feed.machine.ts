/**
 * The market feed: WebSocket first, REST polling as the fallback, staleness, a bad-tick filter,
 * and closed candles for the strategy.
 *
 *   connecting ──ws message──▶ streaming ◀──ws up ≥ recoverAfterMs and delivering── polling
 *       └──connectTimeout──▶ polling ◀──ws down, or no ws message for staleAfterMs── streaming
 *   polling.fresh ──no accepted message on either path for bothSilentMs──▶ polling.stale
 *   streaming.backfill: idle ⇄ running (REST poller) while a series is `behind`
 *
 * Invariants:
 *  - Each closed bar of a (coin, interval) is emitted exactly once, whichever path delivered it:
 *    bars are keyed by their open time `t`; a bar closes when a newer bar of the series arrives,
 *    or when its close time `T` plus a grace has passed by the feed's clock (the latest receive
 *    time seen); anything at or before the last closed `t` is ignored.
 *  - A mid or candle close more than `badTickPct` away from the last accepted value is held back
 *    until `badTickConfirmations` consecutive messages agree on the new level; held candles are
 *    replayed on confirmation, so a genuine jump loses no bar.
 *  - No bar is skipped: a WebSocket bar more than one interval past the newest known bar is held
 *    back and the series marked `behind`; REST (the poller, also invoked while streaming for
 *    that purpose) fills in, and is the authority for gaps the venue really has.
 *  - Pure: inputs arrive as events from the `marketStream` and `marketPoll` callback actors (the
 *    supervisor provides them; src/venue/feed-actors.ts has the real ones); time comes from
 *    XState's clock for delays and from the events' receive times (`at`) for everything else.
 *
 * Accepted events: FEED_INPUT (src/venue/feed-port.ts), re-exported as MARKET_FEED_EVENTS.
 * Emitted: MARKET_FEED_EMITTED.
 */
import { assign, enqueueActions, fromCallback, not, setup, type ActorRefFrom } from 'xstate';
import { z } from 'zod';
import { Decimal } from '../src/domain/decimal.ts';
import type { Candle, Coin } from '../src/domain/types.ts';
import { FEED_INPUT, intervalMs, seriesKey, type FeedInputEvent, type FeedSource, type MarketPollInput, type MarketStreamInput } from '../src/venue/feed-port.ts';

/** Events the machine accepts (sent by the feed actors). */
export const MARKET_FEED_EVENTS = FEED_INPUT;

/** Events the machine emits (`actor.on(name, …)`). */
export const MARKET_FEED_EMITTED = {
  candleClosed: 'feed.candleClosed',
  mids: 'feed.mids',
  sourceChanged: 'feed.sourceChanged',
  stale: 'feed.stale',
} as const;

/** Ids of the effect actors the supervisor provides. */
export const MARKET_FEED_ACTORS = {
  stream: 'marketStream',
  poll: 'marketPoll',
  /** The same REST actor, invoked while streaming to fill a gap the WebSocket left. */
  backfill: 'marketBackfill',
} as const;

export type FeedPath = 'none' | 'ws' | 'rest';

export type MarketFeedEmitted =
  | { readonly type: typeof MARKET_FEED_EMITTED.candleClosed; readonly candle: Candle; readonly source: FeedSource; readonly at: number }
  | { readonly type: typeof MARKET_FEED_EMITTED.mids; readonly mids: ReadonlyMap<Coin, Decimal>; readonly source: FeedSource; readonly at: number }
  | { readonly type: typeof MARKET_FEED_EMITTED.sourceChanged; readonly from: FeedPath; readonly to: FeedPath; readonly reason: string; readonly at: number }
  | { readonly type: typeof MARKET_FEED_EMITTED.stale; readonly stale: boolean; readonly lastMessageAt: number | undefined; readonly at: number };

export const MarketFeedConfigSchema = z
  .object({
    coins: z.array(z.string().min(1)).min(1),
    intervals: z.array(z.string().refine((i) => intervalMs(i) !== undefined, 'unknown candle interval')).min(1),
    /** No WebSocket message for this long while streaming → polling. */
    staleAfterMs: z.number().int().positive().default(5_000),
    /** While polling, no accepted message on either path for this long → stale. */
    bothSilentMs: z.number().int().positive().default(15_000),
    /** No first WebSocket message within this long → polling. */
    connectTimeoutMs: z.number().int().positive().default(10_000),
    pollIntervalMs: z.number().int().positive().default(2_000),
    /** The WebSocket must have been up this long (and be delivering) before the feed returns to it. */
    recoverAfterMs: z.number().int().nonnegative().default(3_000),
    badTickPct: z.number().positive().max(10).default(0.1),
    badTickConfirmations: z.number().int().min(1).default(3),
    /** A bar closes once `T + grace` is past by the feed's clock; null: only a newer bar closes it. */
    candleCloseGraceMs: z.number().int().nonnegative().nullable().default(2_000),
  })
  .strict();
export type MarketFeedConfig = z.output<typeof MarketFeedConfigSchema>;
export type MarketFeedConfigInput = z.input<typeof MarketFeedConfigSchema>;

export type { MarketPollInput, MarketStreamInput };

interface CandleTrack {
  readonly pending: Candle | undefined;
  /** Open time of the last bar emitted as closed (−∞ before the first). */
  readonly lastClosedT: number;
}

interface TickTrack {
  readonly last: Decimal;
  readonly suspect: { readonly px: Decimal; readonly count: number; readonly held: readonly Candle[] } | undefined;
}

export interface MarketFeedContext {
  readonly config: MarketFeedConfig;
  readonly wsUp: boolean;
  readonly wsUpSince: number | undefined;
  readonly lastWsAt: number | undefined;
  readonly lastRestAt: number | undefined;
  /** The feed's clock: the latest receive time seen. */
  readonly now: number;
  readonly path: FeedPath;
  readonly stale: boolean;
  readonly candles: Readonly<Record<string, CandleTrack>>;
  readonly mids: Readonly<Record<Coin, TickTrack>>;
  readonly closes: Readonly<Record<string, TickTrack>>;
  readonly droppedTicks: number;
  readonly closedBars: number;
  /** Series whose WebSocket bar skipped ahead of the last known bar: REST backfills them. */
  readonly behind: Readonly<Record<string, true>>;
  /** WebSocket bars held back because they would have skipped a bar. */
  readonly gapHeld: number;
  readonly lastError: string | undefined;
}

// ── pure helpers ──────────────────────────────────────────────────────────────────────────

type TickVerdict = 'accept' | 'hold' | 'confirm';

/** The bad-tick rule for one value: accept near the last accepted value, hold a jump until confirmed. */
function checkTick(track: TickTrack | undefined, px: Decimal, cfg: MarketFeedConfig, candle?: Candle): { verdict: TickVerdict; track: TickTrack; released: readonly Candle[] } {
  if (track === undefined) return { verdict: 'accept', track: { last: px, suspect: undefined }, released: [] };
  const near = (a: Decimal, b: Decimal) => a.minus(b).abs().div(b).lte(cfg.badTickPct);
  if (near(px, track.last)) return { verdict: 'accept', track: { last: px, suspect: undefined }, released: [] };
  const s = track.suspect;
  const count = s !== undefined && near(px, s.px) ? s.count + 1 : 1;
  const held = [...(s !== undefined && count > 1 ? s.held : []), ...(candle ? [candle] : [])];
  if (count >= cfg.badTickConfirmations) return { verdict: 'confirm', track: { last: px, suspect: undefined }, released: held };
  return { verdict: 'hold', track: { last: track.last, suspect: { px, count, held } }, released: [] };
}

/** Adds one bar to its series; returns the bar it closes, if any. */
function addBar(track: CandleTrack | undefined, c: Candle): { track: CandleTrack; closed?: Candle } {
  const t = track ?? { pending: undefined, lastClosedT: -Infinity };
  if (c.t <= t.lastClosedT) return { track: t };
  const p = t.pending;
  if (p === undefined || c.t === p.t) return { track: { ...t, pending: { ...c, closed: false } } };
  if (c.t < p.t) return { track: t };
  return { track: { pending: { ...c, closed: false }, lastClosedT: p.t }, closed: { ...p, closed: true } };
}

/** Whether `c` is more than one interval after the series' newest known bar. */
function skipsBar(track: CandleTrack | undefined, ticks: TickTrack | undefined, c: Candle): boolean {
  // Bars held by the bad-tick filter count as known: they are replayed once confirmed.
  const held = ticks?.suspect?.held;
  const latest = Math.max(track?.pending?.t ?? -Infinity, track?.lastClosedT ?? -Infinity, held && held.length > 0 ? held[held.length - 1]!.t : -Infinity);
  if (!Number.isFinite(latest)) return false;
  return c.t > latest + (intervalMs(c.interval) ?? Infinity);
}

/** Whether a bar would change its series (not a duplicate of something already closed or older). */
function isLive(track: CandleTrack | undefined, c: Candle): boolean {
  if (track === undefined) return true;
  if (c.t <= track.lastClosedT) return false;
  return track.pending === undefined || c.t >= track.pending.t;
}

interface Ingested {
  readonly patch: Partial<MarketFeedContext>;
  readonly emitted: readonly MarketFeedEmitted[];
}

function ingestMids(ctx: MarketFeedContext, e: Extract<FeedInputEvent, { type: typeof FEED_INPUT.mids }>): Ingested {
  const mids = { ...ctx.mids };
  const accepted = new Map<Coin, Decimal>();
  let dropped = 0;
  for (const coin of ctx.config.coins) {
    const px = e.mids.get(coin);
    if (px === undefined) continue;
    const r = checkTick(mids[coin], px, ctx.config);
    mids[coin] = r.track;
    if (r.verdict === 'hold') dropped++;
    else accepted.set(coin, px);
  }
  const emitted: MarketFeedEmitted[] = accepted.size > 0 ? [{ type: MARKET_FEED_EMITTED.mids, mids: accepted, source: e.source, at: e.at }] : [];
  return { patch: { mids, droppedTicks: ctx.droppedTicks + dropped }, emitted };
}

function ingestCandles(ctx: MarketFeedContext, e: Extract<FeedInputEvent, { type: typeof FEED_INPUT.candles }>): Ingested {
  const candles = { ...ctx.candles };
  const closes = { ...ctx.closes };
  const emitted: MarketFeedEmitted[] = [];
  let dropped = 0;
  const wanted = new Set(ctx.config.coins.flatMap((c) => ctx.config.intervals.map((i) => seriesKey(c, i))));
  const bySeries = new Map<string, Candle[]>();
  for (const c of e.candles) {
    const k = seriesKey(c.coin, c.interval);
    if (!wanted.has(k)) continue;
    const list = bySeries.get(k) ?? [];
    list.push(c);
    bySeries.set(k, list);
  }
  const behind = { ...ctx.behind };
  let gapHeld = 0;
  for (const [k, list] of bySeries) {
    list.sort((a, b) => a.t - b.t);
    // REST answers with every bar since the last one we know: it is the authority that closes
    // gaps (also genuine ones, when the venue printed no bar).
    if (e.source === 'rest') delete behind[k];
    // A series seen for the first time starts at its newest bar: older ones are history the
    // strategy loads on its own, not bars that closed while we watched.
    const fresh = candles[k] === undefined ? list.slice(-1) : list;
    for (const c of fresh) {
      if (!isLive(candles[k], c)) continue;
      if (e.source === 'ws' && skipsBar(candles[k], closes[k], c)) {
        // Closing the pending bar now would lose the bars in between: hold, let REST fill in.
        behind[k] = true;
        gapHeld++;
        continue;
      }
      const r = checkTick(closes[k], new Decimal(c.c), ctx.config, c);
      closes[k] = r.track;
      let toAdd: readonly Candle[];
      if (r.verdict === 'hold') toAdd = [];
      else if (r.verdict === 'confirm') toAdd = r.released;
      else toAdd = [c];
      if (r.verdict === 'hold') dropped++;
      for (const b of toAdd) {
        const a = addBar(candles[k], b);
        candles[k] = a.track;
        if (a.closed) emitted.push({ type: MARKET_FEED_EMITTED.candleClosed, candle: a.closed, source: e.source, at: e.at });
      }
    }
  }
  return { patch: { candles, closes, behind, gapHeld: ctx.gapHeld + gapHeld, droppedTicks: ctx.droppedTicks + dropped, closedBars: ctx.closedBars + emitted.length }, emitted };
}

/** Closes every pending bar whose close time plus the grace is behind the feed's clock. */
function closeDue(ctx: MarketFeedContext, now: number, source: FeedSource): Ingested {
  const grace = ctx.config.candleCloseGraceMs;
  if (grace === null) return { patch: {}, emitted: [] };
  let candles: Record<string, CandleTrack> | undefined;
  const emitted: MarketFeedEmitted[] = [];
  for (const [k, t] of Object.entries(ctx.candles)) {
    if (t.pending === undefined || t.pending.T + grace >= now) continue;
    candles ??= { ...ctx.candles };
    candles[k] = { pending: undefined, lastClosedT: t.pending.t };
    emitted.push({ type: MARKET_FEED_EMITTED.candleClosed, candle: { ...t.pending, closed: true }, source, at: now });
  }
  return candles ? { patch: { candles, closedBars: ctx.closedBars + emitted.length }, emitted } : { patch: {}, emitted: [] };
}

type DataEvent = Extract<FeedInputEvent, { source: FeedSource }>;

function isData(e: { type: string }): e is Exclude<DataEvent, { type: typeof FEED_INPUT.error }> {
  return e.type === FEED_INPUT.mids || e.type === FEED_INPUT.candles || e.type === FEED_INPUT.trades || e.type === FEED_INPUT.book;
}

/** Everything one data event does to the context: liveness, clock, filters, bars. */
function ingest(ctx: MarketFeedContext, e: FeedInputEvent): Ingested {
  if (!isData(e)) return { patch: {}, emitted: [] };
  const now = Math.max(ctx.now, e.at);
  let c: MarketFeedContext = { ...ctx, now, ...(e.source === 'ws' ? { lastWsAt: e.at } : { lastRestAt: e.at }) };
  const emitted: MarketFeedEmitted[] = [];
  const apply = (r: Ingested) => {
    c = { ...c, ...r.patch };
    emitted.push(...r.emitted);
  };
  if (e.type === FEED_INPUT.mids) apply(ingestMids(c, e));
  else if (e.type === FEED_INPUT.candles) apply(ingestCandles(c, e));
  apply(closeDue(c, now, e.source));
  const patch: Partial<MarketFeedContext> = {
    now: c.now,
    lastWsAt: c.lastWsAt,
    lastRestAt: c.lastRestAt,
    mids: c.mids,
    closes: c.closes,
    candles: c.candles,
    behind: c.behind,
    gapHeld: c.gapHeld,
    droppedTicks: c.droppedTicks,
    closedBars: c.closedBars,
  };
  return { patch, emitted };
}

function sinceOf(ctx: MarketFeedContext): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, t] of Object.entries(ctx.candles)) {
    const latest = t.pending?.t ?? t.lastClosedT;
    if (Number.isFinite(latest)) out[k] = latest;
  }
  return out;
}

function pollInput(ctx: MarketFeedContext): MarketPollInput {
  return { coins: ctx.config.coins, intervals: ctx.config.intervals, pollIntervalMs: ctx.config.pollIntervalMs, since: sinceOf(ctx) };
}

export function initialMarketFeedContext(config: MarketFeedConfig): MarketFeedContext {
  return { config, wsUp: false, wsUpSince: undefined, lastWsAt: undefined, lastRestAt: undefined, now: 0, path: 'none', stale: false, candles: {}, mids: {}, closes: {}, droppedTicks: 0, closedBars: 0, behind: {}, gapHeld: 0, lastError: undefined };
}

// ── the machine ───────────────────────────────────────────────────────────────────────────

/** In `streaming.watch.live`: a WebSocket message re-arms the silence timer; anything is ingested. */
const REARM_LIVE = [
  { guard: 'isWsData', target: 'live', reenter: true, actions: 'ingest' },
  { actions: 'ingest' },
] as const;

/** In `polling.*`: a stable WebSocket brings the feed back; any message keeps (or makes) it fresh. */
const POLLING_DATA = [
  { guard: 'wsRecovered', target: '#marketFeed.streaming', actions: ['ingest', { type: 'switchPath', params: { to: 'ws', reason: 'ws_recovered' } }] },
  { target: 'fresh', reenter: true, actions: 'ingest' },
] as const;

export const marketFeedMachine = setup({
  types: {
    context: {} as MarketFeedContext,
    events: {} as FeedInputEvent,
    input: {} as MarketFeedConfigInput,
    emitted: {} as MarketFeedEmitted,
  },
  actors: {
    // Placeholders: the supervisor provides the real ones (src/venue/feed-actors.ts).
    marketStream: fromCallback<FeedInputEvent, MarketStreamInput>(() => () => {}),
    marketPoll: fromCallback<FeedInputEvent, MarketPollInput>(() => () => {}),
  },
  delays: {
    staleAfter: ({ context }) => context.config.staleAfterMs,
    bothSilent: ({ context }) => context.config.bothSilentMs,
    connectTimeout: ({ context }) => context.config.connectTimeoutMs,
  },
  guards: {
    isWsData: ({ event }) => isData(event) && event.source === 'ws',
    isDown: ({ event }) => event.type === FEED_INPUT.connection && event.state === 'down',
    needsBackfill: ({ context }) => Object.keys(context.behind).length > 0,
    /** The socket has stayed up for `recoverAfterMs` and this message came over it. */
    wsRecovered: ({ context, event }) =>
      isData(event) && event.source === 'ws' && context.wsUp && context.wsUpSince !== undefined && event.at - context.wsUpSince >= context.config.recoverAfterMs,
  },
  actions: {
    ingest: enqueueActions(({ context, event, enqueue }) => {
      const r = ingest(context, event);
      if (Object.keys(r.patch).length > 0) enqueue.assign(r.patch);
      for (const e of r.emitted) enqueue.emit(e);
    }),
    setConnection: assign(({ context, event }) => {
      if (event.type !== FEED_INPUT.connection) return {};
      const up = event.state === 'up';
      if (up === context.wsUp) return {};
      return { wsUp: up, wsUpSince: up ? event.at : undefined, now: Math.max(context.now, event.at) };
    }),
    noteError: assign(({ event }) => (event.type === FEED_INPUT.error ? { lastError: `${event.source}: ${event.message}` } : {})),
    switchPath: enqueueActions(({ context, enqueue }, params: { to: FeedPath; reason: string }) => {
      if (context.path === params.to) return;
      enqueue.assign({ path: params.to });
      enqueue.emit({ type: MARKET_FEED_EMITTED.sourceChanged, from: context.path, to: params.to, reason: params.reason, at: context.now });
    }),
    markStale: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ stale: true });
      enqueue.emit({ type: MARKET_FEED_EMITTED.stale, stale: true, lastMessageAt: lastMessageAt(context), at: context.now });
    }),
    markFresh: enqueueActions(({ context, enqueue }) => {
      if (!context.stale) return;
      enqueue.assign({ stale: false });
      enqueue.emit({ type: MARKET_FEED_EMITTED.stale, stale: false, lastMessageAt: lastMessageAt(context), at: context.now });
    }),
  },
}).createMachine({
  id: 'marketFeed',
  context: ({ input }) => initialMarketFeedContext(MarketFeedConfigSchema.parse(input)),
  invoke: {
    src: 'marketStream',
    id: MARKET_FEED_ACTORS.stream,
    input: ({ context }) => ({ coins: context.config.coins, intervals: context.config.intervals }),
  },
  on: {
    [FEED_INPUT.connection]: { actions: 'setConnection' },
    [FEED_INPUT.error]: { actions: 'noteError' },
  },
  initial: 'connecting',
  states: {
    connecting: {
      after: { connectTimeout: { target: 'polling', actions: { type: 'switchPath', params: { to: 'rest', reason: 'connect_timeout' } } } },
      on: {
        [FEED_INPUT.mids]: [{ guard: 'isWsData', target: 'streaming', actions: ['ingest', { type: 'switchPath', params: { to: 'ws', reason: 'connected' } }] }, { actions: 'ingest' }],
        [FEED_INPUT.candles]: [{ guard: 'isWsData', target: 'streaming', actions: ['ingest', { type: 'switchPath', params: { to: 'ws', reason: 'connected' } }] }, { actions: 'ingest' }],
        [FEED_INPUT.trades]: [{ guard: 'isWsData', target: 'streaming', actions: ['ingest', { type: 'switchPath', params: { to: 'ws', reason: 'connected' } }] }, { actions: 'ingest' }],
        [FEED_INPUT.book]: [{ guard: 'isWsData', target: 'streaming', actions: ['ingest', { type: 'switchPath', params: { to: 'ws', reason: 'connected' } }] }, { actions: 'ingest' }],
      },
    },
    streaming: {
      type: 'parallel',
      states: {
        watch: {
          initial: 'live',
          states: {
            live: {
              after: { staleAfter: { target: '#marketFeed.polling', actions: { type: 'switchPath', params: { to: 'rest', reason: 'ws_silent' } } } },
              // A WebSocket message re-arms the silence timer by re-entering `live` (only `live`:
              // the transition's source is this state, so nothing above it restarts).
              on: {
                [FEED_INPUT.mids]: REARM_LIVE,
                [FEED_INPUT.candles]: REARM_LIVE,
                [FEED_INPUT.trades]: REARM_LIVE,
                [FEED_INPUT.book]: REARM_LIVE,
              },
            },
          },
        },
        backfill: {
          initial: 'idle',
          states: {
            idle: { always: { guard: 'needsBackfill', target: 'running' } },
            running: {
              invoke: { src: 'marketPoll', id: MARKET_FEED_ACTORS.backfill, input: ({ context }) => pollInput(context) },
              always: { guard: not('needsBackfill'), target: 'idle' },
            },
          },
        },
      },
      on: {
        [FEED_INPUT.connection]: [
          { guard: 'isDown', target: 'polling', actions: ['setConnection', { type: 'switchPath', params: { to: 'rest', reason: 'ws_down' } }] },
          { actions: 'setConnection' },
        ],
      },
    },
    polling: {
      invoke: {
        src: 'marketPoll',
        id: MARKET_FEED_ACTORS.poll,
        input: ({ context }) => pollInput(context),
      },
      initial: 'fresh',
      states: {
        fresh: {
          after: { bothSilent: 'stale' },
          on: {
            [FEED_INPUT.mids]: POLLING_DATA,
            [FEED_INPUT.candles]: POLLING_DATA,
            [FEED_INPUT.trades]: POLLING_DATA,
            [FEED_INPUT.book]: POLLING_DATA,
          },
        },
        stale: {
          entry: 'markStale',
          exit: 'markFresh',
          on: {
            [FEED_INPUT.mids]: POLLING_DATA,
            [FEED_INPUT.candles]: POLLING_DATA,
            [FEED_INPUT.trades]: POLLING_DATA,
            [FEED_INPUT.book]: POLLING_DATA,
          },
        },
      },
    },
  },
});

function lastMessageAt(ctx: MarketFeedContext): number | undefined {
  if (ctx.lastWsAt === undefined) return ctx.lastRestAt;
  if (ctx.lastRestAt === undefined) return ctx.lastWsAt;
  return Math.max(ctx.lastWsAt, ctx.lastRestAt);
}

export type MarketFeedActor = ActorRefFrom<typeof marketFeedMachine>;
