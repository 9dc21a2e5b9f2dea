/**
 * Acceptance 3 of the operations issue (no key material in logs), on real processes: everything a
 * whole paper session writes (stdout and stderr, at the most verbose log level) is captured from
 * start to SIGTERM, across a trade that opens and closes and a few control calls, then searched for
 *   - the master and agent private keys of `$KEEL_DATA_DIR/paper-keys.json` (hex with and without
 *     0x, any case, and any 16-hex-digit piece of them);
 *   - the control API's bearer token (the generated `$KEEL_DATA_DIR/api-token`, or KEEL_API_TOKEN);
 *   - the r and s values of every signature keel sent (second session: keel talks to an external
 *     simulator through a recording proxy in this test, which reads each POST /exchange body).
 */
import http from 'node:http';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { ethers } from 'ethers';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ChildHandle, killAll, removeTempDirs, replayWindow, startSim, tempDir } from '../helpers/processes.ts';

afterEach(killAll);
afterAll(removeTempDirs);

interface Capture {
  text(): string;
}

/** Every byte the child writes, uncapped (ChildHandle keeps the first megabyte and stderr's tail). */
function capture(child: ChildHandle): Capture {
  const parts: string[] = [];
  child.proc.stdout!.on('data', (c: string | Buffer) => parts.push(String(c)));
  child.proc.stderr!.on('data', (c: string | Buffer) => parts.push(String(c)));
  return { text: () => parts.join('') };
}

/** The forms a secret hex string could take in a log: with or without 0x, any case, in pieces. */
function hexNeedles(hex: string): string[] {
  const bare = hex.toLowerCase().replace(/^0x/, '');
  expect(bare).toMatch(/^[0-9a-f]{64}$/);
  const pieces: string[] = [];
  // Any 16-digit window: a truncated or sliced key is still a leak (false matches: ~2^-64 each).
  for (let i = 0; i + 16 <= bare.length; i += 8) pieces.push(bare.slice(i, i + 16));
  return [bare, ...pieces];
}

/** Where in `haystack` (lower-cased, so any case matches) a needle appears: `[]` when clean. */
function leaks(haystack: string, needles: Readonly<Record<string, readonly string[]>>): string[] {
  const hay = haystack.toLowerCase();
  const found: string[] = [];
  for (const [what, list] of Object.entries(needles)) {
    for (const n of list) {
      const at = hay.indexOf(n.toLowerCase());
      if (at >= 0) found.push(`${what} (${n.slice(0, 6)}…) at offset ${at}: …${haystack.slice(Math.max(0, at - 80), at).replace(/\s+/g, ' ')}[SECRET]…`);
    }
  }
  return found;
}

function paperKeys(dataDir: string): { master: string; agent: string } {
  return JSON.parse(readFileSync(path.join(dataDir, 'paper-keys.json'), 'utf8')) as { master: string; agent: string };
}

/**
 * The search works on this capture: the public addresses derived from the keys are logged (as
 * they should be), and `leaks` finds them in whatever case they were written.
 */
function expectSearchSees(text: string, keys: { master: string; agent: string }): void {
  const addresses = [new ethers.Wallet(keys.master).address, new ethers.Wallet(keys.agent).address];
  expect(leaks(text, { addresses: addresses.map((a) => a.toUpperCase().replace(/^0X/, '0x')) }).length).toBe(2);
}

/** A few control calls: the token travels in headers the server must never log. */
async function exerciseControl(opsUrl: string, token: string): Promise<void> {
  const post = (action: string, authorization?: string) =>
    fetch(`${opsUrl}/control/${action}`, { method: 'POST', headers: { 'x-keel-actor': 'log-secrets', ...(authorization ? { authorization } : {}) }, signal: AbortSignal.timeout(30_000) });
  expect((await post('pause', `Bearer ${token}`)).status).toBe(200);
  expect((await post('resume', `Bearer ${token}`)).status).toBe(200);
  expect((await post('reconcile', `Bearer ${token}`)).status).toBe(200);
  // A refused call carrying a near-miss of the token (its prefix) must not be echoed either.
  expect((await post('pause', `Bearer ${token.slice(0, -2)}`)).status).toBe(401);
}

/**
 * A loopback HTTP proxy in front of the simulator that keeps every POST /exchange body (to read the
 * signatures keel sends) and passes WebSocket upgrades through as raw TCP.
 */
