/**
 * A loopback stand-in for the Telegram Bot API: `POST|GET /bot<token>/getUpdates` (long polling
 * with `offset` and `timeout`, as Telegram does: updates below the offset are confirmed and
 * forgotten) and `/bot<token>/sendMessage` (recorded). Tests inject incoming messages with
 * `inject`, read what the bot sent from `sent`, and make sendMessage fail with `failSends`.
 *
 * Invariants: a wrong token is a 401 like Telegram's; a held long poll is answered as soon as an
 * update arrives, or empty at its timeout (capped at `maxPollS`); `close()` answers every held
 * poll and closes all connections, so no test hangs on it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SentMessage {
  readonly chatId: string;
  readonly text: string;
  readonly at: number;
}

interface Update {
  readonly update_id: number;
  readonly message: {
    readonly message_id: number;
    readonly date: number;
    readonly chat: { readonly id: number; readonly type: 'private' | 'group' };
    readonly from: { readonly id: number; readonly username: string };
    readonly text: string;
  };
}

interface HeldPoll {
  readonly offset: number;
  readonly res: http.ServerResponse;
  readonly timer: NodeJS.Timeout;
}

export interface TelegramStandIn {
  /** Base URL to use as KEEL_TELEGRAM_API_ROOT. */
  readonly apiRoot: string;
  readonly token: string;
  readonly sent: SentMessage[];
  /** Every request's method name, in order (getUpdates, sendMessage, ...). */
  readonly calls: string[];
  /** Queues an incoming text message from `chatId`; `ageS` backdates it. */
  inject(chatId: string | number, text: string, opts?: { ageS?: number }): number;
  /** Makes the next `count` sendMessage calls (all if undefined) fail with `status` (0 = stop failing). */
  failSends(status: number, count?: number): void;
  /** Resolves with the first sent message (after index `from`) matching `pred`. */
  waitForSent(pred: (m: SentMessage) => boolean, opts?: { timeoutMs?: number; from?: number; what?: string }): Promise<SentMessage>;
  sentTo(chatId: string | number): SentMessage[];
  close(): Promise<void>;
}

