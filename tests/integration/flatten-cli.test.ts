/**
 * `keel flatten` end to end, in process (registerFlatten on a fresh commander program): a paper
 * data directory with paper-keys.json, KEEL_API_URL at a real simulator, the real adapter and a
 * real SQLite store. Flat → exit 0, the report on stdout, the closes and an audit entry in the
 * database; refusals and failures → the exit code and one line on stderr, nothing done.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ExchangeClient } from '@nktkas/hyperliquid';
import { Command, CommanderError } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerFlatten, type FlattenCommandDeps } from '../../src/cli/flatten-command.ts';
import { dec, roundPrice, toWire } from '../../src/domain/decimal.ts';
import { openStore } from '../../src/store/index.ts';
import { startRig, walletFor, type SdkRig } from '../helpers/sim.ts';

let rig: SdkRig;
const dirs: string[] = [];

beforeAll(async () => {
  rig = await startRig('flatten-cli', { bookIntervalMs: 0 });
  rig.sim.step(1_000);
});
afterAll(async () => {
  await rig.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Paper {
  readonly dataDir: string;
  readonly user: string;
  readonly env: Record<string, string>;
}

/**
 * A paper data directory as `keel run` leaves it (paper-keys.json), its account funded with the
 * agent approved, a BTC long, an ETH short, a resting order with a cloid and one without.
 */
async function paperAccount(label: string, opts: { positions?: boolean } = {}): Promise<Paper> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'keel-flatten-cli-'));
  dirs.push(dataDir);
  const master = walletFor(`flatten-cli:${label}:master`);
  const agent = walletFor(`flatten-cli:${label}:agent`);
  writeFileSync(path.join(dataDir, 'paper-keys.json'), JSON.stringify({ master: master.privateKey, agent: agent.privateKey }), { mode: 0o600 });
  rig.sim.fund(master.address, 100_000);
  const masterEx = new ExchangeClient({ transport: rig.http, wallet: master });
  await masterEx.approveAgent({ agentAddress: agent.address, agentName: 'keel' });
  if (opts.positions !== false) {
    const meta = await rig.info.meta();
    const mids = await rig.info.allMids();
    const ex = new ExchangeClient({ transport: rig.http, wallet: agent });
    const order = (coin: string, b: boolean, factor: number, s: string, tif: 'Ioc' | 'Gtc', c?: `0x${string}`) => {
      const a = meta.universe.findIndex((u) => u.name === coin);
      const p = toWire(roundPrice(dec(mids[coin]!).mul(factor), meta.universe[a]!.szDecimals));
      return { a, b, p, s, r: false, t: { limit: { tif } }, ...(c ? { c } : {}) };
    };
    await ex.order({ orders: [order('BTC', true, 1.01, '0.02', 'Ioc'), order('ETH', false, 0.99, '0.3', 'Ioc')], grouping: 'na' });
    await ex.order({ orders: [order('BTC', true, 0.9, '0.002', 'Gtc', `0x6b65656c${label.length.toString(16).padStart(24, 'f')}`)], grouping: 'na' });
    await masterEx.order({ orders: [order('ETH', true, 0.9, '0.1', 'Gtc')], grouping: 'na' });
  }
  const env = { KEEL_NETWORK: 'paper', KEEL_API_URL: rig.sim.url, KEEL_DATA_DIR: dataDir, KEEL_HTTP_ADDR: '127.0.0.1:9' };
  return { dataDir, user: master.address.toLowerCase(), env };
}

function truthOf(user: string) {
  const gt = rig.sim.exchange.groundTruth();
  return {
    positions: (gt.accounts.find((x) => x.address === user)?.positions ?? []).filter((p) => !dec(p.szi).isZero()),
    openOrders: gt.openOrders.filter((o) => o.user === user),
  };
}

async function runCli(args: string[], deps: FlattenCommandDeps): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const program = new Command('keel').exitOverride().configureOutput({ writeErr: (s) => void (stderr += s), writeOut: (s) => void (stdout += s) });
  registerFlatten(program, { isTTY: false, log: { info() {}, warn() {}, error() {} }, ...deps, stdout: (s) => void (stdout += s) });
  try {
    await program.parseAsync(['node', 'keel', 'flatten', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode, stdout, stderr };
    throw e;
  }
}

