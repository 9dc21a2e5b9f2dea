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
});
