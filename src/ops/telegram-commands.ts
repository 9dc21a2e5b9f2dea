/**
 * Operator commands over Telegram: long-polls `getUpdates` and answers `/status`, `/positions`,
 * `/pnl`, `/pause`, `/resume`, `/flatten`, `/kill`, `/ack` (and `/help`) through an injected
 * `ControlPort`, shaped like the runtime's control handler (src/ops/http-server.ts ControlCall).
 *
 * Invariants:
 * - Only messages from the allowed chat ids act or get an answer; any other chat is ignored
 *   (logged and audited, no reply: the bot does not reveal itself).
 * - `/flatten` and `/kill` never act on the first message: the bot answers with a one-time code
 *   and only `/confirm <code>` from the same chat, within `confirmTtlMs`, executes. A code is used
 *   at most once; a wrong code or a new command cancels it.
 * - Every control call carries `by = telegram:<chat id>` and is audited (`control.<action>`, as
 *   the HTTP control API does) before it runs; every command is audited as `telegram.<command>`.
 * - The poller never throws and never stops by itself: a failed poll backs off (1 s → 30 s) and
 *   retries; a slow control call (flatten) does not stop the polling.
 * - Messages older than `maxAgeMs` (queued while keel was down) are refused, not executed.
 */
import { randomInt } from 'node:crypto';
import { Decimal } from '../domain/decimal.ts';
import type { Logger } from './logger.ts';
import type { ControlAction } from './http-server.ts';
import { scrub } from './alerts.ts';
import type { TelegramBotApi, TelegramUpdate } from './telegram-bot-api.ts';

/** What the commands need from the runtime: its status and its control handler. */
export interface ControlPort {
  status(): unknown;
  control(action: ControlAction, by: string): Promise<{ status: number; body: unknown }>;
  /** Written for every command from an allowed chat and every refused message. */
  audit?(entry: { actor: string; action: string; detail: unknown }): void;
}

/** What `/ack` needs from the alert router. */
export interface AlertAcknowledger {
  ackAll(by?: string): string[];
}

export interface TelegramCommandsOptions {
  readonly api: TelegramBotApi;
  readonly allowedChatIds: readonly string[];
  readonly control: ControlPort;
  readonly alerts?: AlertAcknowledger;
  readonly log?: Pick<Logger, 'info' | 'warn' | 'error'>;
  readonly now?: () => number;
  /** One-time confirmation codes; default a uniform 4-digit code from node:crypto. */
  readonly newCode?: () => string;
  readonly confirmTtlMs?: number;
  /** Long-poll duration asked of Telegram. Default 25 s. */
  readonly pollTimeoutS?: number;
  readonly maxAgeMs?: number;
  /** Never appear in a log line (the bot token). */
  readonly secrets?: readonly string[];
}

export interface TelegramCommandStats {
  polls: number;
  pollErrors: number;
  updates: number;
  ignoredChats: number;
  commands: number;
  executed: number;
  replyErrors: number;
}

interface Pending {
  readonly action: 'flatten' | 'kill';
  readonly code: string;
  readonly expiresAt: number;
}

const HELP = [
  '/status - mode, gate, equity, positions, orders',
  '/positions - open positions',
  '/pnl - equity and recent trades',
  '/pause - stop new entries',
  '/resume - allow new entries again',
  '/flatten - cancel everything and close every position (asks for confirmation)',
  '/kill - kill switch: Emergency, then flatten (asks for confirmation)',
  '/ack - acknowledge alerts and leave Emergency after a clean reconciliation',
].join('\n');

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {});
const arr = (v: unknown): Rec[] => (Array.isArray(v) ? v.map(rec) : []);
const str = (v: unknown, dflt = '?'): string => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : dflt);

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

/** `/status` text from the runtime's status object. */
export function formatStatus(status: unknown): string {
  const s = rec(status);
  const feed = rec(s['feed']);
  const rc = rec(s['lastReconciliation']);
  const conditions = Array.isArray(s['conditions']) ? (s['conditions'] as unknown[]).map((c) => str(c)).join(', ') : '';
  return [
    `mode: ${str(s['mode'])} · gate: ${str(s['gate'])}`,
    `supervisor: ${typeof s['supervisor'] === 'string' ? s['supervisor'] : JSON.stringify(s['supervisor'] ?? '?')}`,
    `venue: ${str(rec(s['venue'])['network'])} · account ${str(s['account'])}`,
    `feed: ${str(feed['source'])}${feed['stale'] === true ? ' (STALE)' : ''}`,
    `equity: ${str(s['equity'], 'n/a')}`,
    `positions: ${arr(s['positions']).length} · open orders: ${arr(s['openOrders']).length}`,
    ...(conditions ? [`conditions: ${conditions}`] : []),
    `last reconciliation: ${s['lastReconciliation'] ? `${rc['clean'] === true ? 'clean' : 'NOT clean'} ${str(rc['summary'], '')}`.trim() : 'none yet'}`,
  ].join('\n');
}

