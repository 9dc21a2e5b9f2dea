/**
 * AlertRouter unit tests: in-memory channels and hand-driven timers (no wall clock), so every
 * routing, de-duplication, pacing, retry and repetition decision is checked deterministically.
 * The real protocol peers (SMTP, Telegram Bot API) are in tests/integration/alerts-*.test.ts.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { AlertRouter, scrub, type AlertChannel, type AlertTimers, type ChannelName, type ChannelSendContext, type OutgoingMessage, type Severity } from '../../src/ops/alerts.ts';
import { alertForModeChange } from '../../src/ops/alerts-wiring.ts';

/** Timers driven by `advance`: due callbacks run in time order, with microtasks flushed between. */
class ManualClock implements AlertTimers {
  t = 1_700_000_000_000;
  #seq = 0;
  readonly #due: { at: number; seq: number; fn: () => void; live: boolean }[] = [];
  now = () => this.t;
  set(fn: () => void, ms: number) {
    const e = { at: this.t + Math.max(0, ms), seq: this.#seq++, fn, live: true };
    this.#due.push(e);
    return { cancel: () => void (e.live = false) };
  }
  async flush(): Promise<void> {
    for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
  }
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await this.flush();
    for (;;) {
      const next = this.#due.filter((e) => e.live && e.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!next) break;
      next.live = false;
      this.t = Math.max(this.t, next.at);
      next.fn();
      await this.flush();
    }
    this.t = end;
    await this.flush();
  }
}

type Mode = 'ok' | 'fail' | 'hang' | 'throw';

class FakeChannel implements AlertChannel {
  readonly name: ChannelName;
  readonly got: OutgoingMessage[] = [];
  mode: Mode = 'ok';
  attempts = 0;
  error = 'down';
  constructor(name: ChannelName) {
    this.name = name;
  }
  send(msg: OutgoingMessage, _ctx: ChannelSendContext): Promise<void> {
    this.attempts++;
    if (this.mode === 'throw') throw new Error('synchronous bug');
    if (this.mode === 'fail') return Promise.reject(new Error(this.error));
    if (this.mode === 'hang') return new Promise(() => {});
    this.got.push(msg);
    return Promise.resolve();
  }
}

interface LogLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string;
}

function rig(opts: { channels?: ChannelName[]; burst?: number; refillMs?: number; secrets?: string[] } = {}) {
  const clock = new ManualClock();
  const chans = new Map<ChannelName, FakeChannel>((opts.channels ?? ['telegram', 'email']).map((n) => [n, new FakeChannel(n)]));
  const logs: LogLine[] = [];
  const log = {
    info: (obj: object, msg: string) => void logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj: object, msg: string) => void logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj: object, msg: string) => void logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  const sentHook: [ChannelName, Severity][] = [];
  const router = new AlertRouter({
    channels: [...chans.values()],
    log: log as never,
    now: clock.now,
    timers: clock,
    label: 'keel test',
    dedupWindowMs: 60_000,
    repeatMs: 300_000,
    rate: { burst: opts.burst ?? 5, refillMs: opts.refillMs ?? 1_000 },
    sendTimeoutMs: 5_000,
    retry: { baseMs: 1_000, maxMs: 8_000, attempts: 4 },
    digestHourUtc: 8,
    secrets: opts.secrets ?? [],
    onSent: (c, s) => void sentHook.push([c, s]),
  });
  return { clock, router, tg: chans.get('telegram'), email: chans.get('email'), logs, sentHook };
}

