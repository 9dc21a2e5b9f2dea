/**
 * The operator alert router: severity routing, de-duplication, per-channel rate limiting, an
 * outbox with retries, repetition of unacknowledged CRITICAL alerts and the daily INFO digest.
 *
 * Routing: CRITICAL → every channel (Telegram and email), repeated every `repeatMs` until
 * `ack(key)` / `ackAll()`; WARNING → Telegram (email when there is no Telegram); INFO → the digest,
 * sent once a day (and by `flushDigest()`) by email, or Telegram when there is no email.
 *
 * Invariants (trading must never wait for, nor die of, an alert):
 * - `alert()` is synchronous and never throws: it validates, de-duplicates and enqueues; all I/O
 *   happens later in per-channel pumps, each send bounded by a timeout (even a channel that
 *   ignores its AbortSignal cannot hold a pump longer than that).
 * - Channels are independent: one failing or hanging channel delays only its own outbox.
 * - Every failure is caught, counted in `stats()` and logged with secrets scrubbed (the bot token
 *   and SMTP credentials are passed in `secrets` and replaced in every logged text).
 * - Memory is bounded: the outbox of a channel holds at most `maxQueue` messages (the oldest
 *   non-critical ones are dropped first, counted), the dedup table forgets keys after their window,
 *   the digest holds at most `maxDigestKeys` keys (the rest counted).
 * - A burst never floods a channel: a token bucket per channel paces sends; when more messages
 *   wait than there are tokens, the waiting ones are collapsed into one message.
 * - Time comes from the injected `now` and timers; nothing here reads the wall clock.
 */
import type { Logger } from './logger.ts';

export const SEVERITIES = ['critical', 'warning', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];
export const CHANNEL_NAMES = ['telegram', 'email'] as const;
export type ChannelName = (typeof CHANNEL_NAMES)[number];

export interface AlertInput {
  readonly severity: Severity;
  /** De-duplication key: the same key within the window is one message, counted. */
  readonly key: string;
  readonly title: string;
  readonly detail?: string;
  /** When it happened (ms since the epoch); defaults to the router's clock. */
  readonly at?: number;
}

/** What a channel is asked to deliver. */
export interface OutgoingMessage {
  /** The highest severity of what it carries ('info' for a digest). */
  readonly severity: Severity;
  readonly subject: string;
  readonly text: string;
  /** The alert keys it carries (a collapsed message or a digest carries several). */
  readonly keys: readonly string[];
  readonly kind: 'alert' | 'repeat' | 'collapsed' | 'digest';
}

export interface ChannelSendContext {
  readonly signal: AbortSignal;
  /**
   * Per-message memory across retries: a channel with several recipients (Telegram chats) adds
   * the ones it reached, so a retry does not send them the message twice.
   */
  readonly delivered: Set<string>;
}

/** A delivery channel. `send` rejects on failure; an error may carry `retryAfterMs` (HTTP 429). */
export interface AlertChannel {
  readonly name: ChannelName;
  send(msg: OutgoingMessage, ctx: ChannelSendContext): Promise<void>;
  close?(): Promise<void>;
}

/** Timers, injectable so tests drive them by hand; the default ones are unref'd. */
export interface AlertTimers {
  set(fn: () => void, ms: number): { cancel(): void };
}

export const realTimers: AlertTimers = {
  set(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  },
};

export interface AlertRouterOptions {
  readonly channels: readonly AlertChannel[];
  readonly log?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly now?: () => number;
  readonly timers?: AlertTimers;
  /** Prefix of every subject, e.g. "keel paper". */
  readonly label?: string;
  /** Same key within this window → one message (counted). Default 5 min. */
  readonly dedupWindowMs?: number;
  /** Unacknowledged CRITICAL alerts are sent again this often. Default 5 min. */
  readonly repeatMs?: number;
  /** Token bucket per channel: burst size and refill period of one token. Default 5 / 3 s. */
  readonly rate?: { readonly burst: number; readonly refillMs: number };
  /** Per-send timeout. Default 10 s. */
  readonly sendTimeoutMs?: number;
  /** Retry backoff: base, cap and attempts before a message is given up. Default 1 s, 60 s, 8. */
  readonly retry?: { readonly baseMs: number; readonly maxMs: number; readonly attempts: number };
  readonly maxQueue?: number;
  readonly maxDigestKeys?: number;
  /** UTC hour (0-23) at which the daily digest goes out. Default 8. */
  readonly digestHourUtc?: number;
  /** Called once per message a channel accepted (for `KeelMetrics.alertSent`). */
  readonly onSent?: (channel: ChannelName, severity: Severity) => void;
  /** Strings never to appear in a log line (bot token, SMTP password). */
  readonly secrets?: readonly string[];
}