export function formatPositions(status: unknown): string {
  const ps = arr(rec(status)['positions']);
  if (ps.length === 0) return 'no open positions';
  return ps.map((p) => `${str(p['coin'])} ${str(p['szi'])} @ ${str(p['entryPx'])} (${str(p['stage'], '-')}, stop ${p['stopCloid'] ? 'on' : 'NONE'})`).join('\n');
}

export function formatPnl(status: unknown): string {
  const s = rec(status);
  const trades = arr(s['recentTrades']);
  let sum = new Decimal(0);
  let counted = 0;
  for (const t of trades) {
    try {
      sum = sum.plus(new Decimal(str(t['netPnl'], '0')));
      counted++;
    } catch {
      // a malformed number is shown below but not summed
    }
  }
  const lines = trades.slice(0, 5).map((t) => `${str(t['coin'])} ${str(t['direction'], '')} ${str(t['sz'], '')}: ${str(t['netPnl'])}`);
  return [`equity: ${str(s['equity'], 'n/a')}`, `last ${counted} trades net PnL: ${sum.toFixed()}`, ...lines].join('\n');
}

function formatResult(action: string, r: { status: number; body: unknown }): string {
  const ok = r.status >= 200 && r.status < 300;
  let body: string;
  try {
    body = JSON.stringify(r.body);
  } catch {
    body = String(r.body);
  }
  return `${action}: ${ok ? 'done' : `FAILED (${r.status})`}\n${clip(body ?? '', 1500)}`;
}

