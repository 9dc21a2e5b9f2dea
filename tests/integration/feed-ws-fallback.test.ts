/**
 * The market feed end to end: the real feed actors and machine over the Hyperliquid adapter and
 * the real simulator. WebSocket streaming → WebSocket loss → REST polling keeps delivering closed
 * candles → WebSocket back → streaming again, with every closed bar delivered exactly once and
 * none skipped.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { Candle } from '../../src/domain/types.ts';
import { marketFeedMachine, MARKET_FEED_EMITTED, type MarketFeedEmitted } from '../../machines/market-feed.machine.ts';
import { createHyperliquidVenue, createMarketPollActor, createMarketStreamActor, type HyperliquidVenue } from '../../src/venue/index.ts';
import { startRig, until, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;
let venue: HyperliquidVenue;

async function setFaults(body: Record<string, number>): Promise<void> {
  const r = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
  expect(r.status).toBe(200);
}

beforeAll(async () => {
  // 60× replay: one 100 ms block is 6 s of market, a 1m bar is ten blocks.
  rig = await startRig('feed', { speed: 60, bookIntervalMs: 0 });
  rig.sim.step(1_000);
  venue = createHyperliquidVenue({
    network: 'paper',
    apiUrl: rig.sim.url,
    wallet: rig.agent,
    account: rig.master.address,
    timeoutMs: 3_000,
    ws: { reconnectDelayMs: () => 50, resubscribeDelayMs: 100 },
  });
});
afterAll(async () => {
  await venue.close();
  await rig.close();
});

it('falls back to REST polling on WebSocket loss, keeps closing candles, and returns to streaming', async () => {
  const machine = marketFeedMachine.provide({
    actors: {
      marketStream: createMarketStreamActor({ venue, retryMs: 100 }),
      marketPoll: createMarketPollActor({ venue }),
    },
  });
  const feed = createActor(machine, {
    input: { coins: ['BTC'], intervals: ['1m'], staleAfterMs: 1_500, recoverAfterMs: 300, pollIntervalMs: 150, bothSilentMs: 10_000, connectTimeoutMs: 5_000 },
  });
  const closed: { candle: Candle; source: string }[] = [];
  const changes: string[] = [];
  const mids: string[] = [];
  feed.on(MARKET_FEED_EMITTED.candleClosed, (e: Extract<MarketFeedEmitted, { type: 'feed.candleClosed' }>) => closed.push({ candle: e.candle, source: e.source }));
  feed.on(MARKET_FEED_EMITTED.sourceChanged, (e: Extract<MarketFeedEmitted, { type: 'feed.sourceChanged' }>) => changes.push(`${e.from}->${e.to}`));
  feed.on(MARKET_FEED_EMITTED.mids, (e: Extract<MarketFeedEmitted, { type: 'feed.mids' }>) => mids.push(e.source));
  feed.start();
  // The market moves only when stepped: one block every 20 ms of wall time.
  const stepper = setInterval(() => rig.sim.step(100), 20);
  const path = () => feed.getSnapshot().context.path;
  const closedBy = (source: string) => closed.filter((c) => c.source === source).length;
  try {
    await until(() => (path() === 'ws' && closedBy('ws') >= 2 ? true : undefined), { timeoutMs: 10_000 });
    expect(feed.getSnapshot().matches('streaming')).toBe(true);

    // Every block now drops every socket: the connection never stays up long enough to recover.
    await setFaults({ wsDisconnect: 1 });
    await until(() => (path() === 'rest' ? true : undefined), { timeoutMs: 10_000 });
    expect(feed.getSnapshot().matches('polling')).toBe(true);
    const restBefore = closedBy('rest');
    await until(() => (closedBy('rest') >= restBefore + 2 ? true : undefined), { timeoutMs: 10_000 });
    expect(mids).toContain('rest');

    await setFaults({});
    const wsBefore = closed.length;
    await until(() => (path() === 'ws' && closed.slice(wsBefore).filter((c) => c.source === 'ws').length >= 2 ? true : undefined), { timeoutMs: 10_000 });
    expect(feed.getSnapshot().matches('streaming')).toBe(true);
  } finally {
    clearInterval(stepper);
    feed.stop();
  }

  expect(changes.slice(0, 3)).toEqual(['none->ws', 'ws->rest', 'rest->ws']);
  // Exactly once and gapless, whichever path delivered each bar.
  const ts = closed.map((c) => c.candle.t);
  for (let i = 1; i < ts.length; i++) expect(ts[i]! - ts[i - 1]!).toBe(60_000);
  expect(closed.every((c) => c.candle.closed && c.candle.coin === 'BTC' && c.candle.interval === '1m')).toBe(true);
  // Bars REST delivered match the venue's own record of them.
  const restBar = closed.find((c) => c.source === 'rest')!.candle;
  const [truth] = await venue.candles('BTC', '1m', restBar.t, restBar.t);
  expect(truth).toMatchObject({ t: restBar.t, o: restBar.o, h: restBar.h, l: restBar.l, c: restBar.c });
  expect(venue.droppedMessages()).toEqual({});
});
