/**
 * The ops HTTP server (loopback by default): `/healthz` (process and event loop alive),
 * `/readyz` (reconciled and trading-capable), `/status` (JSON state, secrets never included),
 * `/metrics` (Prometheus text) and the authenticated control endpoints
 * `POST /control/{pause,resume,flatten,kill,ack,reconcile}`.
 *
 * Invariants: a control call without the right bearer token changes nothing (the token is
 * compared in constant time over digests, so neither its content nor its length leaks through
 * timing); every control call, refused or not, is handed to `audit` with who and when; a handler
 * error is a 500 with a message, never a crash.
 */
import http from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export const CONTROL_ACTIONS = ['pause', 'resume', 'flatten', 'kill', 'ack', 'reconcile'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

export interface ControlCall {
  readonly action: ControlAction;
  /** Who asked: the X-Keel-Actor header (an operator name) or "http", plus the peer address. */
  readonly by: string;
  readonly params: Readonly<Record<string, string>>;
}

export interface OpsHandlers {
  status(): unknown;
  ready(): boolean;
  metrics?(): Promise<{ contentType: string; body: string }>;
  control?(call: ControlCall): Promise<{ status: number; body: unknown }>;
  audit?(entry: { actor: string; action: string; detail: unknown }): void;
}

export interface OpsServer {
  readonly url: string;
  close(): Promise<void>;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time bearer check. */
export function tokenMatches(header: string | undefined, token: string): boolean {
  const presented = /^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '';
  return timingSafeEqual(digest(presented), digest(token)) && presented.length > 0;
}

export async function startOpsServer(addr: string, handlers: OpsHandlers, opts: { token?: string } = {}): Promise<OpsServer> {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new Error(`bad listen address ${addr}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://ops');
    const path = url.pathname;
    const json = (status: number, body: unknown) => {
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const run = async () => {
      if (path.startsWith('/control/')) {
        const action = path.slice('/control/'.length);
        const by = `${String(req.headers['x-keel-actor'] ?? 'http').slice(0, 64)}@${req.socket.remoteAddress ?? '?'}`;
        if (req.method !== 'POST') return json(405, { error: 'control endpoints take POST' });
        if (!opts.token || !tokenMatches(req.headers.authorization, opts.token)) {
          handlers.audit?.({ actor: by, action: `control.${action}.refused`, detail: { reason: 'bad or missing bearer token' } });
          return json(401, { error: 'a valid bearer token is required' });
        }
        if (!(CONTROL_ACTIONS as readonly string[]).includes(action) || !handlers.control) return json(404, { error: `no such control action: ${action}` });
        const params = Object.fromEntries(url.searchParams.entries());
        handlers.audit?.({ actor: by, action: `control.${action}`, detail: params });
        const r = await handlers.control({ action: action as ControlAction, by, params });
        return json(r.status, r.body);
      }
      if (req.method !== 'GET') return json(405, { error: 'method not allowed' });
      if (path === '/healthz') return json(200, { ok: true });
      if (path === '/readyz') return handlers.ready() ? json(200, { ready: true }) : json(503, { ready: false });
      if (path === '/status') return json(200, handlers.status());
      if (path === '/metrics' && handlers.metrics) {
        const m = await handlers.metrics();
        res.writeHead(200, { 'content-type': m.contentType });
        res.end(m.body);
        return;
      }
      return json(404, { error: 'not found' });
    };
    run().catch((e: unknown) => json(500, { error: (e as Error).message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${a.port}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