describe('AlertRouter: severity routing', () => {
  it('CRITICAL goes to Telegram and email, WARNING to Telegram only, INFO waits for the digest', async () => {
    const { clock, router, tg, email, sentHook } = rig();
    router.alert({ severity: 'critical', key: 'c1', title: 'order breaker open', detail: 'exchange 5xx' });
    router.alert({ severity: 'warning', key: 'w1', title: 'feed on REST' });
    router.alert({ severity: 'info', key: 'i1', title: 'daily PnL +12.5' });
    await clock.advance(10);
    expect(tg!.got.map((m) => m.subject)).toEqual(['[keel test CRITICAL] order breaker open', '[keel test WARNING] feed on REST']);
    expect(email!.got.map((m) => m.subject)).toEqual(['[keel test CRITICAL] order breaker open']);
    expect(email!.got[0]!.text).toContain('exchange 5xx');
    expect(sentHook).toEqual(expect.arrayContaining([['telegram', 'critical'], ['email', 'critical'], ['telegram', 'warning']]));
    expect(sentHook).toHaveLength(3);
    expect(router.stats().digestPending).toBe(1);
  });

  it('the digest goes by email (Telegram when there is no email), with every event and its count', async () => {
    const { clock, router, tg, email } = rig();
    router.alert({ severity: 'info', key: 'start', title: 'keel started' });
    router.alert({ severity: 'info', key: 'recon', title: 'reconciliation clean' });
    router.alert({ severity: 'info', key: 'recon', title: 'reconciliation clean' });
    expect(router.flushDigest()).toBe(true);
    await clock.advance(10);
    expect(tg!.got).toHaveLength(0);
    expect(email!.got).toHaveLength(1);
    const d = email!.got[0]!;
    expect(d.kind).toBe('digest');
    expect(d.subject).toBe('[keel test INFO] daily digest: 3 events');
    expect(d.text).toMatch(/keel started \[start\]/);
    expect(d.text).toMatch(/reconciliation clean \(x2, last .*\) \[recon\]/);
    expect(router.flushDigest()).toBe(false);

    const only = rig({ channels: ['telegram'] });
    only.router.alert({ severity: 'info', key: 'x', title: 'x happened' });
    only.router.flushDigest();
    await only.clock.advance(10);
    expect(only.tg!.got.map((m) => m.kind)).toEqual(['digest']);
  });

  it('the digest goes out by itself once a day at the configured UTC hour', async () => {
    const { clock, router, email } = rig();
    router.alert({ severity: 'info', key: 'a', title: 'a' });
    await clock.advance(86_400_000);
    expect(email!.got.filter((m) => m.kind === 'digest')).toHaveLength(1);
    router.alert({ severity: 'info', key: 'b', title: 'b' });
    await clock.advance(86_400_000);
    expect(email!.got.filter((m) => m.kind === 'digest')).toHaveLength(2);
    expect(email!.got[1]!.text).toContain('b [b]');
    expect(email!.got[1]!.text).not.toContain('a [a]');
  });

  it('WARNING falls back to email when Telegram is not configured; no channel at all is counted, not thrown', async () => {
    const e = rig({ channels: ['email'] });
    e.router.alert({ severity: 'warning', key: 'w', title: 'degraded' });
    await e.clock.advance(10);
    expect(e.email!.got).toHaveLength(1);
    const none = rig({ channels: [] });
    expect(() => none.router.alert({ severity: 'critical', key: 'c', title: 'nobody listens' })).not.toThrow();
    expect(none.router.stats().undeliverable).toBe(1);
  });
});

describe('AlertRouter: de-duplication', () => {
  it('the same key within the window is one message, counted; after the window the count is reported', async () => {
    const { clock, router, tg } = rig();
    for (let i = 0; i < 5; i++) router.alert({ severity: 'warning', key: 'feed.stale', title: 'feed stale' });
    await clock.advance(10);
    expect(tg!.got).toHaveLength(1);
    expect(router.stats().deduplicated).toBe(4);
    await clock.advance(60_000);
    router.alert({ severity: 'warning', key: 'feed.stale', title: 'feed stale again' });
    await clock.advance(10);
    expect(tg!.got).toHaveLength(2);
    expect(tg!.got[1]!.text).toContain('(4 more occurrences since the last message)');
  });

  it('a more severe alert with the same key is not a duplicate', async () => {
    const { clock, router, tg, email } = rig();
    router.alert({ severity: 'warning', key: 'dd', title: 'drawdown 5%' });
    router.alert({ severity: 'critical', key: 'dd', title: 'drawdown 10%' });
    router.alert({ severity: 'warning', key: 'dd', title: 'drawdown 6%' });
    await clock.advance(10);
    expect(tg!.got.map((m) => m.subject).sort()).toEqual(['[keel test CRITICAL] drawdown 10%', '[keel test WARNING] drawdown 5%']);
    expect(email!.got.map((m) => m.subject)).toEqual(['[keel test CRITICAL] drawdown 10%']);
    expect(router.stats().deduplicated).toBe(1);
  });
});

