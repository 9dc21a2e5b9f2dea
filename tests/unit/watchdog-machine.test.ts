/**
 * The watchdog machine on a SimulatedClock: stall detection at exactly two heartbeat intervals
 * (and never earlier for an actor that beats on time: a fast-check property), restart requests and
 * their grace, recovery, the dead-man verdict, edge-triggered health facts that the REAL mode
 * machine accepts unchanged, garbage samples ignored, and the config schema.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { modeMachine, modeOf, ModeEvents, type ModeEvent } from '../../machines/mode.machine.ts';
import {
  isModeFact,
  parseWatchdogConfig,
  stalledActors,
  watchdogMachine,
  WatchdogConfigSchema,
  WatchdogEmitted,
  WatchdogEvents,
  type WatchdogConfigInput,
  type WatchdogEmittedEvent,
  type WatchdogEvent,
} from '../../machines/watchdog.machine.ts';

const T0 = 1_700_000_000_000;

type Sample = WatchdogEvent extends infer E ? (E extends { at: number } ? Omit<E, 'at'> : never) : never;

function start(cfg: WatchdogConfigInput = {}) {
  const clock = new SimulatedClock();
  clock.set(T0);
  const actor = createActor(watchdogMachine, { clock, input: { now: T0, config: WatchdogConfigSchema.parse(cfg) } });
  const out: WatchdogEmittedEvent[] = [];
  actor.on('*', (e) => out.push(e as WatchdogEmittedEvent));
  actor.start();
  const send = (e: Sample) => actor.send({ ...e, at: clock.now() } as WatchdogEvent);
  const beat = (a: string) => send({ type: WatchdogEvents.HEARTBEAT, actor: a });
  const advance = (ms: number) => clock.increment(ms);
  const of = <T extends WatchdogEmittedEvent['type']>(type: T) => out.filter((e): e is Extract<WatchdogEmittedEvent, { type: T }> => e.type === type);
  return { actor, clock, out, send, beat, advance, of };
}

describe('watchdog machine: stalled actors', () => {
  it('detects an actor that stops beating at exactly two heartbeat intervals, and asks for its restart', () => {
    const w = start({ heartbeatIntervalMs: 1_000 });
    for (let i = 0; i < 5; i++) {
      w.beat('orderManager');
      w.advance(1_000);
    }
    w.beat('orderManager');
    const last = w.clock.now();
    w.advance(1_999);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toEqual([]);
    w.advance(1);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toEqual([{ type: WatchdogEmitted.ACTOR_STALLED, actor: 'orderManager', silentForMs: 2_000, lastHeartbeatAt: last, stalls: 1, at: last + 2_000 }]);
    expect(w.of(WatchdogEmitted.RESTART_ACTOR)).toEqual([{ type: WatchdogEmitted.RESTART_ACTOR, actor: 'orderManager', at: last + 2_000 }]);
    expect(stalledActors(w.actor.getSnapshot())).toEqual(['orderManager']);
  });

  it('property: an actor beating at most one interval apart is never stalled; once silent it is reported exactly 2 intervals after its last beat', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 5_000 }),
        fc.array(fc.double({ min: 0.001, max: 1, noNaN: true }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 2, max: 4 }),
        (interval, gaps, missed) => {
          const w = start({ heartbeatIntervalMs: interval, missedHeartbeats: missed, actors: ['a'] });
          w.beat('a');
          for (const g of gaps) {
            w.advance(Math.max(1, Math.floor(g * interval)));
            w.beat('a');
          }
          expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toEqual([]);
          const last = w.clock.now();
          w.advance(missed * interval - 1);
          expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toEqual([]);
          w.advance(1);
          const stalled = w.of(WatchdogEmitted.ACTOR_STALLED);
          expect(stalled).toHaveLength(1);
          expect(stalled[0]!.at - last).toBe(missed * interval);
          expect(stalled[0]!.silentForMs).toBe(missed * interval);
        },
      ),
      { numRuns: 200, seed: 4242 },
    );
  });

  it('an actor configured at boot that never beats is stalled two intervals after boot', () => {
    const w = start({ heartbeatIntervalMs: 500, actors: ['marketFeed', 'risk'] });
    w.advance(500);
    w.beat('risk');
    w.advance(499);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toEqual([]);
    w.advance(1);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED).map((e) => [e.actor, e.at])).toEqual([['marketFeed', T0 + 1_000]]);
    expect(stalledActors(w.actor.getSnapshot())).toEqual(['marketFeed']);
    w.advance(500);
    expect(stalledActors(w.actor.getSnapshot())).toEqual(['marketFeed', 'risk']);
  });

  it('asks again after the restart grace while the actor stays silent, and reports recovery on its next beat', () => {
    const w = start({ heartbeatIntervalMs: 1_000, restartGraceMs: 10_000 });
    w.beat('strategy');
    w.advance(2_000);
    w.advance(9_999);
    expect(w.of(WatchdogEmitted.RESTART_ACTOR)).toHaveLength(1);
    w.advance(1);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED).map((e) => [e.stalls, e.silentForMs])).toEqual([
      [1, 2_000],
      [2, 12_000],
    ]);
    expect(w.of(WatchdogEmitted.RESTART_ACTOR)).toHaveLength(2);
    w.advance(500);
    w.beat('strategy');
    expect(w.of(WatchdogEmitted.ACTOR_RECOVERED)).toEqual([{ type: WatchdogEmitted.ACTOR_RECOVERED, actor: 'strategy', silentForMs: 12_500, at: T0 + 12_500 }]);
    expect(stalledActors(w.actor.getSnapshot())).toEqual([]);
    // Watched afresh: the next stall is counted from the new beat.
    w.advance(2_000);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED).at(-1)).toMatchObject({ stalls: 1, silentForMs: 2_000 });
  });

  it('restartOnStall: false reports the stall without asking for a restart', () => {
    const w = start({ restartOnStall: false });
    w.beat('risk');
    w.advance(2_000);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toHaveLength(1);
    expect(w.of(WatchdogEmitted.RESTART_ACTOR)).toEqual([]);
  });

  it('an unwatched actor is not reported; it is watched again from its next beat', () => {
    const w = start({ actors: ['marketFeed'] });
    w.advance(500);
    w.send({ type: WatchdogEvents.UNWATCH, actor: 'marketFeed' });
    w.advance(60_000);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toEqual([]);
    w.beat('marketFeed');
    w.advance(2_000);
    expect(w.of(WatchdogEmitted.ACTOR_STALLED)).toHaveLength(1);
  });

  it('the dead-man verdict turns unhealthy while a critical actor is stalled, and healthy when it beats', () => {
    const w = start({ criticalActors: ['orderManager'] });
    w.beat('orderManager');
    w.beat('strategy');
    w.advance(1_000);
    w.beat('orderManager');
    w.advance(2_000);
    // strategy stalled first (not critical): no verdict; then orderManager.
    expect(w.of(WatchdogEmitted.ACTOR_STALLED).map((e) => e.actor)).toEqual(['strategy', 'orderManager']);
    expect(w.of(WatchdogEmitted.DEAD_MAN_HEALTH)).toEqual([{ type: WatchdogEmitted.DEAD_MAN_HEALTH, healthy: false, reason: 'critical actor stalled: orderManager', at: T0 + 3_000 }]);
    w.advance(20_000);
    expect(w.of(WatchdogEmitted.DEAD_MAN_HEALTH)).toHaveLength(1);
    w.beat('orderManager');
    expect(w.of(WatchdogEmitted.DEAD_MAN_HEALTH).map((e) => e.healthy)).toEqual([false, true]);
  });
});

describe('watchdog machine: health facts', () => {
  it('event-loop delay: one fact per crossing of the threshold', () => {
    const w = start({ eventLoopDelayMs: 200 });
    for (const ms of [5, 10, 199]) w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms });
    expect(w.out).toEqual([]);
    w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: 450, maxMs: 900 });
    w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: 300 });
    w.advance(1_000);
    w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: 20 });
    expect(w.out).toEqual([
      { type: ModeEvents.EVENT_LOOP_DELAY, ms: 450, at: T0 },
      { type: ModeEvents.EVENT_LOOP_DELAY, ms: 20, at: T0 + 1_000 },
    ]);
  });

  it('feed: stale only when BOTH paths have been silent for feedStaleMs', () => {
    const w = start({ feedStaleMs: 10_000 });
    const age = (ws: number | null, rest: number | null) => w.send({ type: WatchdogEvents.FEED_AGE, ws, rest });
    age(T0, null);
    w.advance(9_999);
    age(T0, null);
    expect(w.out).toEqual([]);
    w.advance(1_001);
    age(T0, T0 + 11_000); // polling took over: fresh
    expect(w.out).toEqual([]);
    w.advance(9_999);
    age(T0, T0 + 11_000);
    expect(w.out).toEqual([]);
    w.advance(1);
    age(null, null); // "nothing new" never moves a path's last message back
    expect(w.out).toEqual([{ type: ModeEvents.FEED_STALE, stale: true, at: T0 + 21_000 }]);
    w.advance(1_000);
    age(T0 + 21_500, T0 + 11_000);
    expect(w.out.at(-1)).toEqual({ type: ModeEvents.FEED_STALE, stale: false, at: T0 + 22_000 });
    expect(w.out).toHaveLength(2);
  });

  it('database: an error or a slow write → one dbWriteError; dbOkAfter good writes → dbOk', () => {
    const w = start({ dbWriteSlowMs: 1_000, dbOkAfter: 2 });
    const write = (ok: boolean, latencyMs: number, detail?: string) => w.send({ type: WatchdogEvents.DB_WRITE, ok, latencyMs, ...(detail ? { detail } : {}) });
    write(true, 3);
    expect(w.out).toEqual([]);
    write(false, 2, 'SQLITE_FULL: database or disk is full');
    write(false, 2, 'again');
    write(true, 5);
    expect(w.out).toEqual([{ type: ModeEvents.DB_WRITE_ERROR, detail: 'SQLITE_FULL: database or disk is full', at: T0 }]);
    write(true, 1_500); // slow: counts as an error, resets the streak
    write(true, 5);
    expect(w.out).toHaveLength(1);
    write(true, 5);
    expect(w.out.at(-1)).toEqual({ type: ModeEvents.DB_OK, at: T0 });
    write(true, 2_500);
    expect(w.out.at(-1)).toEqual({ type: ModeEvents.DB_WRITE_ERROR, detail: 'write took 2500 ms ≥ 1000 ms', at: T0 });
  });

  it('memory: high at the threshold, low again only below 90 % of it', () => {
    const w = start({ rssHighBytes: 1_000 });
    const mem = (rssBytes: number) => w.send({ type: WatchdogEvents.MEMORY, rssBytes });
    mem(999);
    mem(1_000);
    mem(950);
    mem(899);
    expect(w.of(WatchdogEmitted.MEMORY).map((e) => [e.high, e.rssBytes])).toEqual([
      [true, 1_000],
      [false, 899],
    ]);
  });

  it('ignores garbage samples (NaN, negative, infinite, unknown path) without changing state', () => {
    const w = start({ actors: [] });
    const before = w.actor.getSnapshot().context;
    w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: Number.NaN });
    w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: -5 });
    w.send({ type: WatchdogEvents.DB_WRITE, ok: false, latencyMs: Number.POSITIVE_INFINITY });
    w.send({ type: WatchdogEvents.MEMORY, rssBytes: Number.NaN });
    w.send({ type: WatchdogEvents.FEED_AGE, ws: Number.NaN, rest: T0 });
    w.send({ type: WatchdogEvents.FEED_AGE, ws: T0, rest: 'yesterday' as unknown as number });
    expect(w.out).toEqual([]);
    expect(w.actor.getSnapshot().context).toEqual(before);
  });

  it('its facts drive the REAL mode machine unchanged: event loop → Degraded, feed stale / DB errors → Critical, and back', () => {
    const w = start({ eventLoopDelayMs: 250, feedStaleMs: 5_000, dbOkAfter: 1 });
    const mode = createActor(modeMachine, { clock: w.clock, input: { now: T0, config: { drawdownPct: { degraded: 5, critical: 10, emergency: 15 }, eventLoopDelayMs: 250, hysteresisMs: 1_000, orderEndpoints: ['exchange'] } } });
    mode.start();
    const forwarded: string[] = [];
    w.actor.on('*', (e) => {
      if (!isModeFact(e)) return;
      forwarded.push(e.type);
      mode.send(e satisfies ModeEvent);
    });
    w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: 400 });
    expect(modeOf(mode.getSnapshot())).toBe('Degraded');
    w.send({ type: WatchdogEvents.DB_WRITE, ok: false, latencyMs: 1, detail: 'disk I/O error' });
    expect(modeOf(mode.getSnapshot())).toBe('Critical');
    w.send({ type: WatchdogEvents.DB_WRITE, ok: true, latencyMs: 1 });
    w.send({ type: WatchdogEvents.EVENT_LOOP_DELAY, ms: 3 });
    w.advance(6_000);
    w.send({ type: WatchdogEvents.FEED_AGE, ws: null, rest: null });
    expect(modeOf(mode.getSnapshot())).toBe('Critical');
    expect(mode.getSnapshot().context.conditions.feedStale).toBeDefined();
    expect(mode.getSnapshot().context.conditions.dbWrite).toBeUndefined();
    w.send({ type: WatchdogEvents.FEED_AGE, ws: null, rest: w.clock.now() });
    w.advance(1_000);
    expect(modeOf(mode.getSnapshot())).toBe('Normal');
    expect(forwarded).toEqual([ModeEvents.EVENT_LOOP_DELAY, ModeEvents.DB_WRITE_ERROR, ModeEvents.DB_OK, ModeEvents.EVENT_LOOP_DELAY, ModeEvents.FEED_STALE, ModeEvents.FEED_STALE]);
  });
});

describe('watchdog config', () => {
  it('defaults: 1 s heartbeats, stalled after two missed', () => {
    const r = parseWatchdogConfig(undefined);
    expect(r.ok && r.config).toMatchObject({ heartbeatIntervalMs: 1_000, missedHeartbeats: 2, criticalActors: ['orderManager'] });
  });
  it('a bad or unknown key is an error naming it', () => {
    expect(parseWatchdogConfig({ heartbeatIntervalMs: -1 })).toMatchObject({ ok: false, error: expect.stringContaining('watchdog.heartbeatIntervalMs') });
    expect(parseWatchdogConfig({ heartbeatMs: 5 })).toMatchObject({ ok: false, error: expect.stringContaining('heartbeatMs') });
  });
});