export async function startTelegramStandIn(opts: { token?: string; maxPollS?: number } = {}): Promise<TelegramStandIn> {
  const token = opts.token ?? '123456:standin-token-abcdefghijklmnopqrstu';
  const maxPollS = opts.maxPollS ?? 2;
  const sent: SentMessage[] = [];
  const calls: string[] = [];
  const updates: Update[] = [];
  const held = new Set<HeldPoll>();
  const waiters = new Set<{ pred: (m: SentMessage) => boolean; from: number; resolve: (m: SentMessage) => void }>();
  let nextUpdate = 1;
  let nextMessage = 1;
  let failStatus = 0;
  let failLeft = Infinity;

  const reply = (res: http.ServerResponse, status: number, body: unknown) => {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const pending = (offset: number) => updates.filter((u) => u.update_id >= offset);
  const answerHeld = () => {
    for (const h of held) {
      const ready = pending(h.offset);
      if (ready.length === 0) continue;
      clearTimeout(h.timer);
      held.delete(h);
      reply(h.res, 200, { ok: true, result: ready });
    }
  };

  const readBody = (req: http.IncomingMessage) =>
    new Promise<Record<string, unknown>>((resolve) => {
      let data = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (data += c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const q: Record<string, unknown> = Object.fromEntries(url.searchParams.entries());
        if (!data) return resolve(q);
        try {
          const type = String(req.headers['content-type'] ?? '');
          const body = type.includes('json') ? (JSON.parse(data) as Record<string, unknown>) : Object.fromEntries(new URLSearchParams(data).entries());
          resolve({ ...q, ...body });
        } catch {
          resolve(q);
        }
      });
    });

  const server = http.createServer((req, res) => {
    void (async () => {
      const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(new URL(req.url ?? '/', 'http://x').pathname);
      const body = await readBody(req);
      if (!m) return reply(res, 404, { ok: false, error_code: 404, description: 'Not Found' });
      if (m[1] !== token) return reply(res, 401, { ok: false, error_code: 401, description: 'Unauthorized' });
      const method = m[2]!;
      calls.push(method);
      if (method === 'getUpdates') {
        const offset = Number(body['offset'] ?? 0) || 0;
        // Telegram forgets updates below a confirmed offset.
        for (let i = updates.length - 1; i >= 0; i--) if (updates[i]!.update_id < offset) updates.splice(i, 1);
        const ready = pending(offset);
        const timeoutS = Math.min(maxPollS, Math.max(0, Number(body['timeout'] ?? 0) || 0));
        if (ready.length > 0 || timeoutS === 0) return reply(res, 200, { ok: true, result: ready });
        const h: HeldPoll = {
          offset,
          res,
          timer: setTimeout(() => {
            held.delete(h);
            reply(res, 200, { ok: true, result: [] });
          }, timeoutS * 1000),
        };
        held.add(h);
        res.on('close', () => {
          clearTimeout(h.timer);
          held.delete(h);
        });
        return;
      }
      if (method === 'sendMessage') {
        const chatId = body['chat_id'];
        const text = body['text'];
        if ((typeof chatId !== 'string' && typeof chatId !== 'number') || typeof text !== 'string' || text.length === 0) {
          return reply(res, 400, { ok: false, error_code: 400, description: 'Bad Request: chat_id and text are required' });
        }
        if (text.length > 4096) return reply(res, 400, { ok: false, error_code: 400, description: 'Bad Request: message is too long' });
        if (failStatus && failLeft > 0) {
          failLeft--;
          return failStatus === 429
            ? reply(res, 429, { ok: false, error_code: 429, description: 'Too Many Requests: retry after 1', parameters: { retry_after: 1 } })
            : reply(res, failStatus, { ok: false, error_code: failStatus, description: 'Internal Server Error' });
        }
        const msg: SentMessage = { chatId: String(chatId), text, at: Date.now() };
        sent.push(msg);
        const idx = sent.length - 1;
        for (const w of waiters) {
          if (idx >= w.from && w.pred(msg)) {
            waiters.delete(w);
            w.resolve(msg);
          }
        }
        return reply(res, 200, { ok: true, result: { message_id: nextMessage++, date: Math.floor(Date.now() / 1000), chat: { id: Number(chatId), type: 'private' }, text } });
      }
      return reply(res, 404, { ok: false, error_code: 404, description: 'Not Found: method not found' });
    })().catch(() => reply(res, 500, { ok: false, error_code: 500, description: 'stand-in error' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    apiRoot: `http://127.0.0.1:${port}`,
    token,
    sent,
    calls,
    inject(chatId, text, o = {}) {
      const id = nextUpdate++;
      updates.push({
        update_id: id,
        message: {
          message_id: nextMessage++,
          date: Math.floor(Date.now() / 1000) - (o.ageS ?? 0),
          chat: { id: Number(chatId), type: Number(chatId) < 0 ? 'group' : 'private' },
          from: { id: Math.abs(Number(chatId)), username: `user${Math.abs(Number(chatId))}` },
          text,
        },
      });
      answerHeld();
      return id;
    },
    failSends(status, count) {
      failStatus = status;
      failLeft = count ?? Infinity;
    },
    waitForSent(pred, o = {}) {
      const from = o.from ?? 0;
      const seen = sent.slice(from).find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise<SentMessage>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`telegram stand-in: ${o.what ?? 'message'} not sent within ${o.timeoutMs ?? 10_000} ms; sent so far:\n${sent.map((s) => `  [${s.chatId}] ${s.text.slice(0, 200)}`).join('\n')}`));
        }, o.timeoutMs ?? 10_000);
        const w = {
          pred,
          from,
          resolve: (m: SentMessage) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        waiters.add(w);
      });
    },
    sentTo(chatId) {
      return sent.filter((s) => s.chatId === String(chatId));
    },
    close: () =>
      new Promise<void>((r) => {
        for (const h of held) {
          clearTimeout(h.timer);
          reply(h.res, 200, { ok: true, result: [] });
        }
        held.clear();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