export interface ChannelStats {
  sent: number;
  failed: number;
  retried: number;
  dropped: number;
  collapsed: number;
  queued: number;
  /** Consecutive failures of the channel (0 once a send succeeds). */
  failing: number;
}

export interface AlertStats {
  received: Record<Severity, number>;
  invalid: number;
  deduplicated: number;
  repeats: number;
  undeliverable: number;
  digestPending: number;
  digestOverflow: number;
  digestsSent: number;
  unacknowledged: string[];
  channels: Partial<Record<ChannelName, ChannelStats>>;
}

const RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

interface Queued {
  msg: OutgoingMessage;
  attempts: number;
  readonly delivered: Set<string>;
}

interface ChannelState {
  readonly channel: AlertChannel;
  readonly queue: Queued[];
  readonly stats: ChannelStats;
  tokens: number;
  refilledAt: number;
  retryAt: number;
  busy: boolean;
  wake: { cancel(): void } | undefined;
}

interface Seen {
  readonly severity: Severity;
  readonly firstAt: number;
  lastAt: number;
  lastSentAt: number;
  /** Occurrences since the last message that went out for this key. */
  suppressed: number;
  total: number;
  title: string;
  detail: string;
}

interface Unacked {
  readonly key: string;
  title: string;
  detail: string;
  readonly firstAt: number;
  count: number;
  repeats: number;
  timer: { cancel(): void } | undefined;
}

interface DigestEntry {
  title: string;
  detail: string;
  count: number;
  readonly firstAt: number;
  lastAt: number;
}

