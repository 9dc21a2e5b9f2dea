/**
 * RUNBOOK drills: emergency closure through the CLI (`keel kill --yes`), through HTTP (the
 * documented curl line, token from var/api-token), and with the runtime stopped
 * (`KEEL_API_URL=… keel flatten --yes`); leaving Emergency (`keel reconcile`, then `keel ack`).
 * One site (simulator + data directory) for the whole story, as an operator's night would go.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, removeTempDirs } from '../helpers/processes.ts';
import { jsonOf, runDrill } from './runbook.ts';
import { auditRows, byHand, openSite, paperKeys, runKeel, venueView } from './site.ts';

afterEach(killAll);
afterAll(removeTempDirs);

describe('RUNBOOK drills: emergency closure and leaving Emergency', () => {
  it('kill through the CLI, leave Emergency, kill through HTTP, flatten with keel stopped', { timeout: 90_000 }, async () => {
    const site = await openSite('emergency');
    let keel = await runKeel(site);
    const { agent, account } = paperKeys(site);
    const hand = byHand(site, agent);
    const cmd = { cwd: site.dir, env: { KEEL_HTTP_ADDR: keel.addr } };

    // ── 1. Emergency closure through the CLI ──
    await hand.open('BTC', true, '0.01');
    await hand.open('ETH', false, '0.2');
    await hand.rest('ETH', true, '0.1');
    let venue = await venueView(site, account);
    expect(venue.positions.map((p) => p.coin).sort()).toEqual(['BTC', 'ETH']);
    expect(venue.openOrders.length).toBeGreaterThan(0);

    const kill = await runDrill('kill-cli', cmd);
    const killed = jsonOf<{ mode: string; flatten: { flat: boolean } }>(kill[0]!);
    expect(killed.mode).toBe('Emergency');
    expect(killed.flatten.flat).toBe(true);
    expect(jsonOf<{ mode: string }>(kill[1]!).mode).toBe('Emergency');
    expect(await venueView(site, account)).toEqual({ positions: [], openOrders: [] });
    // The control call is on record with who asked.
    expect(auditRows(site, 'control.kill').map((a) => a.actor)).toEqual([expect.stringMatching(/^cli:.+@127\.0\.0\.1$/)]);

    // ── 2. Leaving Emergency: dry run, reconcile, ack ──
    const leave = await runDrill('leave-emergency', cmd);
    const dry = jsonOf<{ dryRun: boolean; applied: number; lines: string[] }>(leave[0]!);
    expect(dry).toMatchObject({ dryRun: true, applied: 0 });
    const rec = jsonOf<{ dryRun: boolean; clean: boolean; summary: string }>(leave[1]!);
    expect(rec.dryRun).toBe(false);
    const ack = jsonOf<{ ok: boolean; mode: string; reconciliation: string }>(leave[2]!);
    expect(ack).toMatchObject({ ok: true, reconciliation: 'clean' });
    expect(ack.mode).not.toBe('Emergency');
    const after = jsonOf<{ mode: string; lastReconciliation: { clean: boolean } }>(leave[3]!);
    expect(after.mode).not.toBe('Emergency');
    expect(after.lastReconciliation.clean).toBe(true);
    expect(auditRows(site, 'control.ack')).toHaveLength(1);

    // ── 3. Emergency closure through HTTP (the curl line, token from var/api-token) ──
    await hand.open('BTC', false, '0.02');
    await hand.rest('BTC', false, '0.01');
    venue = await venueView(site, account);
    expect(venue.positions).toHaveLength(1);
    const [curl] = await runDrill('kill-http', { ...cmd, substitute: [['127.0.0.1:9464', keel.addr]] });
    expect(jsonOf<{ mode: string; flatten: { flat: boolean } }>(curl!)).toMatchObject({ mode: 'Emergency', flatten: { flat: true } });
    expect(await venueView(site, account)).toEqual({ positions: [], openOrders: [] });
    expect(auditRows(site, 'control.kill').map((a) => a.actor)).toEqual([expect.stringMatching(/^cli:/), expect.stringMatching(/^http@127\.0\.0\.1$/)]);
    // Without the token nothing happens (and that is audited too).
    const refused = await fetch(`${keel.opsUrl}/control/kill`, { method: 'POST' });
    expect(refused.status).toBe(401);

    // ── 4. keel is stopped: flatten from the command line against the venue ──
    expect(await keel.child.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    await hand.open('ETH', true, '0.3');
    await hand.rest('ETH', false, '0.1');
    venue = await venueView(site, account);
    expect(venue.positions).toHaveLength(1);
    expect(venue.openOrders).toHaveLength(1);
    const [flat] = await runDrill('flatten-stopped', { ...cmd, substitute: [['http://127.0.0.1:3001', site.simUrl]] });
    expect(jsonOf<{ flat: boolean; cancelled: number }>(flat!)).toMatchObject({ flat: true, cancelled: 1 });
    expect(await venueView(site, account)).toEqual({ positions: [], openOrders: [] });

    // The mode is persisted: the next start is still in Emergency, until an ack.
    keel = await runKeel(site, 'keel run (after flatten)');
    expect((await keel.status()).mode).toBe('Emergency');
  });
});
