/**
 * The market-feed machine on a SimulatedClock with fake feed actors: path switching (streaming ⇄
 * polling), staleness, candle closing and de-duplication across paths, and the bad-tick filter.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromCallback, SimulatedClock } from 'xstate';
import { dec } from '../../src/domain/decimal.ts';
import type { Candle } from '../../src/domain/types.ts';
import { MARKET_FEED_EMITTED, MARKET_FEED_EVENTS as IN, marketFeedMachine, MarketFeedConfigSchema, type MarketFeedConfigInput, type MarketFeedEmitted } from '../../machines/market-feed.machine.ts';
import type { FeedInputEvent, FeedSource, MarketPollInput, MarketStreamInput } from '../../src/venue/feed-port.ts';

const MIN = 60_000;
const STREAMING = { streaming: { watch: 'live', backfill: 'idle' } };

function candle(t: number, c: number, extra: Partial<Candle> = {}): Candle {
  return { coin: 'BTC', interval: '1m', t, T: t + MIN - 1, o: c, h: c + 1, l: c - 1, c, v: 1, closed: false, ...extra };
}

function rig(config: Partial<MarketFeedConfigInput> = {}) {
  const clock = new SimulatedClock();
  const polls: { input: MarketPollInput; stopped: boolean; send: (e: FeedInputEvent) => void }[] = [];
  const machine = marketFeedMachine.provide({
    actors: {
      marketStream: fromCallback<FeedInputEvent, MarketStreamInput>(() => () => {}),
      marketPoll: fromCallback<FeedInputEvent, MarketPollInput>(({ input, sendBack }) => {
        const p = { input, stopped: false, send: sendBack };
        polls.push(p);
        return () => {
          p.stopped = true;
        };
      }),
    },
  });
  const actor = createActor(machine, {
    clock,
    input: { coins: ['BTC', 'ETH'], intervals: ['1m'], staleAfterMs: 5_000, bothSilentMs: 10_000, connectTimeoutMs: 3_000, recoverAfterMs: 1_000, candleCloseGraceMs: null, ...config },
  });
  const emitted: MarketFeedEmitted[] = [];
  actor.on('*', (e) => emitted.push(e as MarketFeedEmitted));
  actor.start();
  const at = () => clock.now();
  const send = (e: FeedInputEvent) => actor.send(e);
  return {
    clock,
    actor,
    emitted,
    polls,
    advance: (ms: number) => clock.increment(ms),
    state: () => actor.getSnapshot().value,
    mids: (source: FeedSource, m: Record<string, number | string>) => send({ type: IN.mids, source, mids: new Map(Object.entries(m).map(([k, v]) => [k, dec(v)])), at: at() }),
    candles: (source: FeedSource, cs: Candle[]) => send({ type: IN.candles, source, candles: cs, at: at() }),
    conn: (state: 'up' | 'down') => send({ type: IN.connection, state, at: at() }),
    closed: () => emitted.filter((e) => e.type === MARKET_FEED_EMITTED.candleClosed).map((e) => (e as Extract<MarketFeedEmitted, { type: 'feed.candleClosed' }>).candle),
    sources: () => emitted.filter((e) => e.type === MARKET_FEED_EMITTED.sourceChanged).map((e) => `${(e as { from: string }).from}->${(e as { to: string }).to}`),
  };
}

describe('config', () => {
  it('fills defaults and refuses unknown intervals and keys', () => {
    const c = MarketFeedConfigSchema.parse({ coins: ['BTC'], intervals: ['1m', '1h'] });
    expect(c).toMatchObject({ staleAfterMs: 5_000, badTickPct: 0.1, badTickConfirmations: 3 });
    expect(MarketFeedConfigSchema.safeParse({ coins: ['BTC'], intervals: ['7m'] }).success).toBe(false);
    expect(MarketFeedConfigSchema.safeParse({ coins: ['BTC'], intervals: ['1m'], nope: 1 }).success).toBe(false);
  });
});

describe('paths', () => {
  it('goes from connecting to streaming on the first WebSocket message', () => {
    const r = rig();
    expect(r.state()).toBe('connecting');
    r.conn('up');
    r.mids('ws', { BTC: 100 });
    expect(r.state()).toEqual(STREAMING);
    expect(r.sources()).toEqual(['none->ws']);
  });

  it('falls back to polling when nothing arrives before the connect timeout', () => {
    const r = rig();
    r.advance(3_001);
    expect(r.state()).toEqual({ polling: 'fresh' });
    expect(r.sources()).toEqual(['none->rest']);
    expect(r.polls).toHaveLength(1);
    expect(r.polls[0]!.input).toMatchObject({ coins: ['BTC', 'ETH'], intervals: ['1m'], pollIntervalMs: 2_000 });
  });

  it('streams while messages keep coming, and polls after staleAfterMs of WebSocket silence', () => {
    const r = rig();
    r.conn('up');
    r.mids('ws', { BTC: 100 });
    for (let i = 0; i < 4; i++) {
      r.advance(4_000);
      r.mids('ws', { BTC: 100 });
    }
    expect(r.state()).toEqual(STREAMING);
    r.advance(4_999);
    expect(r.state()).toEqual(STREAMING);
    r.advance(2);
    expect(r.state()).toEqual({ polling: 'fresh' });
    expect(r.sources()).toEqual(['none->ws', 'ws->rest']);
    expect(r.emitted.find((e) => e.type === 'feed.sourceChanged' && e.to === 'rest')).toMatchObject({ reason: 'ws_silent' });
  });

  it('polls at once when the WebSocket goes down', () => {
    const r = rig();
    r.conn('up');
    r.mids('ws', { BTC: 100 });
    r.advance(100);
    r.conn('down');
    expect(r.state()).toEqual({ polling: 'fresh' });
    expect(r.emitted.find((e) => e.type === 'feed.sourceChanged' && e.to === 'rest')).toMatchObject({ reason: 'ws_down' });
  });

  it('returns to streaming only once the socket has been up for recoverAfterMs and delivers', () => {
    const r = rig();
    r.conn('up');
    r.mids('ws', { BTC: 100 });
    r.conn('down');
    expect(r.polls).toHaveLength(1);
    r.mids('rest', { BTC: 100 });
    r.advance(500);
    r.conn('up');
    r.mids('ws', { BTC: 100 }); // the resubscription snapshot: not yet proof of a stable socket
    expect(r.state()).toEqual({ polling: 'fresh' });
    r.advance(999);
    r.mids('ws', { BTC: 100 });
    expect(r.state()).toEqual({ polling: 'fresh' });
    r.advance(1);
    r.mids('ws', { BTC: 100 });
    expect(r.state()).toEqual(STREAMING);
    expect(r.polls[0]!.stopped).toBe(true);
    expect(r.sources()).toEqual(['none->ws', 'ws->rest', 'rest->ws']);
  });

  it('marks the feed stale when both paths are silent, and fresh again on the next message', () => {
    const r = rig();
    r.conn('up');
    r.mids('ws', { BTC: 100 });
    r.conn('down');
    r.advance(6_000);
    r.mids('rest', { BTC: 100 }); // REST keeps it fresh
    r.advance(9_999);
    expect(r.state()).toEqual({ polling: 'fresh' });
    r.advance(2);
    expect(r.state()).toEqual({ polling: 'stale' });
    expect(r.actor.getSnapshot().context.stale).toBe(true);
    const stale = r.emitted.filter((e) => e.type === MARKET_FEED_EMITTED.stale);
    expect(stale).toHaveLength(1);
    expect(stale[0]).toMatchObject({ stale: true, lastMessageAt: 6_000 });
    r.mids('rest', { BTC: 100 });
    expect(r.state()).toEqual({ polling: 'fresh' });
    expect(r.emitted.filter((e) => e.type === MARKET_FEED_EMITTED.stale).map((e) => (e as { stale: boolean }).stale)).toEqual([true, false]);
    // Messages re-arm the silence timer without restarting the poller.
    expect(r.polls).toHaveLength(1);
    expect(r.polls[0]!.stopped).toBe(false);
  });
});

describe('candles', () => {
  it('closes a bar once a newer bar arrives, with its last values, exactly once', () => {
    const r = rig();
    r.conn('up');
    r.candles('ws', [candle(0, 100)]);
    r.candles('ws', [candle(0, 101)]);
    r.candles('ws', [candle(0, 101)]); // duplicate
    expect(r.closed()).toEqual([]);
    r.candles('ws', [candle(MIN, 102)]);
    r.candles('ws', [candle(0, 99)]); // late update of a closed bar
    r.candles('ws', [candle(MIN, 103)]);
    expect(r.closed()).toEqual([{ ...candle(0, 101), closed: true }]);
    expect(r.actor.getSnapshot().context.closedBars).toBe(1);
  });

  it('delivers each closed bar exactly once across WebSocket → REST → WebSocket', () => {
    const r = rig();
    r.conn('up');
    r.candles('ws', [candle(0, 100)]);
    r.candles('ws', [candle(MIN, 101)]); // closes t=0
    r.conn('down');
    expect(r.polls[0]!.input.since).toEqual({ 'BTC|1m': MIN });
    // REST returns a window overlapping what the socket already delivered.
    r.candles('rest', [candle(0, 100), candle(MIN, 101.5), candle(2 * MIN, 102)]);
    r.candles('rest', [candle(MIN, 101.5), candle(2 * MIN, 102.5), candle(3 * MIN, 103)]);
    r.advance(1_000);
    r.conn('up');
    r.candles('ws', [candle(2 * MIN, 102)]); // late and already closed
    r.advance(1_000);
    r.candles('ws', [candle(3 * MIN, 103.5)]);
    r.candles('ws', [candle(4 * MIN, 104)]);
    expect(r.state()).toEqual(STREAMING);
    const closed = r.closed();
    expect(closed.map((c) => c.t)).toEqual([0, MIN, 2 * MIN, 3 * MIN]);
    expect(closed.map((c) => c.c)).toEqual([100, 101.5, 102.5, 103.5]);
    expect(closed.every((c) => c.closed)).toBe(true);
    const sources = r.emitted.filter((e) => e.type === 'feed.candleClosed').map((e) => (e as { source: string }).source);
    expect(sources).toEqual(['ws', 'rest', 'rest', 'ws']);
  });

  it('holds a WebSocket bar that skips ahead, backfills by REST while streaming, and loses no bar', () => {
    const r = rig();
    r.conn('up');
    r.candles('ws', [candle(0, 100)]);
    r.candles('ws', [candle(MIN, 101)]);
    expect(r.polls).toHaveLength(0);
    r.candles('ws', [candle(3 * MIN, 103)]); // bar 2·MIN never came over the socket
    expect(r.closed().map((c) => c.t)).toEqual([0]);
    expect(r.actor.getSnapshot().value).toEqual({ streaming: { watch: 'live', backfill: 'running' } });
    expect(r.polls).toHaveLength(1);
    expect(r.polls[0]!.input.since).toEqual({ 'BTC|1m': MIN });
    r.mids('ws', { BTC: 103 });
    r.candles('ws', [candle(3 * MIN, 103.2)]); // still ahead: held again, the backfill keeps running
    expect(r.polls).toHaveLength(1);
    expect(r.polls[0]!.stopped).toBe(false);
    r.polls[0]!.send({ type: IN.candles, source: 'rest', candles: [candle(MIN, 101.5), candle(2 * MIN, 102), candle(3 * MIN, 103)], at: r.clock.now() });
    expect(r.actor.getSnapshot().value).toEqual(STREAMING);
    expect(r.polls[0]!.stopped).toBe(true);
    r.candles('ws', [candle(4 * MIN, 104)]);
    expect(r.closed().map((c) => [c.t, c.c])).toEqual([
      [0, 100],
      [MIN, 101.5],
      [2 * MIN, 102],
      [3 * MIN, 103],
    ]);
    expect(r.actor.getSnapshot().context.gapHeld).toBe(2);
  });

  it('starts a series seen first by REST at its newest bar, without replaying history', () => {
    const r = rig();
    r.advance(3_001);
    r.candles('rest', [candle(0, 100), candle(MIN, 101), candle(2 * MIN, 102)]);
    expect(r.closed()).toEqual([]);
    r.candles('rest', [candle(2 * MIN, 102), candle(3 * MIN, 103)]);
    expect(r.closed().map((c) => c.t)).toEqual([2 * MIN]);
  });

  it('closes a bar by the clock once T + grace has passed, and ignores it afterwards', () => {
    const r = rig({ candleCloseGraceMs: 500 });
    r.conn('up');
    r.candles('ws', [candle(0, 100)]);
    r.advance(MIN - 1 + 500);
    r.mids('ws', { BTC: 100 });
    expect(r.closed()).toEqual([]);
    r.advance(1);
    r.mids('ws', { BTC: 100 });
    expect(r.closed()).toEqual([{ ...candle(0, 100), closed: true }]);
    r.candles('ws', [candle(0, 100.5)]); // a final update after the close: already delivered
    r.candles('ws', [candle(MIN, 101)]);
    expect(r.closed()).toHaveLength(1);
  });

  it('keeps series apart and ignores coins and intervals it was not asked for', () => {
    const r = rig();
    r.conn('up');
    r.candles('ws', [candle(0, 100), candle(0, 2000, { coin: 'ETH' }), candle(0, 5, { coin: 'SOL' }), candle(0, 100, { interval: '5m' })]);
    r.candles('ws', [candle(MIN, 2001, { coin: 'ETH' })]);
    expect(r.closed()).toEqual([{ ...candle(0, 2000, { coin: 'ETH' }), closed: true }]);
  });
});

describe('bad ticks', () => {
  it('drops a mid far from the last accepted one, and accepts a new level confirmed by N messages', () => {
    const r = rig({ badTickConfirmations: 3 });
    r.conn('up');
    r.mids('ws', { BTC: 100, ETH: 10 });
    r.mids('ws', { BTC: 150, ETH: 10.5 });
    const mids = () => r.emitted.filter((e) => e.type === MARKET_FEED_EMITTED.mids).map((e) => Object.fromEntries([...(e as Extract<MarketFeedEmitted, { type: 'feed.mids' }>).mids].map(([k, v]) => [k, v.toString()])));
    expect(mids()).toEqual([{ BTC: '100', ETH: '10' }, { ETH: '10.5' }]);
    r.mids('ws', { BTC: 109 }); // within 10 %: accepted, clears the suspect
    r.mids('ws', { BTC: 150 });
    r.mids('ws', { BTC: 151 });
    expect(mids().slice(2)).toEqual([{ BTC: '109' }]);
    r.mids('rest', { BTC: 150.5 }); // the third consecutive message at the new level
    expect(mids().slice(3)).toEqual([{ BTC: '150.5' }]);
    r.mids('ws', { BTC: 151 });
    expect(mids().slice(4)).toEqual([{ BTC: '151' }]);
    expect(r.actor.getSnapshot().context.droppedTicks).toBe(3);
  });

  it('holds a spiked candle update so it never becomes the bar, and replays a confirmed jump without losing a bar', () => {
    const r = rig({ badTickConfirmations: 2 });
    r.conn('up');
    r.candles('ws', [candle(0, 100)]);
    r.candles('ws', [candle(0, 300)]); // spike: held
    r.candles('ws', [candle(MIN, 101)]); // back to normal: the spike is discarded
    expect(r.closed()).toEqual([{ ...candle(0, 100), closed: true }]);
    // A genuine jump: two consecutive bars at the new level.
    r.candles('ws', [candle(2 * MIN, 130)]);
    expect(r.closed()).toHaveLength(1);
    r.candles('ws', [candle(3 * MIN, 131)]);
    expect(r.closed().map((c) => [c.t, c.c])).toEqual([
      [0, 100],
      [MIN, 101],
      [2 * MIN, 130],
    ]);
  });
});
