/**
 * The ops HTTP server (loopback by default): `/healthz` (process and event loop alive),
 * `/readyz` (reconciled and trading-capable), `/status` (JSON state, secrets never included).
 * The control endpoints and /metrics join it in the operations issue.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface OpsHandlers {
  status(): unknown;
  ready(): boolean;
}

export interface OpsServer {
  readonly url: string;
  close(): Promise<void>;
}

export async function startOpsServer(addr: string, handlers: OpsHandlers): Promise<OpsServer> {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (!m) throw new Error(`bad listen address ${addr}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const port = Number(m[2]);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(text);
    };
    try {
      if (req.method !== 'GET') return json(405, { error: 'method not allowed' });
      if (path === '/healthz') return json(200, { ok: true });
      if (path === '/readyz') return handlers.ready() ? json(200, { ready: true }) : json(503, { ready: false });
      if (path === '/status') return json(200, handlers.status());
      return json(404, { error: 'not found' });
    } catch (e) {
      return json(500, { error: (e as Error).message });
    }
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