describe('AlertRouter: CRITICAL repetition', () => {
  it('repeats an unacknowledged CRITICAL on both channels every repeatMs until ack(key)', async () => {
    const { clock, router, tg, email } = rig();
    router.alert({ severity: 'critical', key: 'mode.Emergency', title: 'Emergency' });
    router.alert({ severity: 'critical', key: 'mode.Emergency', title: 'Emergency' });
    await clock.advance(10);
    await clock.advance(300_000);
    await clock.advance(300_000);
    const repeats = (c: FakeChannel) => c.got.filter((m) => m.kind === 'repeat');
    expect(repeats(tg!)).toHaveLength(2);
    expect(repeats(email!)).toHaveLength(2);
    expect(repeats(email!)[1]!.subject).toBe('[keel test CRITICAL] (repeat 2) Emergency');
    expect(repeats(email!)[0]!.text).toContain('2 occurrences');
    expect(router.unacknowledged()).toEqual(['mode.Emergency']);
    expect(router.ack('mode.Emergency')).toBe(true);
    await clock.advance(900_000);
    expect(repeats(tg!)).toHaveLength(2);
    expect(router.unacknowledged()).toEqual([]);
    // After an ack, the same key is news again.
    router.alert({ severity: 'critical', key: 'mode.Emergency', title: 'Emergency again' });
    await clock.advance(10);
    expect(email!.got.at(-1)!.subject).toBe('[keel test CRITICAL] Emergency again');
  });

  it('ackAll stops every repetition and returns the keys', async () => {
    const { clock, router, email } = rig();
    router.alert({ severity: 'critical', key: 'a', title: 'a' });
    router.alert({ severity: 'critical', key: 'b', title: 'b' });
    await clock.advance(10);
    expect(router.ackAll('telegram:1').sort()).toEqual(['a', 'b']);
    const before = email!.got.length;
    await clock.advance(1_000_000);
    expect(email!.got.length).toBe(before);
    expect(router.ack('a')).toBe(false);
  });
});

describe('AlertRouter: rate limiting', () => {
  it('a burst beyond the bucket is collapsed into one message carrying the rest; nothing is lost', async () => {
    const { clock, router, tg } = rig({ channels: ['telegram'], burst: 3, refillMs: 10_000 });
    for (let i = 0; i < 10; i++) router.alert({ severity: 'warning', key: `w${i}`, title: `warning ${i}` });
    await clock.advance(10);
    expect(tg!.got).toHaveLength(3);
    expect(tg!.got.slice(0, 2).map((m) => m.kind)).toEqual(['alert', 'alert']);
    const c = tg!.got[2]!;
    expect(c.kind).toBe('collapsed');
    expect(c.keys).toEqual(['w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9']);
    expect(c.text).toContain('8 alerts (collapsed by rate limiting)');
    expect(router.stats().channels.telegram!.collapsed).toBe(8);
    // The bucket is empty: the next alert waits for a token instead of going out at once.
    router.alert({ severity: 'warning', key: 'late', title: 'late' });
    await clock.advance(5_000);
    expect(tg!.got).toHaveLength(3);
    await clock.advance(5_000);
    expect(tg!.got.map((m) => m.keys[0])).toContain('late');
  });

  it('CRITICAL goes ahead of queued warnings', async () => {
    const { clock, router, tg } = rig({ channels: ['telegram'], burst: 1, refillMs: 10_000 });
    router.alert({ severity: 'warning', key: 'first', title: 'first' });
    await clock.advance(10);
    router.alert({ severity: 'warning', key: 'w', title: 'w' });
    router.alert({ severity: 'critical', key: 'c', title: 'c' });
    await clock.advance(10_000);
    expect(tg!.got[1]!.severity).toBe('critical');
  });

  it('messages per channel never exceed the bucket over any stretch of time (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 3_000 }), sev: fc.constantFrom<Severity>('critical', 'warning', 'info'), key: fc.integer({ min: 0, max: 6 }) }), { minLength: 1, maxLength: 40 }),
        async (events) => {
          const burst = 2;
          const refillMs = 1_000;
          const { clock, router, tg, email } = rig({ burst, refillMs });
          const sendTimes = new Map<ChannelName, number[]>([['telegram', []], ['email', []]]);
          for (const ch of [tg!, email!]) {
            const orig = ch.send.bind(ch);
            ch.send = (m, ctx) => {
              sendTimes.get(ch.name)!.push(clock.t);
              return orig(m, ctx);
            };
          }
          for (const e of events) {
            await clock.advance(e.dt);
            router.alert({ severity: e.sev, key: `k${e.key}`, title: `t${e.key}` });
          }
          await clock.advance(60_000);
          for (const times of sendTimes.values()) {
            for (let i = 0; i < times.length; i++) {
              // In any window [t_i, t_i + w], at most burst + w / refillMs sends.
              for (let j = i; j < times.length; j++) expect(j - i + 1).toBeLessThanOrEqual(burst + Math.floor((times[j]! - times[i]!) / refillMs));
            }
          }
          // Every non-info key raised reached Telegram in some message; every critical key reached email.
          const tgKeys = new Set(tg!.got.flatMap((m) => m.keys));
          const emKeys = new Set(email!.got.flatMap((m) => m.keys));
          for (const e of events) {
            if (e.sev !== 'info') expect(tgKeys.has(`k${e.key}`)).toBe(true);
            if (e.sev === 'critical') expect(emKeys.has(`k${e.key}`)).toBe(true);
          }
          await router.close();
        },
      ),
      { numRuns: 60, seed: 5 },
    );
  });
});

