/**
 * Acceptance 1 of the runtime issue, on the real process: `keel run` with no configuration but a
 * data directory and an ops address starts the embedded simulator and, within 60 seconds, logs a
 * signal, a risk verdict, an order with a cloid, fills and a closed trade's PnL. The embedded
 * simulator's ground truth then agrees with keel's database about every order and position;
 * SIGTERM stops it with exit 0, and `keel status` reads the state from the database.
 *
 * Speed: the replay runs at 240× (the default is 60×; the first signal of the default replay
 * window comes about 26 market-minutes in, so the defaults log one within ~30 s of wall time, which
 * tests/unit/strategy-btc-smoke.test.ts pins down from the data side).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { disagreements, eventually, killAll, openDbView, removeTempDirs, runCli, simState, startKeel, tempDir } from '../helpers/processes.ts';

afterEach(killAll);
afterAll(removeTempDirs);

const CLOID = /^0x[0-9a-f]{32}$/;

describe('keel run, paper trading with no configuration', () => {
  it('trades end to end within 60 s, agrees with its simulator, stops cleanly and reports from the database', { timeout: 120_000 }, async () => {
    const dataDir = tempDir('paper');
    const keel = await startKeel({ dataDir, env: { KEEL_PAPER_SPEED: '240' } });
    const log = keel.child;
    const started = Date.now();

    // The whole story of one trade, in log order, within the 60-second budget.
    const closed = await log.waitForMsg('trade closed (PnL, fees included)', 60_000);
    expect(Date.now() - started).toBeLessThan(60_000);
    const signal = log.messages('signal')[0]!;
    expect(signal.coin).toMatch(/^(BTC|ETH)$/);
    expect(['long', 'short']).toContain(signal.direction);
    expect(log.messages(/^risk verdict: (approved|denied)$/).length).toBeGreaterThan(0);
    const committed = log.messages('entry intent committed')[0]!;
    expect(committed.cloid).toMatch(CLOID);
    expect(log.messages('sending order').some((l) => l.cloid === committed.cloid)).toBe(true);
    const fills = log.messages('fill');
    expect(fills.length).toBeGreaterThan(0);
    for (const f of fills) expect(f.cloid).toMatch(CLOID);
    expect(log.messages('protecting position').length).toBeGreaterThan(0);
    expect(Number.isFinite(Number(closed.netPnl))).toBe(true);
    expect(Number(closed.fees)).toBeGreaterThan(0);

    // The embedded simulator is the venue of record: find it through /status.
    const status = await keel.status();
    expect(status.venue.network).toBe('paper');
    const simUrl = status.venue.url;
    const account = status.account;
    const db = openDbView(dataDir);
    try {
      // Orders in flight make the two views momentarily differ: compare at a quiet moment.
      await eventually(
        async () => {
          const sim = await simState(simUrl);
          const d = disagreements({ orders: db.orders(), positions: db.positions(), fills: db.fills() }, sim, account);
          if (d.length) throw new Error(d.join('\n'));
          return true;
        },
        { timeoutMs: 15_000, intervalMs: 250, what: 'database and simulator agree' },
      );
      const orders = db.orders();
      const sim = await simState(simUrl);
      const ours = sim.orders.filter((o) => o.user === account);
      // Not vacuous: the comparison covered the entry, its protection and the exit.
      expect(ours.length).toBeGreaterThanOrEqual(3);
      expect(orders.some((o) => o.kind === 'entry' && o.state === 'filled')).toBe(true);
      expect(orders.some((o) => o.kind === 'stop_loss')).toBe(true);
      expect(db.tradeCount()).toBeGreaterThan(0);

      // Graceful stop.
      const exit = await log.kill('SIGTERM');
      expect(exit).toEqual({ code: 0, signal: null });
      expect(log.messages('stopped').length).toBe(1);
      const unresolved = db.orders().filter((o) => ['intent', 'submitting', 'unknown'].includes(o.state));
      expect(unresolved).toEqual([]);

      // No instance answers any more: `keel status` reads the database.
      const out = await runCli(['status'], { KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '127.0.0.1:1' });
      expect(out.exit.code, out.stderr).toBe(0);
      const report = JSON.parse(out.stdout) as { source: string; positions: { coin: string; szi: string }[]; openOrders: { cloid: string; state: string }[]; recentTrades: unknown[] };
      expect(report.source).toMatch(/database/);
      expect(report.recentTrades.length).toBe(Math.min(10, db.tradeCount()));
      const live = db.positions().filter((p) => Number(p.szi) !== 0);
      expect(report.positions.filter((p) => Number(p.szi) !== 0).map((p) => [p.coin, p.szi])).toEqual(live.map((p) => [p.coin, p.szi]));
      const open = db.orders().filter((o) => ['resting', 'partially_filled', 'cancelling'].includes(o.state));
      expect(report.openOrders.map((o) => o.cloid).sort()).toEqual(open.map((o) => o.cloid).sort());
    } finally {
      db.close();
    }
  });
});