describe('keel flatten', () => {
  it('--yes flattens the paper account, prints the report, records the closes and an audit entry, exits 0', async () => {
    const p = await paperAccount('yes');
    expect(truthOf(p.user).positions).toHaveLength(2);
    expect(truthOf(p.user).openOrders).toHaveLength(2);
    const r = await runCli(['--yes'], { env: p.env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { flat: boolean; cancelled: number; closeOrders: { cloid: string; coin: string; result: { kind: string } }[] };
    expect(report.flat).toBe(true);
    expect(report.cancelled).toBe(2);
    expect(report.closeOrders.map((c) => [c.coin, c.result.kind]).sort()).toEqual([
      ['BTC', 'filled'],
      ['ETH', 'filled'],
    ]);
    expect(truthOf(p.user)).toEqual({ positions: [], openOrders: [] });

    const store = await openStore({ path: path.join(p.dataDir, 'keel.sqlite') });
    try {
      for (const c of report.closeOrders) expect(store.orders.byCloid(c.cloid)).toMatchObject({ kind: 'flatten', reduceOnly: true, tif: 'Ioc', state: 'filled' });
      const asked = store.audit.list({ action: 'flatten' });
      const result = store.audit.list({ action: 'flatten.result' });
      expect(asked).toHaveLength(1);
      expect(result).toHaveLength(1);
      expect(asked[0]).toMatchObject({ actor: 'cli', detail: { network: 'paper', account: p.user, deadlineMs: 60_000, slippagePct: 1, confirmedBy: '--yes' } });
      expect(result[0]).toMatchObject({ actor: 'cli', detail: { network: 'paper', account: p.user, flat: true } });
      // The command is on record before anything was sent.
      expect(asked[0]!.id).toBeLessThan(result[0]!.id);
    } finally {
      store.close();
    }
  });

  it('on a terminal asks first: a "no" does nothing (exit 2), a "yes" flattens', async () => {
    const p = await paperAccount('tty');
    const questions: string[] = [];
    const no = await runCli([], { env: p.env, isTTY: true, confirm: async (q) => (questions.push(q), false) });
    expect(no.code).toBe(2);
    expect(no.stderr.trim()).toBe('keel flatten: not confirmed: nothing done');
    expect(questions[0]).toContain(p.user);
    expect(truthOf(p.user).positions).toHaveLength(2);
    const yes = await runCli([], { env: p.env, isTTY: true, confirm: async () => true });
    expect(yes.code).toBe(0);
    expect(truthOf(p.user)).toEqual({ positions: [], openOrders: [] });
  });

  it('refuses without --yes when not on a terminal, touching nothing', async () => {
    const p = await paperAccount('notty');
    const r = await runCli([], { env: p.env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('keel flatten: refusing to flatten without --yes when not on a terminal');
    expect(truthOf(p.user).positions).toHaveLength(2);
    expect(truthOf(p.user).openOrders).toHaveLength(2);
  });

  it('paper without KEEL_API_URL and no running keel: says the embedded simulator is gone (exit 2)', async () => {
    const p = await paperAccount('nourl', { positions: false });
    const { KEEL_API_URL: _gone, ...env } = p.env;
    const r = await runCli(['--yes'], { env });
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/embedded simulator .* stopped with the runtime; point KEEL_API_URL at a running simulator/);
  });

  it('not flat by the deadline: exit 1 with the reason on one line, the report on stdout, audited', async () => {
    const p = await paperAccount('capped');
    const r = await runCli(['--yes', '--deadline', '400', '--slippage', '0.0001'], { env: p.env });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^keel flatten: NOT flat: deadline passed: 2 position\(s\) \(.+\) and 0 open order\(s\) remain$/);
    expect(JSON.parse(r.stdout)).toMatchObject({ flat: false, remaining: { orders: [] } });
    expect(truthOf(p.user).positions).toHaveLength(2);
    const store = await openStore({ path: path.join(p.dataDir, 'keel.sqlite') });
    try {
      expect(store.audit.list({ action: 'flatten.result' })[0]).toMatchObject({ detail: { flat: false } });
    } finally {
      store.close();
    }
  });

  it('rejects a bad --deadline with one line', async () => {
    const p = await paperAccount('badarg', { positions: false });
    const r = await runCli(['--yes', '--deadline', 'soon'], { env: p.env });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--deadline must be a positive integer/);
  });
});