describe('AlertRouter: failures never block', () => {
  it('a failing Telegram does not hold email; it is retried with backoff and delivered once it recovers', async () => {
    const { clock, router, tg, email, logs } = rig();
    tg!.mode = 'fail';
    router.alert({ severity: 'critical', key: 'c', title: 'critical while telegram is down' });
    await clock.advance(10);
    expect(email!.got).toHaveLength(1);
    expect(tg!.got).toHaveLength(0);
    expect(tg!.attempts).toBe(1);
    await clock.advance(1_000); // backoff 1 s
    expect(tg!.attempts).toBe(2);
    await clock.advance(1_000); // backoff now 2 s: not yet
    expect(tg!.attempts).toBe(2);
    tg!.mode = 'ok';
    await clock.advance(1_000);
    expect(tg!.got).toHaveLength(1);
    const s = router.stats().channels.telegram!;
    expect(s.retried).toBe(2);
    expect(s.sent).toBe(1);
    expect(s.failing).toBe(0);
    expect(logs.filter((l) => l.msg === 'alert send failed; will retry')).toHaveLength(2);
  });

  it('a hanging channel times out; alert() returned at once; the other channel is unaffected', async () => {
    const { clock, router, tg, email } = rig();
    tg!.mode = 'hang';
    router.alert({ severity: 'critical', key: 'c', title: 'x' });
    router.alert({ severity: 'critical', key: 'd', title: 'y' });
    await clock.advance(10);
    expect(email!.got).toHaveLength(2);
    expect(router.stats().channels.telegram!.failing).toBe(0);
    await clock.advance(5_000);
    expect(router.stats().channels.telegram!.failing).toBe(1);
    expect(router.stats().channels.telegram!.queued).toBe(2);
  });

  it('honours a channel\'s retryAfterMs (Telegram 429) over the shorter backoff', async () => {
    const { clock, router, tg } = rig({ channels: ['telegram'] });
    const orig = tg!.send.bind(tg);
    let first = true;
    tg!.send = (m, ctx) => {
      if (first) {
        first = false;
        tg!.attempts++;
        return Promise.reject(Object.assign(new Error('429'), { retryAfterMs: 5_000 }));
      }
      return orig(m, ctx);
    };
    router.alert({ severity: 'warning', key: 'w', title: 'w' });
    await clock.advance(4_900);
    expect(tg!.got).toHaveLength(0);
    await clock.advance(200);
    expect(tg!.got).toHaveLength(1);
  });

  it('gives a message up after the configured attempts, counted', async () => {
    const { clock, router, tg } = rig({ channels: ['telegram'] });
    tg!.mode = 'fail';
    router.alert({ severity: 'warning', key: 'w', title: 'w' });
    await clock.advance(60_000);
    expect(tg!.attempts).toBe(4);
    expect(router.stats().channels.telegram).toMatchObject({ failed: 1, retried: 3, queued: 0 });
  });

  it('alert() never throws: bad input is counted; a channel that throws synchronously is a failed send', async () => {
    const { clock, router, tg, email } = rig();
    const bad = [null, undefined, {}, { severity: 'fatal', key: 'k', title: 't' }, { severity: 'info', key: '', title: 't' }, { severity: 'warning', key: 'k' }];
    for (const b of bad) expect(() => router.alert(b as never)).not.toThrow();
    expect(router.stats().invalid).toBe(bad.length);
    tg!.mode = 'throw';
    expect(() => router.alert({ severity: 'critical', key: 'c', title: 't' })).not.toThrow();
    await clock.advance(10);
    expect(email!.got).toHaveLength(1);
    expect(router.stats().channels.telegram!.failing).toBe(1);
  });

  it('a throwing onSent hook is logged, not propagated', async () => {
    const clock = new ManualClock();
    const ch = new FakeChannel('telegram');
    const errors: string[] = [];
    const router = new AlertRouter({ channels: [ch], now: clock.now, timers: clock, log: { info: () => {}, warn: () => {}, error: (_o: object, m: string) => void errors.push(m) } as never, onSent: () => { throw new Error('metrics broke'); } });
    router.alert({ severity: 'warning', key: 'k', title: 't' });
    await clock.advance(10);
    expect(ch.got).toHaveLength(1);
    expect(errors).toEqual(['alert onSent hook failed']);
  });

  it('the outbox is bounded: the least severe messages are dropped first', async () => {
    const clock = new ManualClock();
    const ch = new FakeChannel('telegram');
    ch.mode = 'hang';
    const router = new AlertRouter({ channels: [ch], now: clock.now, timers: clock, maxQueue: 5, rate: { burst: 100, refillMs: 1 } });
    router.alert({ severity: 'warning', key: 'first', title: 'in flight' });
    await clock.advance(1);
    for (let i = 0; i < 10; i++) router.alert({ severity: 'warning', key: `w${i}`, title: 'w' });
    router.alert({ severity: 'critical', key: 'c', title: 'c' });
    const s = router.stats().channels.telegram!;
    expect(s.queued).toBe(5);
    expect(s.dropped).toBe(6);
    ch.mode = 'ok';
    await clock.advance(20_000);
    expect(ch.got.flatMap((m) => m.keys)).toContain('c');
  });
});

