/**
 * `keel status`: the running instance's `/status` when one answers on KEEL_HTTP_ADDR, otherwise
 * the state kept in the database (mode, gate, positions, open orders, recent trades).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config.ts';
import { openStore } from '../store/index.ts';

async function fromRunning(httpAddr: string): Promise<unknown | undefined> {
  try {
    const r = await fetch(`http://${httpAddr}/status`, { signal: AbortSignal.timeout(2_000) });
    if (!r.ok) return undefined;
    return { source: 'running instance', ...((await r.json()) as object) };
  } catch {
    return undefined;
  }
}

async function fromDatabase(dataDir: string): Promise<unknown> {
  const file = path.join(dataDir, 'keel.sqlite');
  if (!existsSync(file)) throw new Error(`no running instance and no database at ${file}`);
  const store = await openStore({ path: file });
  try {
    return {
      source: 'database (keel is not running)',
      mode: store.modes.current() ?? null,
      gate: store.state.get('gate') ?? null,
      positions: store.positions.all().map((p) => ({ coin: p.coin, szi: p.szi.toFixed(), entryPx: p.entryPx.toFixed(), stage: p.stage })),
      openOrders: store.orders.open().map((o) => ({ cloid: o.cloid, coin: o.coin, kind: o.kind, side: o.side, sz: o.sz.toFixed(), state: o.state })),
      unresolvedOrders: store.orders.unresolved().length,
      recentTrades: store.trades.list({ limit: 10 }).map((t) => ({ coin: t.coin, direction: t.direction, sz: t.sz.toFixed(), netPnl: t.netPnl.toFixed(), closedAt: t.closedAt })),
      equity: store.equity.latest()?.accountValue.toFixed() ?? null,
    };
  } finally {
    store.close();
  }
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('mode, actors, positions, open orders and the last reconciliation (from the running instance, or the database)')
    .option('--config <file>', 'configuration file (JSON or YAML)')
    .option('--json', 'print JSON (default: indented JSON too; kept for scripts)')
    .action(async (o: { config?: string }) => {
      const cfg = loadConfig({ env: process.env, ...(o.config ? { file: o.config } : {}) });
      const s = (await fromRunning(cfg.httpAddr)) ?? (await fromDatabase(cfg.dataDir));
      process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    });
}
