/**
 * Account set-ups for the restart and flatten scenarios: a five-market data directory (the bundled
 * BTC and ETH candle files reused under three more names, data/README.md), paper keys written
 * where `keel run` looks for them, and trading history put on the account through the SDK with the
 * master key (as an operator's own trading would be): fills, open positions, resting orders.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ethers } from 'ethers';
import { ExchangeClient, HttpTransport, InfoClient } from '@nktkas/hyperliquid';
import { getJson, postJson, ROOT } from './lib.ts';

export const FIVE_COINS = ['BTC', 'ETH', 'SOL', 'ARB', 'DOGE'] as const;

/** A data directory whose markets.json lists five coins over the bundled candle files. */
export function fiveCoinData(dir: string): string {
  const src = path.join(ROOT, 'data');
  const manifest = JSON.parse(readFileSync(path.join(src, 'markets.json'), 'utf8')) as { coin: string; files: string[] }[];
  const abs = (e: { files: string[] }) => ({ ...e, files: e.files.map((f) => path.join(src, f)) });
  const [btc, eth] = manifest.map(abs) as [{ coin: string; files: string[] }, { coin: string; files: string[] }];
  const out = [btc, eth, { ...btc, coin: 'SOL' }, { ...eth, coin: 'ARB' }, { ...btc, coin: 'DOGE' }];
  const d = path.join(dir, 'data5');
  mkdirSync(d, { recursive: true });
  writeFileSync(path.join(d, 'markets.json'), JSON.stringify(out, null, 2));
  return d;
}

export interface PaperAccount {
  readonly master: ethers.Wallet;
  readonly agent: ethers.Wallet;
  readonly address: string;
}

/** Writes `paper-keys.json` into keel's data dir, funds the master and approves the agent. */
export async function paperAccount(url: string, dataDir: string, seed: string): Promise<PaperAccount> {
  const master = new ethers.Wallet(ethers.id(`bench:master:${seed}`));
  const agent = new ethers.Wallet(ethers.id(`bench:agent:${seed}`));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(path.join(dataDir, 'paper-keys.json'), JSON.stringify({ master: master.privateKey, agent: agent.privateKey }), { mode: 0o600 });
  await postJson(`${url}/_sim/accounts`, { address: master.address, usdc: 10_000_000 });
  const ex = new ExchangeClient({ transport: new HttpTransport({ apiUrl: url, isTestnet: true }), wallet: master });
  await ex.approveAgent({ agentAddress: agent.address as `0x${string}`, agentName: 'keel' });
  return { master, agent, address: master.address.toLowerCase() };
}

const px5 = (x: number) => String(Number(x.toPrecision(5)));

interface Order {
  a: number;
  b: boolean;
  p: string;
  s: string;
  r: boolean;
  t: { limit: { tif: 'Ioc' | 'Gtc' } };
}

/**
 * Puts history on the account with the master key: `fills` IOC round trips in BTC (tiny size, so
 * they net to zero), then one long position per coin in `positions`, then `resting` GTC bids far
 * under the market spread over those coins. Returns the fill and open-order counts the simulator reports.
 */
export async function seedHistory(url: string, acct: PaperAccount, opts: { fills: number; positions: readonly string[]; resting: number }): Promise<{ fills: number; openOrders: number; positions: number }> {
  const transport = new HttpTransport({ apiUrl: url, isTestnet: true, timeout: 30_000 });
  const ex = new ExchangeClient({ transport, wallet: acct.master });
  const info = new InfoClient({ transport });
  const meta = await info.meta();
  const asset = (coin: string) => meta.universe.findIndex((u) => u.name === coin);
  /** A size worth about `usd` at `px`, in whole lots. */
  const size = (coin: string, px: number, usd: number) => {
    const d = meta.universe[asset(coin)]!.szDecimals;
    return (Math.ceil(usd / px / 10 ** -d) * 10 ** -d).toFixed(d);
  };
  const send = async (orders: Order[]) => {
    for (let i = 0; i < orders.length; i += 40) await ex.order({ orders: orders.slice(i, i + 40), grouping: 'na' }).catch(() => {});
  };
  const fillCount = async () => (await getJson<{ fills: { user: string }[] }>(`${url}/_sim/state`)).fills.filter((f) => f.user === acct.address).length;
  // Round trips until the simulator reports enough fills.
  for (let round = 0; round < 10 && (await fillCount()) < opts.fills; round++) {
    const mids = await info.allMids();
    const m = Number(mids['BTC']);
    const need = opts.fills - (await fillCount());
    const orders: Order[] = [];
    for (let i = 0; i < Math.ceil(need / 2); i++) {
      orders.push({ a: asset('BTC'), b: true, p: px5(m * 1.01), s: size('BTC', m, 12), r: false, t: { limit: { tif: 'Ioc' } } });
      orders.push({ a: asset('BTC'), b: false, p: px5(m * 0.99), s: size('BTC', m, 12), r: false, t: { limit: { tif: 'Ioc' } } });
    }
    await send(orders);
  }
  const mids = await info.allMids();
  await send(opts.positions.map((c) => ({ a: asset(c), b: true, p: px5(Number(mids[c]) * 1.01), s: size(c, Number(mids[c]), 2_000), r: false, t: { limit: { tif: 'Ioc' } } })));
  const resting: Order[] = [];
  for (let i = 0; i < opts.resting; i++) {
    const c = opts.positions[i % opts.positions.length]!;
    resting.push({ a: asset(c), b: true, p: px5(Number(mids[c]) * (0.7 + (i % 10) / 100)), s: size(c, Number(mids[c]) * 0.7, 15), r: false, t: { limit: { tif: 'Gtc' } } });
  }
  await send(resting);
  const st = await getJson<{ fills: { user: string }[]; openOrders: { user: string }[]; accounts: { address: string; positions: { szi: string }[] }[] }>(`${url}/_sim/state`);
  return {
    fills: st.fills.filter((f) => f.user === acct.address).length,
    openOrders: st.openOrders.filter((o) => o.user === acct.address).length,
    positions: st.accounts.find((a) => a.address === acct.address)?.positions.filter((p) => Number(p.szi) !== 0).length ?? 0,
  };
}
