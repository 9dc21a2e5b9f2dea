/**
 * Acceptance 3 of the operations issue (control API), on real processes: `keel run` against an
 * external `keel sim`, its ops server on loopback, keel's SQLite file read read-only.
 *   - a call to any `/control/*` endpoint without a bearer token, with a wrong one, a prefix of the
 *     right one or the right one under another scheme is refused (401), changes nothing (mode,
 *     gate, last reconciliation, keel's orders, the venue's orders) and is audited as refused;
 *   - pause, resume, reconcile, flatten, kill and ack each take effect (seen in `/status` and in
 *     the simulator's ground truth) and are audited with who (X-Keel-Actor) and when;
 *   - binding off loopback without a token is refused at start with a one-line reason.
 *
 * The account is prepared before keel starts (paper-keys.json with deterministic keys, funded,
 * agent approved) so the test can also act as the operator trading by hand: a manual resting order
 * (no cloid) that a refused flatten or kill would have cancelled, and later a manual position for
 * the real flatten to close. The replay runs at 1×: keel's strategy sends nothing of its own during
 * the test, so any change in the venue's orders is the control API's doing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExchangeClient, HttpTransport, InfoClient } from '@nktkas/hyperliquid';
import { ethers } from 'ethers';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dec, roundPrice, toWire } from '../../src/domain/decimal.ts';
import { openRetainedDatabase } from '../../src/store/native-lifetime.ts';
import { ChildHandle, eventually, killAll, openDbView, removeTempDirs, simState, startKeel, startSim, tempDir, type KeelProcess, type KeelStatus } from '../helpers/processes.ts';

afterEach(killAll);
afterAll(removeTempDirs);

const ACTIONS = ['pause', 'resume', 'flatten', 'kill', 'ack', 'reconcile'] as const;

interface Status extends KeelStatus {
  readonly mode: string;
  readonly gate: string;
  readonly conditions: readonly string[];
}

interface AuditRow {
  readonly id: number;
  readonly time: number;
  readonly actor: string;
  readonly action: string;
  readonly detail: string;
}

/** keel's audit log, read-only (WAL: sees what the runtime has committed). */
function readAudit(dataDir: string): AuditRow[] {
  const db: BetterSqlite3.Database = openRetainedDatabase(path.join(dataDir, 'keel.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT id, time, actor, action, detail FROM audit_log ORDER BY id').all() as AuditRow[];
  } finally {
    db.close();
  }
}

/** A deterministic wallet per label (never a real key: derived from a public string). */
const walletFor = (label: string) => new ethers.Wallet(ethers.id(`keel-test:control-api:${label}`));

interface Account {
  readonly dataDir: string;
  readonly user: string;
  readonly master: ExchangeClient;
  readonly info: InfoClient;
}

