/**
 * Paper trading set-up: with no venue configured, keel starts the embedded simulator on
 * loopback (unless KEEL_API_URL points at one already running), creates throwaway master and
 * agent keys (kept in the data directory, owner-only, so a restart trades the same account),
 * funds the master and approves the agent — exactly what an operator does by hand on testnet.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ethers } from 'ethers';
import { ExchangeClient, HttpTransport, InfoClient } from '@nktkas/hyperliquid';
import { startSimulator, type Simulator } from '../src/sim/server/simulator.ts';
import type { KeelConfig } from '../src/config/config.ts';
import type { Logger } from '../src/ops/logger.ts';

export interface PaperVenue {
  readonly apiUrl: string;
  readonly agent: ethers.Wallet;
  readonly account: string;
  readonly sim?: Simulator;
}

/**
 * Where the replay starts in the bundled data: 200 bars of history (enough for the default
 * strategy's 174-bar warm-up) puts the first live signals a few market-minutes in, so a newcomer
 * at 60× sees signals, orders and fills within a minute.
 */
const PAPER_HISTORY_BARS = 200;

interface PaperKeys {
  master: string;
  agent: string;
}

function loadOrCreateKeys(dataDir: string): PaperKeys {
  const file = path.join(dataDir, 'paper-keys.json');
  if (existsSync(file)) {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<PaperKeys>;
    if (typeof parsed.master === 'string' && typeof parsed.agent === 'string') return { master: parsed.master, agent: parsed.agent };
    throw new Error(`${file} is not a paper key file; move it away to start a fresh paper account`);
  }
  const keys = { master: ethers.Wallet.createRandom().privateKey, agent: ethers.Wallet.createRandom().privateKey };
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(keys), { mode: 0o600 });
  return keys;
}

async function retry(what: string, log: Logger, step: () => Promise<void>, attempts = 6): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      return await step();
    } catch (e) {
      if (i >= attempts) throw e;
      const waitMs = 250 * 2 ** (i - 1);
      log.warn({ what, attempt: i, waitMs, err: (e as Error).message }, 'paper set-up step failed; retrying');
      await new Promise((r) => setTimeout(r, waitMs));
    }
  }
}

export async function setUpPaper(cfg: KeelConfig, log: Logger): Promise<PaperVenue> {
  let sim: Simulator | undefined;
  let apiUrl = cfg.apiUrl;
  if (!apiUrl) {
    sim = await startSimulator({ seed: cfg.paper.seed, speed: cfg.paper.speed, blockMs: cfg.paper.blockMs, historyBars: PAPER_HISTORY_BARS, log: (line) => log.warn({ component: 'sim' }, line) });
    apiUrl = sim.url;
    log.info({ url: apiUrl, speed: cfg.paper.speed, seed: cfg.paper.seed }, 'embedded simulator started');
  }
  const keys = loadOrCreateKeys(cfg.dataDir);
  const master = new ethers.Wallet(keys.master);
  const agent = new ethers.Wallet(keys.agent);
  const account = master.address.toLowerCase();
  const transport = new HttpTransport({ apiUrl, isTestnet: true, timeout: 10_000 });
  const info = new InfoClient({ transport });
  // Each step re-reads before it acts, so retrying a step after a lost answer never funds or
  // approves twice; a restart against a flaky venue must not die here.
  await retry('fund the paper account', log, async () => {
    const state = await info.clearinghouseState({ user: account });
    if (Number(state.marginSummary.accountValue) === 0 && state.assetPositions.length === 0) {
      const r = await fetch(`${apiUrl}/_sim/accounts`, { method: 'POST', body: JSON.stringify({ address: account, usdc: cfg.paper.usdc }) });
      if (!r.ok) throw new Error(`cannot fund the paper account: HTTP ${r.status} (is ${apiUrl} a keel simulator?)`);
      log.info({ account, usdc: cfg.paper.usdc }, 'paper account funded');
    }
  });
  await retry('approve the paper agent', log, async () => {
    const agents = await info.extraAgents({ user: account });
    if (!agents.some((a) => a.address.toLowerCase() === agent.address.toLowerCase())) {
      await new ExchangeClient({ transport, wallet: master }).approveAgent({ agentAddress: agent.address, agentName: 'keel' });
      log.info({ account, agent: agent.address.toLowerCase() }, 'paper agent approved');
    }
  });
  return { apiUrl, agent, account, ...(sim ? { sim } : {}) };
}