export class TelegramCommands {
  readonly #api: TelegramBotApi;
  readonly #allowed: ReadonlySet<string>;
  readonly #control: ControlPort;
  readonly #alerts: AlertAcknowledger | undefined;
  readonly #log: Pick<Logger, 'info' | 'warn' | 'error'> | undefined;
  readonly #now: () => number;
  readonly #newCode: () => string;
  readonly #ttlMs: number;
  readonly #pollS: number;
  readonly #maxAgeMs: number;
  readonly #secrets: readonly string[];
  readonly #pending = new Map<string, Pending>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #stats: TelegramCommandStats = { polls: 0, pollErrors: 0, updates: 0, ignoredChats: 0, commands: 0, executed: 0, replyErrors: 0 };
  #offset: number | undefined;
  #ac = new AbortController();
  #loop: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: TelegramCommandsOptions) {
    this.#api = opts.api;
    this.#allowed = new Set(opts.allowedChatIds.map((c) => c.trim()).filter(Boolean));
    this.#control = opts.control;
    this.#alerts = opts.alerts;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    this.#newCode = opts.newCode ?? (() => String(randomInt(1000, 10_000)));
    this.#ttlMs = opts.confirmTtlMs ?? 60_000;
    this.#pollS = opts.pollTimeoutS ?? 25;
    this.#maxAgeMs = opts.maxAgeMs ?? 5 * 60_000;
    this.#secrets = (opts.secrets ?? []).filter((s) => s.length >= 4);
  }

  stats(): TelegramCommandStats {
    return { ...this.#stats };
  }

  /** Starts the long-poll loop (idempotent). */
  start(): void {
    if (this.#loop || this.#stopped) return;
    this.#loop = this.#run();
  }

  /** Stops polling and waits for the poll and the commands in flight (bounded by `waitMs`). */
  async stop(waitMs = 5_000): Promise<void> {
    this.#stopped = true;
    this.#ac.abort();
    const all = Promise.allSettled([this.#loop ?? Promise.resolve(), ...this.#tasks]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, waitMs)))]);
    clearTimeout(timer);
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      try {
        this.#stats.polls++;
        const updates = await this.#api.getUpdates({ ...(this.#offset !== undefined ? { offset: this.#offset } : {}), timeoutS: this.#pollS, signal: this.#ac.signal });
        failures = 0;
        for (const u of updates) {
          this.#offset = Math.max(this.#offset ?? 0, u.update_id + 1);
          this.#stats.updates++;
          this.#onUpdate(u);
        }
      } catch (e) {
        if (this.#stopped) break;
        failures++;
        this.#stats.pollErrors++;
        const waitMs = Math.min(30_000, 1_000 * 2 ** Math.min(5, failures - 1));
        this.#log?.warn({ err: scrub((e as Error).message ?? String(e), this.#secrets), retryInMs: waitMs }, 'telegram: getUpdates failed; retrying');
        await new Promise<void>((r) => {
          const t = setTimeout(r, waitMs);
          this.#ac.signal.addEventListener('abort', () => (clearTimeout(t), r()), { once: true });
        });
      }
    }
  }

  /** Dispatches one update: never throws. */
  #onUpdate(u: TelegramUpdate): void {
    const m = u.message;
    if (!m || typeof m.text !== 'string') return;
    const chat = String(m.chat.id);
    if (!this.#allowed.has(chat)) {
      this.#stats.ignoredChats++;
      this.#log?.warn({ chatId: chat, from: m.from?.username ?? m.from?.id }, 'telegram: message from a chat that is not allowed; ignored');
      this.#audit(`telegram:${chat}`, 'telegram.refused', { reason: 'chat not allowed', text: clip(m.text, 40) });
      return;
    }
    const task = this.#handle(chat, m.text.trim(), m.date).catch((e: unknown) => {
      this.#log?.error({ chatId: chat, err: scrub((e as Error).message ?? String(e), this.#secrets) }, 'telegram: command failed');
      return this.#reply(chat, `error: ${clip((e as Error).message ?? 'failed', 300)}`);
    });
    this.#tasks.add(task);
    void task.finally(() => this.#tasks.delete(task));
  }

  async #handle(chat: string, text: string, date: number | undefined): Promise<void> {
    const by = `telegram:${chat}`;
    const [head = '', ...args] = text.split(/\s+/);
    const cmd = head.toLowerCase().replace(/@.*$/, '');
    if (!cmd.startsWith('/')) return this.#reply(chat, `commands:\n${HELP}`);
    this.#stats.commands++;
    if (date !== undefined && this.#now() - date * 1000 > this.#maxAgeMs) {
      this.#audit(by, 'telegram.stale', { command: cmd, sentAt: date });
      return this.#reply(chat, `${cmd} ignored: sent ${Math.round((this.#now() - date * 1000) / 60_000)} min ago. Send it again if you still mean it.`);
    }
    this.#audit(by, `telegram.${cmd.slice(1) || 'unknown'}`, args.length ? { args: args.slice(0, 3) } : {});
    // Any command other than /confirm cancels a pending confirmation: the code is for one thing.
    if (cmd !== '/confirm') this.#pending.delete(chat);
    switch (cmd) {
      case '/start':
      case '/help':
        return this.#reply(chat, `keel commands:\n${HELP}`);
      case '/status':
        return this.#reply(chat, formatStatus(this.#control.status()));
      case '/positions':
        return this.#reply(chat, formatPositions(this.#control.status()));
      case '/pnl':
        return this.#reply(chat, formatPnl(this.#control.status()));
      case '/pause':
      case '/resume':
        return this.#execute(chat, cmd.slice(1) as 'pause' | 'resume', by);
      case '/flatten':
      case '/kill': {
        const action = cmd.slice(1) as 'flatten' | 'kill';
        const code = this.#newCode();
        this.#pending.set(chat, { action, code, expiresAt: this.#now() + this.#ttlMs });
        const what = action === 'kill' ? 'KILL SWITCH: Emergency mode, cancel every order and close every position' : 'FLATTEN: cancel every order and close every position';
        return this.#reply(chat, `${what}.\nTo confirm, send /confirm ${code} within ${Math.round(this.#ttlMs / 1000)} s. Any other message cancels.`);
      }
      case '/confirm': {
        const p = this.#pending.get(chat);
        this.#pending.delete(chat);
        if (!p) return this.#reply(chat, 'nothing to confirm: send /flatten or /kill first');
        if (this.#now() > p.expiresAt) {
          this.#audit(by, `telegram.confirm.expired`, { action: p.action });
          return this.#reply(chat, `confirmation expired: /${p.action} NOT executed. Send /${p.action} again.`);
        }
        if (args[0] !== p.code) {
          this.#audit(by, `telegram.confirm.mismatch`, { action: p.action });
          return this.#reply(chat, `wrong code: /${p.action} NOT executed. Send /${p.action} again.`);
        }
        await this.#reply(chat, `/${p.action} confirmed: executing…`);
        return this.#execute(chat, p.action, by);
      }
      case '/ack': {
        const keys = this.#alerts?.ackAll(by) ?? [];
        await this.#reply(chat, `acknowledged ${keys.length} alert${keys.length === 1 ? '' : 's'}${keys.length ? `: ${clip(keys.join(', '), 500)}` : ''}`);
        return this.#execute(chat, 'ack', by);
      }
      default:
        return this.#reply(chat, `unknown command ${clip(cmd, 40)}\n${HELP}`);
    }
  }

  async #execute(chat: string, action: ControlAction, by: string): Promise<void> {
    this.#stats.executed++;
    this.#log?.warn({ action, by }, 'telegram: control action');
    // The same audit entry as the HTTP control API writes, so both paths read alike.
    this.#audit(by, `control.${action}`, { via: 'telegram' });
    const r = await this.#control.control(action, by);
    await this.#reply(chat, formatResult(action, r));
  }

  async #reply(chat: string, text: string): Promise<void> {
    try {
      await this.#api.sendMessage(chat, text);
    } catch (e) {
      this.#stats.replyErrors++;
      this.#log?.warn({ chatId: chat, err: scrub((e as Error).message ?? String(e), this.#secrets) }, 'telegram: reply failed');
    }
  }

  #audit(actor: string, action: string, detail: unknown): void {
    try {
      this.#control.audit?.({ actor, action, detail });
    } catch (e) {
      this.#log?.error({ err: (e as Error).message, action }, 'telegram: audit write failed');
    }
  }
}
