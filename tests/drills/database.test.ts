/**
 * RUNBOOK drills: a reconciliation with differences (an order the operator placed by hand is
 * reported as external and left alone), a backup taken while keel runs, a corrupted database
 * (`keel blackbox verify` fails on a tampered row; SQLite's integrity_check), restoring the
 * backup (state intact, chain whole), and a lost database (the venue is the truth: boot adopts
 * its position and protects it).
 * One site for the whole story: each step starts from what the previous one left.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openRetainedDatabase } from '../../src/store/native-lifetime.ts';
import { disagreements, killAll, openDbView, removeTempDirs, simState, unprotectedPositions } from '../helpers/processes.ts';
import { jsonOf, runDrill } from './runbook.ts';
import { byHand, openSite, paperKeys, runKeel, venueView } from './site.ts';

afterEach(killAll);
afterAll(removeTempDirs);

interface Reconciled {
  clean: boolean;
  summary: string;
  counts: Record<string, number>;
  lines: string[];
  applied: number;
  dryRun: boolean;
}

interface StatusView {
  mode: string;
  positions: { coin: string; szi: string }[];
  openOrders: { cloid: string; state: string }[];
  lastReconciliation: { clean: boolean; counts?: Record<string, number> } | null;
  blackbox?: { head: number };
}

describe('RUNBOOK drills: reconciliation, backup, corrupted and lost database', () => {
  it('external order reported and left alone; backup while running; tamper detected; restore; lost database rebuilt from the venue', { timeout: 90_000 }, async () => {
    const site = await openSite('database');
    let keel = await runKeel(site);
    const { master, agent, account } = paperKeys(site);
    const cmd = () => ({ cwd: site.dir, env: { KEEL_HTTP_ADDR: keel.addr } });

    // ── 1. A reconciliation with a difference: an order placed by hand in the web app ──
    const manual = await byHand(site, master).rest('ETH', true, '0.1');
    const oid = typeof manual === 'object' && 'resting' in manual ? manual.resting.oid : -1;
    expect(oid).toBeGreaterThan(0);
    const [dry, real] = await runDrill('reconcile', cmd());
    for (const r of [dry!, real!]) {
      const rep = jsonOf<Reconciled>(r);
      expect(rep.counts['reportExternal']).toBe(1);
      expect(rep.lines.join('\n')).toContain(String(oid));
      // Only external orders: nothing for keel to fix, so the report is clean.
      expect(rep.clean).toBe(true);
    }
    expect(jsonOf<Reconciled>(dry!).dryRun).toBe(true);
    expect(jsonOf<Reconciled>(real!).dryRun).toBe(false);
    // Left alone: still resting on the venue.
    expect((await venueView(site, account)).openOrders.map((o) => o.oid)).toEqual([oid]);

    // ── 2. Backup while keel runs (with a position keel protects, so there is state to keep) ──
    await byHand(site, agent).open('BTC', true, '0.01');
    const protectedState = await reconcileUntilProtected(site, account, cmd);
    const backup = await runDrill('backup', cmd());
    expect(backup[1]!.stdout.trim()).toBe('backup ok');
    expect(backup[2]!.stdout.trim()).toBe('ok');
    const before = snapshot(path.join(site.dir, 'backup/keel.sqlite'));
    expect(before.positions).toEqual([{ coin: 'BTC', szi: '0.01' }]);
    expect(before.blackboxHead).toBeGreaterThan(0);
    expect(before.orders).toContainEqual(expect.objectContaining({ kind: 'stop_loss', cloid: protectedState.stopCloid }));

    // ── 3. Corrupted database: a tampered black-box row ──
    expect(await keel.child.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    tamper(path.join(site.dataDir, 'keel.sqlite'));
    const check = await runDrill('db-check', { ...cmd(), allowFailure: true });
    expect(check[0]!.code).toBe(1);
    expect(check[0]!.stdout).toMatch(/^broken at seq \d+: /m);
    // SQLite itself is fine: the damage is in the content, which only the chain can tell.
    expect(check[1]!.stdout.trim()).toBe('ok');

    // ── 4. Restore the backup, start, check ──
    await runDrill('restore', cmd());
    keel = await runKeel(site, 'keel run (restored)');
    const after = await runDrill('after-start', cmd());
    expect(after[0]!.stdout).toMatch(/^ok\b/);
    const rec = jsonOf<Reconciled>(after[1]!);
    expect(rec.counts['reportExternal']).toBe(1); // the hand-placed order, still left alone
    const status = jsonOf<StatusView>(after[2]!);
    expect(status.positions.map((p) => [p.coin, p.szi])).toEqual([['BTC', '0.01']]);
    expect(status.openOrders.map((o) => o.cloid)).toContain(protectedState.stopCloid);
    expect(unprotectedPositions(await simState(site.simUrl), account)).toEqual([]);

    // ── 5. Lost database: keel stopped, a position opened meanwhile, the file gone ──
    expect(await keel.child.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    await byHand(site, agent).open('ETH', false, '0.2');
    await runDrill('lost-db', cmd());
    keel = await runKeel(site, 'keel run (fresh database)');
    const db = openDbView(site.dataDir);
    try {
      // The venue is the truth: both positions rebuilt (from the venue's fills, or adopted),
      // every one with a stop on the venue (the ETH one bare until keel placed it).
      await eventually(async () => {
        const sim = await simState(site.simUrl);
        const bare = unprotectedPositions(sim, account);
        const pos = disagreements({ orders: [], positions: db.positions() }, { ...sim, orders: [] }, account);
        const ethStop = db.positions().find((p) => p.coin === 'ETH')?.stopCloid;
        return bare.length === 0 && pos.length === 0 && ethStop ? true : undefined;
      });
      expect(db.positions().map((p) => [p.coin, p.szi])).toEqual([
        ['BTC', '0.01'],
        ['ETH', '-0.2'],
      ]);
    } finally {
      db.close();
    }
    // The orders of the lost database (its stop, the hand-placed order) are now strangers: reported, left alone.
    const [, again] = await runDrill('reconcile', cmd());
    const rep = jsonOf<Reconciled>(again!);
    expect(rep.counts['reportExternal']).toBeGreaterThanOrEqual(2);
    expect((await venueView(site, account)).openOrders.map((o) => o.oid)).toContain(oid);
  });
});

async function eventually<T>(fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs the documented `keel reconcile` until keel holds the hand-opened position with its own stop. */
async function reconcileUntilProtected(site: Awaited<ReturnType<typeof openSite>>, account: string, cmd: () => { cwd: string; env: Record<string, string> }): Promise<{ stopCloid: string }> {
  return eventually(async () => {
    await runDrill('reconcile', cmd());
    const db = openDbView(site.dataDir);
    try {
      const p = db.positions().find((x) => x.coin === 'BTC');
      const sim = await simState(site.simUrl);
      if (!p?.stopCloid || unprotectedPositions(sim, account).length) return undefined;
      return { stopCloid: p.stopCloid };
    } finally {
      db.close();
    }
  });
}