/** A paper data directory as `keel run` would leave it, its account funded and the agent approved. */
async function paperAccount(url: string, label: string): Promise<Account> {
  const dataDir = path.join(tempDir(`control-${label}`), 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const master = walletFor(`${label}:master`);
  const agent = walletFor(`${label}:agent`);
  writeFileSync(path.join(dataDir, 'paper-keys.json'), JSON.stringify({ master: master.privateKey, agent: agent.privateKey }), { mode: 0o600 });
  const funded = await fetch(`${url}/_sim/accounts`, { method: 'POST', body: JSON.stringify({ address: master.address.toLowerCase(), usdc: 100_000 }) });
  expect(funded.ok).toBe(true);
  const transport = new HttpTransport({ apiUrl: url, isTestnet: true, timeout: 5_000 });
  const ex = new ExchangeClient({ transport, wallet: master });
  await ex.approveAgent({ agentAddress: agent.address, agentName: 'keel' });
  return { dataDir, user: master.address.toLowerCase(), master: ex, info: new InfoClient({ transport }) };
}

/** An order by hand (no cloid), signed by the master key. */
async function manualOrder(acct: Account, coin: string, isBuy: boolean, factor: number, sz: string, tif: 'Gtc' | 'Ioc'): Promise<void> {
  const [meta, mids] = await Promise.all([acct.info.meta(), acct.info.allMids()]);
  const a = meta.universe.findIndex((u) => u.name === coin);
  const p = toWire(roundPrice(dec(mids[coin]!).mul(factor), meta.universe[a]!.szDecimals));
  await acct.master.order({ orders: [{ a, b: isBuy, p, s: sz, r: false, t: { limit: { tif } } }], grouping: 'na' });
}

async function status(keel: KeelProcess): Promise<Status> {
  return (await keel.status()) as Status;
}

async function control(keel: KeelProcess, action: string, headers: Record<string, string>, query = ''): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${keel.opsUrl}/control/${action}${query}`, { method: 'POST', headers, signal: AbortSignal.timeout(60_000) });
  const text = await r.text();
  return { status: r.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** The venue's view of the account: positions and open orders (oid, coin, side, px, sz). */
async function venueView(url: string, user: string): Promise<{ positions: string[]; orders: string[] }> {
  const sim = await simState(url);
  return {
    positions: (sim.accounts.find((a) => a.address === user)?.positions ?? []).filter((p) => Number(p.szi) !== 0).map((p) => `${p.coin} ${p.szi}`),
    orders: sim.openOrders
      .filter((o) => o.user === user)
      .map((o) => `${o.oid} ${o.coin} ${o.side} ${o.px} ${o.sz}${o.cloid ? ` ${o.cloid}` : ''}`)
      .sort(),
  };
}

async function bootKeel(label: string): Promise<{ url: string; acct: Account; keel: KeelProcess; token: string }> {
  const { url } = await startSim({ speed: 1, seed: 21 });
  const acct = await paperAccount(url, label);
  // The operator's own resting order, far from the market: only a flatten or kill removes it.
  await manualOrder(acct, 'ETH', true, 0.9, '0.1', 'Gtc');
  const keel = await startKeel({ dataDir: acct.dataDir, env: { KEEL_API_URL: url }, name: `keel run (${label})` });
  await keel.child.waitForMsg('reconciled with the venue', 20_000);
  await eventually(async () => ((await status(keel)).mode === 'Normal' && (await status(keel)).gate === 'active' ? true : undefined), { timeoutMs: 10_000, what: 'Normal with the gate active' });
  // The token the runtime generated (no KEEL_API_TOKEN): owner-only, beside the data.
  const tokenFile = path.join(acct.dataDir, 'api-token');
  const token = readFileSync(tokenFile, 'utf8').trim();
  return { url, acct, keel, token };
}

describe('control API', () => {
  it('refuses every endpoint without the right bearer token, changes nothing, and audits the refusal', { timeout: 60_000 }, async () => {
    const { url, acct, keel, token } = await bootKeel('refused');
    const db = openDbView(acct.dataDir);
    try {
      const before = { status: await status(keel), venue: await venueView(url, acct.user), orders: db.orders() };
      expect(before.venue.orders.length).toBe(1);
      const auditBefore = readAudit(acct.dataDir).length;

      const wrong: Record<string, Record<string, string>> = {
        'no header': {},
        'empty bearer': { authorization: 'Bearer ' },
        'wrong token': { authorization: `Bearer ${'0'.repeat(token.length)}` },
        'prefix of the token': { authorization: `Bearer ${token.slice(0, -1)}` },
        'token plus a character': { authorization: `Bearer ${token}x` },
        'other scheme': { authorization: `Basic ${token}` },
        'bare token': { authorization: token },
      };
      let refused = 0;
      for (const action of ACTIONS) {
        for (const [how, headers] of Object.entries(wrong)) {
          const r = await control(keel, action, { ...headers, 'x-keel-actor': `mallory-${action}` }, action === 'reconcile' ? '?dryRun=false' : '');
          expect(r.status, `${action} with ${how}`).toBe(401);
          expect(r.body).toEqual({ error: 'a valid bearer token is required' });
          refused++;
        }
      }

      // Nothing changed: the mode, the gate, the last reconciliation, keel's orders, the venue.
      const after = { status: await status(keel), venue: await venueView(url, acct.user), orders: db.orders() };
      expect(after.status.mode).toBe(before.status.mode);
      expect(after.status.gate).toBe(before.status.gate);
      expect(after.status.lastReconciliation).toEqual(before.status.lastReconciliation);
      expect(after.status.positions).toEqual(before.status.positions);
      expect(after.venue).toEqual(before.venue);
      expect(after.orders).toEqual(before.orders);
      expect(keel.child.messages(/^mode /)).toEqual([]);
      expect(keel.child.messages(/^flatten|^trading gate changed$/)).toEqual([]);

      // Every refusal is audited as refused, with who asked; none as an accepted action.
      const rows = readAudit(acct.dataDir).slice(auditBefore);
      expect(rows.length).toBe(refused);
      for (const action of ACTIONS) {
        const mine = rows.filter((r) => r.action === `control.${action}.refused`);
        expect(mine.length, action).toBe(Object.keys(wrong).length);
        for (const r of mine) expect(r.actor).toMatch(new RegExp(`^mallory-${action}@(::ffff:)?127\\.0\\.0\\.1$`));
      }
      expect(rows.filter((r) => !r.action.endsWith('.refused'))).toEqual([]);
      // The audit never keeps what was presented as a token.
      for (const r of rows) expect(r.detail).not.toContain(token.slice(0, 12));
    } finally {
      db.close();
    }
  });

  it('each action takes effect and is audited with who and when', { timeout: 60_000 }, async () => {
    const { url, acct, keel, token } = await bootKeel('actions');
    const auth = (actor: string) => ({ authorization: `Bearer ${token}`, 'x-keel-actor': actor });
    const auditFrom = readAudit(acct.dataDir).length;
    /** Calls `action` as `actor`; returns the answer and the audit rows it added, with the call's wall-clock bounds. */
    const act = async (action: (typeof ACTIONS)[number], actor: string, query = '') => {
      const seen = readAudit(acct.dataDir).length;
      const t0 = Date.now();
      const r = await control(keel, action, auth(actor), query);
      const t1 = Date.now();
      const row = readAudit(acct.dataDir).slice(seen).find((a) => a.action === `control.${action}` && a.actor.startsWith(`${actor}@`));
      expect(row, `audit of ${action} by ${actor}`).toBeDefined();
      expect(row!.actor).toMatch(new RegExp(`^${actor}@(::ffff:)?127\\.0\\.0\\.1$`));
      // When: stamped by the runtime's clock while the call was being served.
      expect(row!.time).toBeGreaterThanOrEqual(t0);
      expect(row!.time).toBeLessThanOrEqual(t1);
      return { ...r, row: row! };
    };

    // pause: no new entries (the gate reduces); resume: back to active.
    const paused = await act('pause', 'alice');
    expect(paused.status).toBe(200);
    expect(paused.body).toEqual({ gate: 'reducing' });
    expect((await status(keel)).gate).toBe('reducing');
    const resumed = await act('resume', 'bob');
    expect(resumed.status).toBe(200);
    expect((await status(keel)).gate).toBe('active');

    // reconcile: a fresh report; the operator's manual order is reported, not touched.
    const before = (await status(keel)).lastReconciliation as { at: number };
    const dry = await act('reconcile', 'carol', '?dryRun=true');
    expect(dry.status).toBe(200);
    expect(dry.body.dryRun).toBe(true);
    expect(JSON.parse(dry.row.detail)).toEqual({ dryRun: 'true' });
    expect(((await status(keel)).lastReconciliation as { at: number }).at).toBe(before.at);
    const rec = await act('reconcile', 'carol');
    expect(rec.status).toBe(200);
    expect(rec.body.clean).toBe(true);
    expect(rec.body.dryRun).toBe(false);
    expect(String(rec.body.summary)).toMatch(/1 reportExternal/);
    const after = (await status(keel)).lastReconciliation as { at: number; clean: boolean };
    expect(after.at).toBeGreaterThan(before.at);
    expect(after.clean).toBe(true);
    expect((await venueView(url, acct.user)).orders.length).toBe(1);

    // kill: Emergency, the gate halted, the operator's resting order cancelled: flat and bare.
    const killed = await act('kill', 'dave');
    expect(killed.status, JSON.stringify(killed.body)).toBe(200);
    expect(killed.body.mode).toBe('Emergency');
    const inEmergency = await status(keel);
    expect(inEmergency.mode).toBe('Emergency');
    expect(inEmergency.gate).toBe('halted');
    expect(inEmergency.conditions).toContain('kill');
    expect(await venueView(url, acct.user)).toEqual({ positions: [], orders: [] });
    await keel.child.waitForMsg(/^mode \w+ → Emergency$/, 5_000);
    expect(keel.child.messages(/^mode \w+ → Emergency$/).map((l) => String(l.reason))).toEqual([`kill switch by ${killed.row.actor}`]);

    // ack: a clean reconciliation, then out of Emergency, the gate no longer halted.
    const acked = await act('ack', 'erin');
    expect(acked.status, JSON.stringify(acked.body)).toBe(200);
    expect(acked.body.ok).toBe(true);
    expect(acked.body.mode).not.toBe('Emergency');
    const out = await status(keel);
    expect(out.mode).not.toBe('Emergency');
    expect(out.gate).toBe('active');
    await keel.child.waitForMsg(/^mode Emergency → \w+$/, 5_000);
    expect(keel.child.messages(/^mode Emergency → \w+$/).map((l) => String(l.reason))).toEqual([`operator ack by ${acked.row.actor} after a clean reconciliation`]);

    // flatten: a manual position and a fresh manual resting order are gone; the venue says flat;
    // the gate is paused (no new entries after a flatten).
    await manualOrder(acct, 'BTC', true, 1.01, '0.01', 'Ioc');
    await manualOrder(acct, 'ETH', false, 1.1, '0.1', 'Gtc');
    const open = await venueView(url, acct.user);
    expect([open.positions.length, open.orders.length]).toEqual([1, 1]);
    const flat = await act('flatten', 'frank');
    expect(flat.status, JSON.stringify(flat.body)).toBe(200);
    expect(flat.body.flat).toBe(true);
    expect((flat.body.closeOrders as unknown[]).length).toBeGreaterThan(0);
    expect(await venueView(url, acct.user)).toEqual({ positions: [], orders: [] });
    expect((await status(keel)).gate).toBe('reducing');
    expect((await status(keel)).mode).not.toBe('Emergency');

    // An ack outside Emergency is refused (409) and changes nothing, but is still audited.
    const again = await act('ack', 'grace');
    expect(again.status).toBe(409);
    expect(again.body.ok).toBe(false);

    // Every accepted call in order, each with its actor.
    const rows = readAudit(acct.dataDir)
      .slice(auditFrom)
      .filter((r) => r.action.startsWith('control.'));
    expect(rows.map((r) => `${r.action} ${r.actor.split('@')[0]}`)).toEqual([
      'control.pause alice',
      'control.resume bob',
      'control.reconcile carol',
      'control.reconcile carol',
      'control.kill dave',
      'control.ack erin',
      'control.flatten frank',
      'control.ack grace',
    ]);
    const times = rows.map((r) => r.time);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
  });

  it('a kill that closes a position records the closes, so the first ack after it is accepted', { timeout: 40_000 }, async () => {
    const { url, acct, keel, token } = await bootKeel('kill-ack');
    const auth = { authorization: `Bearer ${token}`, 'x-keel-actor': 'oncall' };
    await manualOrder(acct, 'BTC', true, 1.01, '0.01', 'Ioc');
    expect((await venueView(url, acct.user)).positions.length).toBe(1);
    const killed = await control(keel, 'kill', auth);
    expect(killed.status, JSON.stringify(killed.body)).toBe(200);
    expect(await venueView(url, acct.user)).toEqual({ positions: [], orders: [] });
    const closes = (killed.body.flatten as { closeOrders: { cloid: string }[] }).closeOrders;
    expect(closes.length).toBeGreaterThan(0);

    // Every close the kill sent is on the venue; keel's database must know how each ended (filled),
    // not keep it as a bare intent for the next reconciliation to stumble on.
    const db = openDbView(acct.dataDir);
    try {
      const sim = await simState(url);
      for (const c of closes) expect(sim.orders.find((o) => o.cloid === c.cloid)?.status, c.cloid).toBe('filled');
      // The fills also arrive over the user stream: give them a moment before judging the record.
      const states = () => closes.map((c) => `${c.cloid} ${db.orders().find((o) => o.cloid === c.cloid)?.state ?? 'absent'}`);
      await eventually(() => (states().every((x) => x.endsWith(' filled')) ? true : undefined), { timeoutMs: 5_000, what: 'close orders recorded as filled' }).catch(() => undefined);
      expect(states(), "keel's records of the closes the kill switch sent").toEqual(closes.map((c) => `${c.cloid} filled`));
    } finally {
      db.close();
    }
    // The account is flat and nothing is in doubt: the operator's first ack is accepted.
    const acked = await control(keel, 'ack', auth);
    expect(acked.status, JSON.stringify(acked.body)).toBe(200);
    expect((await status(keel)).mode).not.toBe('Emergency');
  });

  it('refuses to bind off loopback without a token, with a one-line reason', { timeout: 40_000 }, async () => {
    const dataDir = path.join(tempDir('control-bind'), 'data');
    const refused = new ChildHandle('keel run (0.0.0.0, no token)', ['run'], { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '0.0.0.0:0', KEEL_API_URL: 'http://127.0.0.1:1' });
    const exit = await refused.exited;
    expect(exit.code).not.toBe(0);
    expect(exit.code).not.toBeNull();
    const lines = refused.stderr.trim().split('\n');
    expect(lines.length, refused.stderr).toBe(1);
    expect(lines[0]).toMatch(/KEEL_HTTP_ADDR.*0\.0\.0\.0:0.*KEEL_API_TOKEN/);
    expect(refused.lines).toEqual([]);
    // Refused before anything was created or listened.
    expect(existsSync(path.join(dataDir, 'keel.sqlite'))).toBe(false);

    // A token too short is refused the same way, without echoing it.
    const short = 'tiny-secret';
    const weak = new ChildHandle('keel run (short token)', ['run'], { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '0.0.0.0:0', KEEL_API_TOKEN: short, KEEL_API_URL: 'http://127.0.0.1:1' });
    expect((await weak.exited).code).not.toBe(0);
    expect(weak.stderr.trim().split('\n').length).toBe(1);
    expect(weak.stderr).toMatch(/apiToken \(KEEL_API_TOKEN\)/);
    expect(weak.stderr).not.toContain(short);

    // With a token it binds all interfaces; the configured token is the one that works.
    const { url } = await startSim({ speed: 1, seed: 22 });
    const token = 'control-api-test-token-0123456789';
    const keel = await startKeel({ dataDir, env: { KEEL_API_URL: url, KEEL_HTTP_ADDR: '0.0.0.0:0', KEEL_API_TOKEN: token }, name: 'keel run (0.0.0.0, token)' });
    expect(keel.opsUrl).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    expect(existsSync(path.join(dataDir, 'api-token'))).toBe(false);
    const port = new URL(keel.opsUrl).port;
    const base = `http://127.0.0.1:${port}`;
    const post = (headers: Record<string, string>) => fetch(`${base}/control/pause`, { method: 'POST', headers, signal: AbortSignal.timeout(10_000) });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: `Bearer ${token}`, 'x-keel-actor': 'ops' })).status).toBe(200);
  });
});
