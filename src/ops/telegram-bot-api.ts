/**
 * A minimal Telegram Bot API client: `getUpdates` (long polling with an offset) and
 * `sendMessage`, over fetch (undici) against a configurable API root, so tests point it at a
 * loopback stand-in.
 *
 * Invariants:
 * - The bot token appears only in the request URL: never in an error message (errors are built
 *   from the method name, the HTTP status and Telegram's description, scrubbed of the token).
 * - Every call is bounded (its AbortSignal, plus the long-poll timeout + a margin).
 * - Responses are parsed at this edge (zod); an update that does not fit is kept as
 *   `{ update_id }` so the poller can still advance its offset past it.
 */
import { z } from 'zod';
import { scrub } from './alerts.ts';

export class TelegramApiError extends Error {
  readonly method: string;
  readonly status: number | undefined;
  /** From a 429's `parameters.retry_after`: the router waits at least this long. */
  readonly retryAfterMs: number | undefined;
  constructor(method: string, message: string, opts: { status?: number; retryAfterMs?: number } = {}) {
    super(`telegram ${method}: ${message}`);
    this.name = 'TelegramApiError';
    this.method = method;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

const ChatSchema = z.object({ id: z.number().int(), type: z.string().optional() });
const MessageSchema = z.object({
  message_id: z.number().int(),
  date: z.number().optional(),
  chat: ChatSchema,
  from: z.object({ id: z.number().int(), username: z.string().optional() }).optional(),
  text: z.string().optional(),
});
export type TelegramMessage = z.infer<typeof MessageSchema>;

const UpdateSchema = z.object({ update_id: z.number().int(), message: MessageSchema.optional() });
export type TelegramUpdate = z.infer<typeof UpdateSchema>;

const EnvelopeSchema = z.object({
  ok: z.boolean(),
  result: z.unknown().optional(),
  description: z.string().optional(),
  error_code: z.number().optional(),
  parameters: z.object({ retry_after: z.number().optional() }).optional(),
});

/** Telegram's limit for one message's text. */
export const TELEGRAM_MAX_TEXT = 4096;

export interface TelegramBotApiOptions {
  readonly token: string;
  /** Default https://api.telegram.org. */
  readonly apiRoot?: string;
  readonly fetch?: typeof fetch;
  /** Per-request timeout for non-polling calls. Default 10 s. */
  readonly timeoutMs?: number;
}

export class TelegramBotApi {
  readonly #token: string;
  readonly #root: string;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;

  constructor(opts: TelegramBotApiOptions) {
    this.#token = opts.token;
    this.#root = (opts.apiRoot ?? 'https://api.telegram.org').replace(/\/+$/, '');
    this.#fetch = opts.fetch ?? fetch;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** The API root (never the token). */
  get apiRoot(): string {
    return this.#root;
  }

  /**
   * Long-polls for updates after `offset` (exclusive of confirmed ones), waiting up to
   * `timeoutS` seconds on the server.
   */
  async getUpdates(opts: { offset?: number; timeoutS?: number; signal?: AbortSignal } = {}): Promise<TelegramUpdate[]> {
    const timeoutS = opts.timeoutS ?? 25;
    const result = await this.#call('getUpdates', { offset: opts.offset, timeout: timeoutS, allowed_updates: ['message'] }, opts.signal, timeoutS * 1000 + this.#timeoutMs);
    if (!Array.isArray(result)) throw new TelegramApiError('getUpdates', 'result is not an array');
    const out: TelegramUpdate[] = [];
    for (const raw of result) {
      const u = UpdateSchema.safeParse(raw);
      if (u.success) out.push(u.data);
      else {
        const id = (raw as { update_id?: unknown } | null)?.update_id;
        if (typeof id === 'number' && Number.isInteger(id)) out.push({ update_id: id });
      }
    }
    return out;
  }

  /** Sends plain text (no parse mode: alert text is never interpreted as markup). */
  async sendMessage(chatId: string, text: string, signal?: AbortSignal): Promise<void> {
    const body = text.length > TELEGRAM_MAX_TEXT ? `${text.slice(0, TELEGRAM_MAX_TEXT - 1)}…` : text;
    await this.#call('sendMessage', { chat_id: chatId, text: body, disable_web_page_preview: true }, signal, this.#timeoutMs);
  }

  async #call(method: string, body: Record<string, unknown>, signal: AbortSignal | undefined, timeoutMs: number): Promise<unknown> {
    const signals = [AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])];
    let res: Response;
    try {
      res = await this.#fetch(`${this.#root}/bot${this.#token}/${method}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.any(signals),
      });
    } catch (e) {
      const cause = (e as { cause?: unknown }).cause;
      const why = cause instanceof Error ? `${(e as Error).message} (${cause.message})` : (e as Error).message;
      throw new TelegramApiError(method, scrub(why ?? 'request failed', [this.#token]));
    }
    let json: unknown;
    try {
      json = await res.json();
    } catch {
      throw new TelegramApiError(method, `HTTP ${res.status}, body is not JSON`, { status: res.status });
    }
    const env = EnvelopeSchema.safeParse(json);
    if (!env.success) throw new TelegramApiError(method, `HTTP ${res.status}, not a Bot API response`, { status: res.status });
    if (!env.data.ok || !res.ok) {
      const retry = env.data.parameters?.retry_after;
      throw new TelegramApiError(method, `HTTP ${res.status}: ${scrub(String(env.data.description ?? 'error').slice(0, 200), [this.#token])}`, {
        status: res.status,
        ...(retry !== undefined ? { retryAfterMs: retry * 1000 } : {}),
      });
    }
    return env.data.result;
  }
}