describe('AlertRouter: secrets', () => {
  it('a channel error carrying the bot token is logged with the token scrubbed', async () => {
    const token = '123456:AAH-very-secret-token_xyz';
    const { clock, router, tg, logs } = rig({ channels: ['telegram'], secrets: [token] });
    tg!.mode = 'fail';
    tg!.error = `connect ECONNREFUSED https://api.telegram.org/bot${token}/sendMessage and ${encodeURIComponent(token)}`;
    router.alert({ severity: 'warning', key: 'k', title: 't' });
    await clock.advance(10);
    const text = JSON.stringify(logs);
    expect(text).toContain('[redacted]');
    expect(text).not.toContain('very-secret');
  });

  it('scrub replaces plain and URL-encoded forms', () => {
    expect(scrub('a p@ss:w0rd b p%40ss%3Aw0rd', ['p@ss:w0rd'])).toBe('a [redacted] b [redacted]');
  });
});

describe('alertForModeChange', () => {
  it('maps Degraded to WARNING, Critical and Emergency to CRITICAL, Normal to INFO, one key per mode', () => {
    const base = { from: 'Normal' as const, reason: 'r', at: 1, conditions: [{ key: 'feed_ws_down' }] };
    expect(alertForModeChange({ ...base, to: 'Degraded' })).toMatchObject({ severity: 'warning', key: 'mode.Degraded', detail: 'active conditions: feed_ws_down' });
    expect(alertForModeChange({ ...base, to: 'Critical' }).severity).toBe('critical');
    expect(alertForModeChange({ ...base, to: 'Emergency' })).toMatchObject({ severity: 'critical', key: 'mode.Emergency', title: 'mode Normal → Emergency: r' });
    expect(alertForModeChange({ ...base, from: 'Degraded', to: 'Normal' }).severity).toBe('info');
  });
});
