/**
 * The Bot API client's edge: responses parsed into typed updates (a malformed update still
 * advances the offset), Telegram errors turned into TelegramApiError with `retryAfterMs` from a
 * 429, and the bot token absent from every error message. The transport is a fetch function
 * returning crafted bodies (the real HTTP path is covered against the stand-in in
 * tests/integration/telegram-commands.test.ts).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { TelegramApiError, TelegramBotApi } from '../../src/ops/telegram-bot-api.ts';

const TOKEN = '4242:secret-bot-token-abcdefghijkl';

function apiAnswering(status: number, body: unknown, seen: { url?: string; body?: string } = {}): TelegramBotApi {
  const fetchFn = (async (url: string | URL | Request, init?: RequestInit) => {
    seen.url = String(url);
    seen.body = String(init?.body);
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
  return new TelegramBotApi({ token: TOKEN, apiRoot: 'http://127.0.0.1:1/', fetch: fetchFn });
}

describe('TelegramBotApi', () => {
  it('parses updates; a malformed one is kept as its update_id so the offset moves past it', async () => {
    const seen: { url?: string; body?: string } = {};
    const api = apiAnswering(200, { ok: true, result: [{ update_id: 7, message: { message_id: 1, chat: { id: 42 }, text: '/status', date: 1 } }, { update_id: 8, message: { chat: 'nope' } }, { nothing: true }] }, seen);
    const ups = await api.getUpdates({ offset: 7, timeoutS: 0 });
    expect(ups).toEqual([{ update_id: 7, message: { message_id: 1, chat: { id: 42 }, text: '/status', date: 1 } }, { update_id: 8 }]);
    expect(seen.url).toBe(`http://127.0.0.1:1/bot${TOKEN}/getUpdates`);
    expect(JSON.parse(seen.body!)).toMatchObject({ offset: 7, timeout: 0 });
  });

  it('a 429 carries retry_after as retryAfterMs; errors never contain the token', async () => {
    const e = await apiAnswering(429, { ok: false, error_code: 429, description: `Too Many Requests for bot${TOKEN}`, parameters: { retry_after: 3 } }).sendMessage('1', 'x').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TelegramApiError);
    expect((e as TelegramApiError).retryAfterMs).toBe(3_000);
    expect((e as Error).message).not.toContain('secret-bot-token');
    const net = new TelegramBotApi({ token: TOKEN, fetch: (async (url: string) => { throw new TypeError('fetch failed', { cause: new Error(`connect ECONNREFUSED ${url}`) }); }) as unknown as typeof fetch });
    const e2 = await net.sendMessage('1', 'x').catch((x: unknown) => x);
    expect((e2 as Error).message).toMatch(/fetch failed \(connect ECONNREFUSED https:\/\/api\.telegram\.org\/bot\[redacted\]\/sendMessage\)/);
  });

  it('any response body is an error value or a result, never a crash or a leak (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 200, max: 599 }), fc.oneof(fc.json(), fc.string()), async (status, body) => {
        const r = await apiAnswering(status, body).getUpdates({ timeoutS: 0 }).then(
          (v) => ({ ok: true as const, v }),
          (e: unknown) => ({ ok: false as const, e }),
        );
        if (r.ok) expect(Array.isArray(r.v)).toBe(true);
        else {
          expect(r.e).toBeInstanceOf(TelegramApiError);
          expect((r.e as Error).message).not.toContain(TOKEN);
        }
      }),
      { numRuns: 300, seed: 11 },
    );
  });

  it('clips text to Telegram\'s 4096 characters', async () => {
    const seen: { body?: string } = {};
    await apiAnswering(200, { ok: true, result: {} }, seen).sendMessage('5', 'y'.repeat(5000));
    expect((JSON.parse(seen.body!) as { text: string }).text).toHaveLength(4096);
  });
});
