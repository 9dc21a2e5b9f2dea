/**
 * Fuzzing keel's own control surface (src/ops/http-server.ts): 10,000 generated malformed control
 * requests — wrong methods, paths, actions, headers, tokens, query strings — against the real ops
 * server on loopback. No uncaught exception, a clear 4xx, and the control handler is reached only
 * with the right token and a known action: no state change otherwise.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { request } from 'undici';
import { startOpsServer, CONTROL_ACTIONS, type ControlCall, type OpsServer } from '../../src/ops/http-server.ts';

const TOKEN = 'fuzz-token-0123456789abcdef';
let server: OpsServer;
const reached: ControlCall[] = [];
const audited: string[] = [];

beforeAll(async () => {
  server = await startOpsServer(
    '127.0.0.1:0',
    {
      status: () => ({ mode: 'Normal' }),
      ready: () => true,
      control: async (call) => {
        reached.push(call);
        return { status: 200, body: { ok: true } };
      },
      audit: (e) => audited.push(e.action),
    },
    { token: TOKEN },
  );
});
afterAll(async () => {
  await server.close();
});

const methods = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD');
const action = fc.oneof(fc.constantFrom(...CONTROL_ACTIONS, 'KILL', 'kill/', '..', '%00', 'pause%20', ''), fc.string({ maxLength: 30 }).map(encodeURIComponent));
const auth = fc.oneof(
  fc.constant(undefined),
  fc.constant(`Bearer ${TOKEN}`),
  fc.constantFrom('', 'Bearer', 'Bearer ', `bearer ${TOKEN}`, `Basic ${TOKEN}`, TOKEN, `Bearer ${TOKEN} `, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer ${TOKEN}x`),
  fc.string({ maxLength: 80 }).filter((s) => /^[\x21-\x7e ]*$/.test(s)),
);
const query = fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 });

describe('control API fuzzing', () => {
  it('10,000 malformed control requests: a clear refusal, the handler reached only when authorised', async () => {
    await fc.assert(
      fc.asyncProperty(methods, action, auth, query, fc.string({ maxLength: 20 }).filter((s) => /^[\x21-\x7e]*$/.test(s)), async (method, act, authorization, q, actor) => {
        const before = reached.length;
        const qs = new URLSearchParams(q).toString();
        const headers: Record<string, string> = { 'x-keel-actor': actor };
        if (authorization !== undefined) headers['authorization'] = authorization;
        const r = await request(`${server.url}/control/${act}${qs ? `?${qs}` : ''}`, { method: method as 'GET', headers });
        await r.body.text();
        // HTTP trims optional whitespace around a header value, so the server sees it trimmed.
        const ok = method === 'POST' && authorization?.trim() === `Bearer ${TOKEN}` && (CONTROL_ACTIONS as readonly string[]).includes(act);
        if (ok) {
          expect(r.statusCode).toBe(200);
          expect(reached.length).toBe(before + 1);
        } else {
          expect(r.statusCode).toBeGreaterThanOrEqual(400);
          expect(r.statusCode).toBeLessThan(500);
          expect(reached.length).toBe(before);
        }
      }),
      { seed: 4242, numRuns: 10_000 },
    );
    // Refusals with a bad token are audited as such.
    expect(audited.some((a) => a.endsWith('.refused'))).toBe(true);
  }, 120_000);
});