/** What the drill compares across a backup: positions, orders, the black box's head. */
function snapshot(file: string): { positions: { coin: string; szi: string }[]; orders: { cloid: string; kind: string; state: string }[]; blackboxHead: number } {
  const db = openRetainedDatabase(file, { readonly: true, fileMustExist: true });
  try {
    return {
      positions: db.prepare('SELECT coin, szi FROM positions ORDER BY coin').all() as { coin: string; szi: string }[],
      orders: db.prepare('SELECT cloid, kind, state FROM orders ORDER BY seq').all() as { cloid: string; kind: string; state: string }[],
      blackboxHead: db.prepare('SELECT head_seq FROM blackbox_meta').pluck().get() as number,
    };
  } finally {
    db.close();
  }
}

/** Changes one black-box row's payload in place, as a disk fault or a hand edit would. */
function tamper(file: string): void {
  const db = openRetainedDatabase(file, { fileMustExist: true });
  try {
    const seq = db.prepare('SELECT seq FROM blackbox ORDER BY seq LIMIT 1 OFFSET 2').pluck().get() as number | undefined;
    if (seq === undefined) throw new Error('the black box holds fewer than 3 rows: nothing to tamper with');
    db.prepare("UPDATE blackbox SET payload = json_set(payload, '$.tampered', 1) WHERE seq = ?").run(seq);
  } finally {
    db.close();
  }
}