async function recordingProxy(target: string): Promise<{ url: string; exchangeBodies: string[]; close(): Promise<void> }> {
  const t = new URL(target);
  const exchangeBodies: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST' && req.url === '/exchange') exchangeBodies.push(body.toString('utf8'));
      const up = http.request({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket, head) => {
    const up = net.connect(Number(t.port), t.hostname, () => {
      const headers = Object.entries(req.headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${headers.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    sockets.add(up);
    const end = () => {
      up.destroy();
      socket.destroy();
    };
    up.on('error', end);
    up.on('close', end);
    socket.on('error', end);
    socket.on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchangeBodies,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The r and s of every signed action in the recorded bodies. */
function signatureParts(bodies: readonly string[]): string[] {
  const out: string[] = [];
  for (const b of bodies) {
    const sig = (JSON.parse(b) as { signature?: { r?: string; s?: string } }).signature;
    if (sig?.r) out.push(sig.r);
    if (sig?.s) out.push(sig.s);
  }
  return out;
}

describe('no key material in the logs of a whole paper session', () => {
  it('embedded simulator, generated token: keys and token never appear in stdout or stderr', { timeout: 60_000 }, async () => {
    const dataDir = path.join(tempDir('log-secrets'), 'data');
    const child = new ChildHandle('keel run (paper)', ['run'], { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '127.0.0.1:0', KEEL_PAPER_SPEED: '600', KEEL_LOG_LEVEL: 'trace' });
    const out = capture(child);
    const opsUrl = String((await child.waitForMsg('ops http listening', 30_000)).url);
    const token = readFileSync(path.join(dataDir, 'api-token'), 'utf8').trim();
    await child.waitForMsg('trade closed (PnL, fees included)', 40_000);
    await exerciseControl(opsUrl, token);
    expect(await child.kill('SIGTERM')).toEqual({ code: 0, signal: null });

    const keys = paperKeys(dataDir);
    const text = out.text();
    expectSearchSees(text, keys);
    // Not vacuous: the capture holds the whole session, signing included.
    expect(text).toContain('"msg":"sending order"');
    expect(text).toContain('"msg":"stopped"');
    expect(leaks(text, { 'master key': hexNeedles(keys.master), 'agent key': hexNeedles(keys.agent), 'api token': [token, token.slice(0, 16), token.slice(-16)] })).toEqual([]);
  });

  it('external simulator through a recording proxy, KEEL_API_TOKEN: keys, token and signatures r/s never appear', { timeout: 60_000 }, async () => {
    const dir = tempDir('log-secrets-proxy');
    const { url: simUrl } = await startSim({ speed: 600, seed: 31, data: replayWindow(dir, 110) });
    const proxy = await recordingProxy(simUrl);
    try {
      const dataDir = path.join(dir, 'data');
      const token = 'log-secrets-token-5f1c0e9a7b3d2c4e';
      const child = new ChildHandle('keel run (proxy)', ['run'], { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '127.0.0.1:0', KEEL_API_URL: proxy.url, KEEL_API_TOKEN: token, KEEL_LOG_LEVEL: 'trace' });
      const out = capture(child);
      const opsUrl = String((await child.waitForMsg('ops http listening', 30_000)).url);
      await child.waitForMsg('trade closed (PnL, fees included)', 40_000);
      await exerciseControl(opsUrl, token);
      expect(await child.kill('SIGTERM')).toEqual({ code: 0, signal: null });

      const keys = paperKeys(dataDir);
      const sigs = signatureParts(proxy.exchangeBodies);
      // Not vacuous: the agent approval (master key) and the orders (agent key) were signed here.
      expect(proxy.exchangeBodies.some((b) => b.includes('"approveAgent"'))).toBe(true);
      expect(proxy.exchangeBodies.some((b) => b.includes('"order"'))).toBe(true);
      expect(sigs.length).toBeGreaterThanOrEqual(4);
      for (const s of sigs) expect(s).toMatch(/^0x[0-9a-fA-F]{1,64}$/);
      const text = out.text();
      expectSearchSees(text, keys);
      expect(text).toContain('"msg":"sending order"');
      expect(
        leaks(text, {
          'master key': hexNeedles(keys.master),
          'agent key': hexNeedles(keys.agent),
          'api token': [token],
          // r / s below 2^252 have fewer digits; the stored form is what a log would copy.
          'signature r/s': sigs.map((s) => s.replace(/^0x/, '')).filter((s) => s.length >= 32),
        }),
      ).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});
