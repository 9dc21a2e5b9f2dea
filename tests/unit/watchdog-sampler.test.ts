/**
 * The sampler's measurements feed the real watchdog machine: a blocked event loop shows up as a
 * high delay sample and so as the mode fact; RSS and feed ages are sent as events; a window
 * without event-loop data sends no delay (never NaN); database writes are timed and a failing one
 * is reported with its error. Also the lease helpers: holder ids, the watchdog's verdict, the
 * boot preemption rule.
 */
import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { ModeEvents } from '../../machines/mode.machine.ts';
import { watchdogMachine, WatchdogConfigSchema, WatchdogEvents, type WatchdogEmittedEvent, type WatchdogEvent } from '../../machines/watchdog.machine.ts';
import { deadLocalRuntime, holderId, judgeLease, parseHolder } from '../../src/ops/watchdog-lease.ts';
import { FeedAgeTracker, measureDbWrite, WatchdogSampler } from '../../src/ops/watchdog-sampler.ts';
import type { Lease } from '../../src/store/lease-repository.ts';

const T0 = 1_700_000_000_000;

function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // a wedged handler
  }
}

describe('watchdog sampler', () => {
  it('a blocked event loop becomes a high delay sample and the mode fact; RSS and feed ages are sent too', async () => {
    const clock = new SimulatedClock();
    clock.set(T0);
    const wd = createActor(watchdogMachine, { clock, input: { now: T0, config: WatchdogConfigSchema.parse({ eventLoopDelayMs: 200, feedStaleMs: 5_000 }) } });
    const emitted: WatchdogEmittedEvent[] = [];
    wd.on('*', (e) => emitted.push(e as WatchdogEmittedEvent));
    wd.start();
    const sent: WatchdogEvent[] = [];
    const feed = new FeedAgeTracker();
    feed.seen('ws', T0 - 1_000);
    feed.seen('ws', T0 - 2_000); // never moves back
    const sampler = new WatchdogSampler({
      send: (e) => {
        sent.push(e);
        wd.send(e);
      },
      now: () => clock.now(),
      resolutionMs: 10,
      feed: () => feed.snapshot(),
      rss: () => 123_456_789,
    });
    sampler.start();
    try {
      // Let the monitor take a few samples, then wedge the loop.
      await new Promise((r) => setTimeout(r, 60));
      blockFor(400);
      await new Promise((r) => setTimeout(r, 30));
      sampler.sample();
    } finally {
      sampler.stop();
    }
    const delay = sent.find((e) => e.type === WatchdogEvents.EVENT_LOOP_DELAY);
    expect(delay).toBeDefined();
    expect(delay!.type === WatchdogEvents.EVENT_LOOP_DELAY && delay!.maxMs).toBeGreaterThanOrEqual(300);
    expect(sent.find((e) => e.type === WatchdogEvents.MEMORY)).toEqual({ type: WatchdogEvents.MEMORY, rssBytes: 123_456_789, at: T0 });
    expect(sent.find((e) => e.type === WatchdogEvents.FEED_AGE)).toEqual({ type: WatchdogEvents.FEED_AGE, ws: T0 - 1_000, rest: null, at: T0 });
    expect(emitted.filter((e) => e.type === ModeEvents.EVENT_LOOP_DELAY)).toHaveLength(1);
  });

  it('a window without event-loop data sends no delay sample', () => {
    const sent: WatchdogEvent[] = [];
    const sampler = new WatchdogSampler({ send: (e) => sent.push(e), now: () => T0 });
    sampler.sample();
    expect(sent.map((e) => e.type)).toEqual([WatchdogEvents.MEMORY]);
    expect(sent[0]).toMatchObject({ rssBytes: expect.any(Number) });
  });

  it('measureDbWrite times a write and reports a failing one with its error', () => {
    const ok = measureDbWrite(() => T0, () => 42);
    expect(ok.result).toBe(42);
    expect(ok.event).toMatchObject({ type: WatchdogEvents.DB_WRITE, ok: true, at: T0 });
    const boom = new Error('SQLITE_BUSY: database is locked');
    const bad = measureDbWrite(() => T0, () => {
      throw boom;
    });
    expect(bad.error).toBe(boom);
    expect(bad.event).toMatchObject({ type: WatchdogEvents.DB_WRITE, ok: false, detail: 'SQLITE_BUSY: database is locked' });
  });
});

describe('lease helpers', () => {
  const lease = (o: Partial<Lease>): Lease => ({ name: 'trading', holder: 'runtime:h:1:ab', epoch: 1, acquiredAt: T0, heartbeatAt: T0, expiresAt: T0 + 10_000, releasedAt: undefined, ...o });

  it('holder ids round-trip and are new per call', () => {
    const id = holderId('runtime', { host: 'box.local', pid: 4242 });
    expect(parseHolder(id)).toMatchObject({ kind: 'runtime', host: 'box.local', pid: 4242 });
    expect(holderId('watchdog')).not.toBe(holderId('watchdog'));
    expect(parseHolder('somebody')).toBeUndefined();
  });

  it('judgeLease: none, fresh, released, mine, expiring within the grace, then act', () => {
    expect(judgeLease(undefined, 'me', T0, 5_000)).toEqual({ kind: 'none' });
    expect(judgeLease(lease({}), 'me', T0 + 9_999, 5_000)).toMatchObject({ kind: 'fresh', expiresInMs: 1 });
    expect(judgeLease(lease({ releasedAt: T0 + 1 }), 'me', T0 + 60_000, 5_000)).toMatchObject({ kind: 'released' });
    expect(judgeLease(lease({ holder: 'me' }), 'me', T0 + 60_000, 5_000)).toMatchObject({ kind: 'mine' });
    expect(judgeLease(lease({}), 'me', T0 + 14_999, 5_000)).toMatchObject({ kind: 'expiring', expiredForMs: 4_999 });
    expect(judgeLease(lease({ heartbeatAt: T0 - 2_000 }), 'me', T0 + 15_000, 5_000)).toEqual({ kind: 'act', lease: lease({ heartbeatAt: T0 - 2_000 }), silentForMs: 17_000 });
  });

  it('a boot preempts only a runtime of this host whose process is gone', () => {
    const dead = () => false;
    const alive = () => true;
    const local = holderId('runtime', { host: 'box', pid: 10 });
    expect(deadLocalRuntime(lease({ holder: local }), { host: 'box', alive: dead })).toBe(true);
    expect(deadLocalRuntime(lease({ holder: local }), { host: 'box', alive })).toBe(false);
    expect(deadLocalRuntime(lease({ holder: local }), { host: 'other', alive: dead })).toBe(false);
    expect(deadLocalRuntime(lease({ holder: holderId('watchdog', { host: 'box', pid: 10 }) }), { host: 'box', alive: dead })).toBe(false);
    expect(deadLocalRuntime(lease({ holder: 'garbage' }), { host: 'box', alive: dead })).toBe(false);
    // This very process is alive.
    expect(deadLocalRuntime(lease({ holder: holderId('runtime') }))).toBe(false);
  });
});
