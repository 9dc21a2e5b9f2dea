/**
 * A drill site: a keel directory in a temp dir (its `var/` is the data directory, `node_modules`
 * a link to the project's so `node -e "require('better-sqlite3')…"` works there as in a
 * checkout), a `keel sim` of its own (so the venue outlives every keel restart), and helpers to
 * act on the paper account by hand through the real SDK, as an operator does in the web app.
 *
 * Invariants: hand-placed orders never carry a cloid (the web app's don't), so keel can only
 * know them as external; every process is tracked by tests/helpers/processes.ts (killAll).
 */
import { mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { ExchangeClient, HttpTransport, InfoClient } from '@nktkas/hyperliquid';
import { ethers } from 'ethers';
import { dec, roundPrice, toWire } from '../../src/domain/decimal.ts';
import { openRetainedDatabase } from '../../src/store/native-lifetime.ts';
import { REPO_ROOT, simState, startKeel, startSim, tempDir, type ChildHandle, type KeelProcess, type SimState } from '../helpers/processes.ts';

export interface Site {
  /** The keel directory (cwd of every documented command). */
  readonly dir: string;
  /** `<dir>/var`: KEEL_DATA_DIR. */
  readonly dataDir: string;
  readonly sim: ChildHandle;
  readonly simUrl: string;
}

export async function openSite(label: string): Promise<Site> {
  const dir = tempDir(`drill-${label}`);
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  const dataDir = path.join(dir, 'var');
  mkdirSync(dataDir, { mode: 0o700 });
  // Speed 1: the strategy stays quiet (it needs many fresh closed candles), so what the account
  // holds is what the drill put there.
  const { sim, url } = await startSim({ speed: 1, seed: 11 });
  return { dir, dataDir, sim, simUrl: url };
}

export interface RunningKeel extends KeelProcess {
  /** host:port of the ops HTTP server (what KEEL_HTTP_ADDR would say in production). */
  readonly addr: string;
}

/** `keel run` on the site's data directory against its simulator; resolves once booted (reconciled). */
export async function runKeel(site: Site, name = 'keel run', env: Readonly<Record<string, string>> = {}): Promise<RunningKeel> {
  const keel = await startKeel({ dataDir: site.dataDir, env: { KEEL_API_URL: site.simUrl, KEEL_MARKETS: 'BTC,ETH', ...env }, name });
  await keel.child.waitForMsg('reconciled with the venue', 60_000);
  return { ...keel, addr: new URL(keel.opsUrl).host };
}

/** The paper account keel created in `var/paper-keys.json`. */
export function paperKeys(site: Site): { master: ethers.Wallet; agent: ethers.Wallet; account: string } {
  const k = JSON.parse(readFileSync(path.join(site.dataDir, 'paper-keys.json'), 'utf8')) as { master: string; agent: string };
  const master = new ethers.Wallet(k.master);
  return { master, agent: new ethers.Wallet(k.agent), account: master.address.toLowerCase() };
}

/** Orders "by hand" (no cloid) on the site's simulator, signed by `wallet`. */
export function byHand(site: Site, wallet: ethers.Wallet) {
  const transport = new HttpTransport({ apiUrl: site.simUrl, isTestnet: true, timeout: 10_000 });
  const info = new InfoClient({ transport });
  const ex = new ExchangeClient({ transport, wallet });
  async function order(coin: string, isBuy: boolean, sz: string, pxFactor: number, tif: 'Ioc' | 'Gtc') {
    const [meta, mids] = await Promise.all([info.meta(), info.allMids()]);
    const a = meta.universe.findIndex((u) => u.name === coin);
    const p = toWire(roundPrice(dec(mids[coin]!).mul(pxFactor), meta.universe[a]!.szDecimals));
    const r = await ex.order({ orders: [{ a, b: isBuy, p, s: sz, r: false, t: { limit: { tif } } }], grouping: 'na' });
    const st = r.response.data.statuses[0]!;
    if (typeof st === 'object' && 'error' in st) throw new Error(`hand order ${coin}: ${st.error}`);
    return st;
  }
  return {
    /** A market-like IOC that opens (or adds to) a position. */
    open: (coin: string, isBuy: boolean, sz: string) => order(coin, isBuy, sz, isBuy ? 1.01 : 0.99, 'Ioc'),
    /** A resting limit order far from the market. */
    rest: (coin: string, isBuy: boolean, sz: string) => order(coin, isBuy, sz, isBuy ? 0.8 : 1.2, 'Gtc'),
  };
}

/** The account's non-zero positions and open orders on the venue (the simulator's ground truth). */
export async function venueView(site: Site, account: string): Promise<{ positions: SimState['accounts'][number]['positions']; openOrders: SimState['openOrders'] }> {
  const s = await simState(site.simUrl);
  return {
    positions: (s.accounts.find((a) => a.address === account)?.positions ?? []).filter((p) => Number(p.szi) !== 0),
    openOrders: s.openOrders.filter((o) => o.user === account),
  };
}

/** The audit log's rows with `action`, read-only (the runtime may be writing). */
export function auditRows(site: Site, action: string): { actor: string; action: string; detail: string }[] {
  const db = openRetainedDatabase(path.join(site.dataDir, 'keel.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT actor, action, detail FROM audit_log WHERE action = ? ORDER BY id').all(action) as { actor: string; action: string; detail: string }[];
  } finally {
    db.close();
  }
}