/** Replaces every secret (and its URL-encoded form) in `text`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length < 4) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join('[redacted]');
  }
  return out;
}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    return cause instanceof Error ? `${e.message} (${cause.message})` : e.message;
  }
  return String(e);
}

function iso(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

export class AlertRouter {
  readonly #log: Pick<Logger, 'info' | 'warn' | 'error'> | undefined;
  readonly #now: () => number;
  readonly #timers: AlertTimers;
  readonly #label: string;
  readonly #dedupMs: number;
  readonly #repeatMs: number;
  readonly #burst: number;
  readonly #refillMs: number;
  readonly #timeoutMs: number;
  readonly #retry: { readonly baseMs: number; readonly maxMs: number; readonly attempts: number };
  readonly #maxQueue: number;
  readonly #maxDigestKeys: number;
  readonly #digestHour: number;
  readonly #onSent: ((channel: ChannelName, severity: Severity) => void) | undefined;
  readonly #secrets: readonly string[];
  readonly #channels = new Map<ChannelName, ChannelState>();
  readonly #seen = new Map<string, Seen>();
  readonly #unacked = new Map<string, Unacked>();
  readonly #digest = new Map<string, DigestEntry>();
  readonly #inflight = new Set<Promise<void>>();
  #digestTimer: { cancel(): void } | undefined;
  #closed = false;
  readonly #counts = { received: { critical: 0, warning: 0, info: 0 } as Record<Severity, number>, invalid: 0, deduplicated: 0, repeats: 0, undeliverable: 0, digestOverflow: 0, digestsSent: 0 };

  constructor(opts: AlertRouterOptions) {
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#timers = opts.timers ?? realTimers;
    this.#label = opts.label ?? 'keel';
    this.#dedupMs = opts.dedupWindowMs ?? 5 * 60_000;
    this.#repeatMs = opts.repeatMs ?? 5 * 60_000;
    this.#burst = Math.max(1, opts.rate?.burst ?? 5);
    this.#refillMs = Math.max(1, opts.rate?.refillMs ?? 3_000);
    this.#timeoutMs = opts.sendTimeoutMs ?? 10_000;
    this.#retry = opts.retry ?? { baseMs: 1_000, maxMs: 60_000, attempts: 8 };
    this.#maxQueue = Math.max(2, opts.maxQueue ?? 200);
    this.#maxDigestKeys = opts.maxDigestKeys ?? 500;
    this.#digestHour = opts.digestHourUtc ?? 8;
    this.#onSent = opts.onSent;
    this.#secrets = (opts.secrets ?? []).filter((s) => s.length >= 4);
    const t = this.#now();
    for (const channel of opts.channels) {
      if (this.#channels.has(channel.name)) throw new Error(`alert channel ${channel.name} given twice`);
      this.#channels.set(channel.name, {
        channel,
        queue: [],
        stats: { sent: 0, failed: 0, retried: 0, dropped: 0, collapsed: 0, queued: 0, failing: 0 },
        tokens: this.#burst,
        refilledAt: t,
        retryAt: 0,
        busy: false,
        wake: undefined,
      });
    }
    this.#scheduleDigest();
  }

  /** The channels this router delivers to. */
  get channels(): ChannelName[] {
    return [...this.#channels.keys()];
  }

  /**
   * Raises an alert. Synchronous, never throws, never waits for I/O.
   * @example router.alert({ severity: 'critical', key: 'mode.Emergency', title: 'Emergency: kill switch', detail: 'by telegram:42' })
   */
  alert(input: AlertInput): void {
    try {
      this.#accept(input);
    } catch (e) {
      // A bug here must not reach the trading code that raised the alert.
      this.#counts.invalid++;
      this.#logError({ err: errorText(e) }, 'alert router: alert() failed');
    }
  }

  /** Acknowledges one CRITICAL alert: its repetition stops. Returns whether it was pending. */
  ack(key: string): boolean {
    const u = this.#unacked.get(key);
    if (!u) return false;
    u.timer?.cancel();
    this.#unacked.delete(key);
    // A new occurrence after an ack is news again, not a duplicate.
    this.#seen.delete(key);
    this.#log?.info({ key }, 'alert acknowledged');
    return true;
  }

  /** Acknowledges every pending CRITICAL alert; returns their keys. */
  ackAll(by?: string): string[] {
    const keys = [...this.#unacked.keys()];
    for (const k of keys) this.ack(k);
    if (keys.length) this.#log?.info({ keys, by }, 'all alerts acknowledged');
    return keys;
  }

  /** Keys of the CRITICAL alerts still repeating. */
  unacknowledged(): string[] {
    return [...this.#unacked.keys()];
  }

  /**
   * Hands the INFO digest to its channel's outbox now (delivery continues asynchronously) and
   * starts a new one. Returns false when there was nothing to send or no channel. Never throws.
   */
  flushDigest(): boolean {
    if (this.#digest.size === 0 && this.#counts.digestOverflow === 0) return false;
    const entries = [...this.#digest.entries()].sort((a, b) => a[1].firstAt - b[1].firstAt);
    const overflow = this.#counts.digestOverflow;
    this.#digest.clear();
    this.#counts.digestOverflow = 0;
    const lines = entries.map(([key, e]) => `- ${iso(e.firstAt)} ${e.title}${e.count > 1 ? ` (x${e.count}, last ${iso(e.lastAt)})` : ''}${e.detail ? `: ${clip(e.detail, 300)}` : ''} [${key}]`);
    if (overflow) lines.push(`- and ${overflow} more events (digest full)`);
    const total = entries.reduce((a, [, e]) => a + e.count, 0) + overflow;
    const msg: OutgoingMessage = {
      severity: 'info',
      kind: 'digest',
      subject: `[${this.#label} INFO] daily digest: ${total} event${total === 1 ? '' : 's'}`,
      text: `Informational events since the last digest (${iso(this.#now())}):\n${lines.join('\n')}`,
      keys: entries.map(([k]) => k),
    };
    const target = this.#channels.has('email') ? 'email' : this.#channels.has('telegram') ? 'telegram' : undefined;
    if (!target) {
      this.#counts.undeliverable++;
      this.#log?.warn({ events: total }, 'alert digest: no channel configured; dropped');
      return false;
    }
    this.#counts.digestsSent++;
    this.#enqueue(target, msg);
    return true;
  }

  stats(): AlertStats {
    const channels: Partial<Record<ChannelName, ChannelStats>> = {};
    for (const [name, st] of this.#channels) channels[name] = { ...st.stats, queued: st.queue.length };
    return {
      received: { ...this.#counts.received },
      invalid: this.#counts.invalid,
      deduplicated: this.#counts.deduplicated,
      repeats: this.#counts.repeats,
      undeliverable: this.#counts.undeliverable,
      digestPending: this.#digest.size,
      digestOverflow: this.#counts.digestOverflow,
      digestsSent: this.#counts.digestsSent,
      unacknowledged: this.unacknowledged(),
      channels,
    };
  }

  /**
   * Stops the timers and gives the outboxes up to `drainMs` to empty (a last "stopping" alert
   * can still go out); what is left is dropped and counted. Never rejects.
   */
  async close(opts: { drainMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    const deadline = this.#now() + (opts.drainMs ?? 0);
    this.#digestTimer?.cancel();
    for (const u of this.#unacked.values()) u.timer?.cancel();
    while ((opts.drainMs ?? 0) > 0 && this.#now() < deadline && [...this.#channels.values()].some((c) => c.queue.length > 0 || c.busy)) {
      await new Promise<void>((r) => this.#timers.set(r, 20));
    }
    this.#closed = true;
    for (const st of this.#channels.values()) {
      st.wake?.cancel();
      st.stats.dropped += st.queue.length;
      st.queue.length = 0;
    }
    await Promise.allSettled([...this.#inflight]);
    await Promise.allSettled([...this.#channels.values()].map((c) => c.channel.close?.() ?? Promise.resolve()));
  }

  // ── intake ──────────────────────────────────────────────────────────────────────────────

  #accept(input: AlertInput): void {
    const severity = input?.severity;
    if (!SEVERITIES.includes(severity) || typeof input.key !== 'string' || input.key.length === 0 || typeof input.title !== 'string') {
      this.#counts.invalid++;
      this.#log?.warn({ key: typeof input?.key === 'string' ? clip(input.key, 80) : undefined }, 'alert refused: needs a severity, a key and a title');
      return;
    }
    if (this.#closed) {
      this.#counts.undeliverable++;
      return;
    }
    const key = clip(input.key, 200);
    const title = clip(input.title, 300);
    const detail = typeof input.detail === 'string' ? clip(input.detail, 3_000) : '';
    const now = this.#now();
    const at = typeof input.at === 'number' && Number.isFinite(input.at) ? input.at : now;
    this.#counts.received[severity]++;

    if (severity === 'info') {
      const d = this.#digest.get(key);
      if (d) {
        d.count++;
        d.lastAt = at;
        d.title = title;
        d.detail = detail;
      } else if (this.#digest.size < this.#maxDigestKeys) {
        this.#digest.set(key, { title, detail, count: 1, firstAt: at, lastAt: at });
      } else {
        this.#counts.digestOverflow++;
      }
      return;
    }

    this.#forgetOld(now);
    const seen = this.#seen.get(key);
    // A duplicate: same key, not more severe than what went out, still inside the window (or a
    // CRITICAL still repeating: the repeat carries the count).
    const pending = this.#unacked.get(key);
    if (seen && RANK[severity] >= RANK[seen.severity] && (now - seen.lastSentAt < this.#dedupMs || pending)) {
      seen.suppressed++;
      seen.total++;
      seen.lastAt = at;
      seen.title = title;
      seen.detail = detail;
      if (pending) {
        pending.count++;
        pending.title = title;
        pending.detail = detail;
      }
      this.#counts.deduplicated++;
      return;
    }
    const earlier = seen && RANK[severity] >= RANK[seen.severity] ? seen.suppressed : 0;
    this.#seen.set(key, { severity, firstAt: at, lastAt: at, lastSentAt: now, suppressed: 0, total: 1 + (seen?.total ?? 0), title, detail });
    const sev = severity.toUpperCase();
    const msg: OutgoingMessage = {
      severity,
      kind: 'alert',
      keys: [key],
      subject: `[${this.#label} ${sev}] ${title}`,
      text: `${sev}: ${title}${detail ? `\n${detail}` : ''}\n${earlier ? `(${earlier} more occurrence${earlier === 1 ? '' : 's'} since the last message)\n` : ''}at ${iso(at)} · key ${key}${severity === 'critical' ? '\nRepeated until acknowledged (/ack).' : ''}`,
    };
    this.#route(msg);
    if (severity === 'critical') this.#trackCritical(key, title, detail, at);
  }

  #route(msg: OutgoingMessage): void {
    const wanted: ChannelName[] = msg.severity === 'critical' ? ['telegram', 'email'] : ['telegram'];
    let targets = wanted.filter((c) => this.#channels.has(c));
    if (targets.length === 0) targets = [...this.#channels.keys()];
    if (targets.length === 0) {
      this.#counts.undeliverable++;
      this.#log?.warn({ severity: msg.severity, keys: msg.keys, subject: msg.subject }, 'alert: no channel configured; logged only');
      return;
    }
    for (const t of targets) this.#enqueue(t, msg);
  }

  #trackCritical(key: string, title: string, detail: string, at: number): void {
    const u: Unacked = { key, title, detail, firstAt: at, count: 1, repeats: 0, timer: undefined };
    this.#unacked.get(key)?.timer?.cancel();
    this.#unacked.set(key, u);
    const arm = () => {
      u.timer = this.#timers.set(() => {
        if (this.#closed || this.#unacked.get(key) !== u) return;
        u.repeats++;
        this.#counts.repeats++;
        const seen = this.#seen.get(key);
        if (seen) {
          seen.lastSentAt = this.#now();
          seen.suppressed = 0;
        }
        this.#route({
          severity: 'critical',
          kind: 'repeat',
          keys: [key],
          subject: `[${this.#label} CRITICAL] (repeat ${u.repeats}) ${u.title}`,
          text: `CRITICAL, NOT ACKNOWLEDGED (repeat ${u.repeats}): ${u.title}${u.detail ? `\n${u.detail}` : ''}\nfirst at ${iso(u.firstAt)}, ${u.count} occurrence${u.count === 1 ? '' : 's'} · key ${key}\nSend /ack to acknowledge.`,
        });
        arm();
      }, this.#repeatMs);
    };
    arm();
  }

  #forgetOld(now: number): void {
    if (this.#seen.size < 64) return;
    for (const [k, s] of this.#seen) if (now - s.lastSentAt >= this.#dedupMs && !this.#unacked.has(k)) this.#seen.delete(k);
  }

  #scheduleDigest(): void {
    const now = this.#now();
    const day = 86_400_000;
    let next = Math.floor(now / day) * day + this.#digestHour * 3_600_000;
    if (next <= now) next += day;
    this.#digestTimer = this.#timers.set(() => {
      if (this.#closed) return;
      this.flushDigest();
      this.#scheduleDigest();
    }, next - now);
  }

  // ── outbox ──────────────────────────────────────────────────────────────────────────────

  #enqueue(name: ChannelName, msg: OutgoingMessage): void {
    const st = this.#channels.get(name);
    if (!st) return;
    st.queue.push({ msg, attempts: 0, delivered: new Set() });
    // Most severe first, FIFO within a severity.
    st.queue.sort((a, b) => RANK[a.msg.severity] - RANK[b.msg.severity]);
    while (st.queue.length > this.#maxQueue) {
      // Drop the newest of the least severe: a flood of warnings must not push out a critical.
      const victim = st.queue.pop()!;
      st.stats.dropped++;
      this.#log?.warn({ channel: name, severity: victim.msg.severity, keys: victim.msg.keys }, 'alert outbox full: message dropped');
    }
    this.#kick(st);
  }

  #kick(st: ChannelState): void {
    if (st.busy || this.#closed) return;
    const p = this.#pump(st).catch((e: unknown) => this.#logError({ channel: st.channel.name, err: errorText(e) }, 'alert pump failed'));
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p));
  }

  #wakeAt(st: ChannelState, at: number): void {
    st.wake?.cancel();
    st.wake = this.#timers.set(() => {
      st.wake = undefined;
      this.#kick(st);
    }, at - this.#now());
  }

  /** Continuous token bucket: `burst` tokens, one more every `refillMs`. */
  #refill(st: ChannelState, now: number): void {
    st.tokens = Math.min(this.#burst, st.tokens + Math.max(0, now - st.refilledAt) / this.#refillMs);
    st.refilledAt = now;
  }

  async #pump(st: ChannelState): Promise<void> {
    st.busy = true;
    try {
      while (st.queue.length > 0 && !this.#closed) {
        const now = this.#now();
        if (now < st.retryAt) return this.#wakeAt(st, st.retryAt);
        this.#refill(st, now);
        if (st.tokens < 1) return this.#wakeAt(st, now + Math.ceil((1 - st.tokens) * this.#refillMs));
        // The last token of a drained bucket carries the whole backlog, collapsed into one message.
        const item = st.tokens < 2 && st.queue.length > 1 ? this.#collapse(st) : st.queue.shift()!;
        st.tokens -= 1;
        const ok = await this.#sendOne(st, item);
        if (!ok) {
          item.attempts++;
          if (item.attempts >= this.#retry.attempts) {
            st.stats.failed++;
            this.#logError({ channel: st.channel.name, severity: item.msg.severity, keys: item.msg.keys, attempts: item.attempts }, 'alert given up after repeated failures');
          } else {
            st.stats.retried++;
            st.queue.unshift(item);
          }
        }
      }
    } finally {
      st.busy = false;
      st.stats.queued = st.queue.length;
    }
  }

  #collapse(st: ChannelState): Queued {
    const items = st.queue.splice(0);
    st.stats.collapsed += items.length;
    const top = items.reduce<Severity>((s, i) => (RANK[i.msg.severity] < RANK[s] ? i.msg.severity : s), 'info');
    const lines = items.map((i) => `- ${i.msg.subject}`);
    const text = `${items.length} alerts (collapsed by rate limiting):\n${clip(lines.join('\n'), 3_000)}\n\n${clip(items[0]!.msg.text, 600)}`;
    return {
      msg: { severity: top, kind: 'collapsed', keys: [...new Set(items.flatMap((i) => i.msg.keys))], subject: `[${this.#label} ${top.toUpperCase()}] ${items.length} alerts: ${items[0]!.msg.subject.replace(/^\[[^\]]*\]\s*/, '')}`, text },
      attempts: Math.min(...items.map((i) => i.attempts)),
      // Recipients that had some of these already still get the summary: it says more.
      delivered: new Set(),
    };
  }

  async #sendOne(st: ChannelState, item: Queued): Promise<boolean> {
    const ac = new AbortController();
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.#timers.set(() => {
        ac.abort();
        reject(new Error(`timed out after ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
    });
    try {
      await Promise.race([Promise.resolve().then(() => st.channel.send(item.msg, { signal: ac.signal, delivered: item.delivered })), timeout]);
      st.stats.sent++;
      st.stats.failing = 0;
      st.retryAt = 0;
      try {
        this.#onSent?.(st.channel.name, item.msg.severity);
      } catch (e) {
        this.#logError({ err: errorText(e) }, 'alert onSent hook failed');
      }
      this.#log?.info({ channel: st.channel.name, severity: item.msg.severity, kind: item.msg.kind, keys: item.msg.keys }, 'alert sent');
      return true;
    } catch (e) {
      st.stats.failing++;
      const retryAfter = (e as { retryAfterMs?: unknown }).retryAfterMs;
      const backoff = Math.min(this.#retry.maxMs, this.#retry.baseMs * 2 ** Math.min(20, st.stats.failing - 1));
      const waitMs = typeof retryAfter === 'number' && Number.isFinite(retryAfter) ? Math.min(this.#retry.maxMs * 10, Math.max(backoff, retryAfter)) : backoff;
      st.retryAt = this.#now() + waitMs;
      this.#log?.warn({ channel: st.channel.name, severity: item.msg.severity, keys: item.msg.keys, attempt: item.attempts + 1, retryInMs: waitMs, err: scrub(errorText(e), this.#secrets) }, 'alert send failed; will retry');
      return false;
    } finally {
      timer?.cancel();
      // Swallow the timeout promise's rejection when the send won the race.
      timeout.catch(() => {});
    }
  }

  #logError(obj: Record<string, unknown>, msg: string): void {
    try {
      const clean = Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, typeof v === 'string' ? scrub(v, this.#secrets) : v]));
      this.#log?.error(clean, msg);
    } catch {
      // logging must not throw into the caller either
    }
  }
}
