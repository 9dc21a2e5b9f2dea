/**
 * Scenarios 5, 6 and 7 (its session half): real `keel run` processes against a real `keel sim` on
 * a five-market data directory.
 *  - restart to ready: the account holds 2,000 fills, 5 positions and 100 open orders (95 resting
 *    bids placed by the operator's key plus keel's 5 protective stops); keel is SIGKILLed while
 *    ready and restarted on the same data directory; the time from spawn to `/readyz` 200, against
 *    `node -e 0` on the same binary (process start);
 *  - emergency flatten: 5 positions and 50 resting orders; from `POST /control/kill` to its answer,
 *    which comes once keel's flatten has seen the venue report flat (checked again on
 *    `/_sim/state`); once clean, once with 30 % of venue requests failing (`http5xx` fault);
 *  - memory: RSS of a `keel run` after a paper session at 600× (10 market hours a minute).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fiveCoinData, FIVE_COINS, paperAccount, seedHistory } from './account.ts';
import { keelConfig, waitReady } from './tick-to-order.ts';
import { Child, control, getJson, postJson, rssMb, sleep, startKeel, startSim, summary, tempDir, type ScenarioResult } from './lib.ts';

interface SimTruth {
  readonly openOrders: readonly { user: string }[];
  readonly accounts: readonly { address: string; positions: readonly { szi: string }[] }[];
}

/**
 * Waits until keel is ready (its boot reconciliation adopted the history and protected the
 * positions); asks for one reconciliation half-way if it is not. Polls gently: hammering the
 * control API starves the dead-man keeper, and the venue then cancels every open order.
 */
async function settle(opsUrl: string, timeoutMs: number): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  let asked = false;
  while (performance.now() < end) {
    if (await fetch(`${opsUrl}/readyz`).then((x) => x.status === 200).catch(() => false)) return true;
    if (!asked && performance.now() > end - timeoutMs / 2) {
      asked = true;
      await control(opsUrl, 'reconcile').catch(() => undefined);
    }
    await sleep(1_000);
  }
  return false;
}

export function processStartMs(runs = 5): number[] {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    execFileSync(process.execPath, ['-e', '0']);
    xs.push(performance.now() - t);
  }
  return xs;
}

export async function restartToReady(opts: { restarts: number }): Promise<ScenarioResult> {
  const dir = tempDir('restart');
  const { child: sim, url } = await startSim(dir, ['--data', fiveCoinData(dir), '--speed', '60', '--seed', '11']);
  let keel: Awaited<ReturnType<typeof startKeel>> | undefined;
  try {
    const dataDir = path.join(dir, 'var');
    const acct = await paperAccount(url, dataDir, 'restart');
    const seeded = await seedHistory(url, acct, { fills: 2_000, positions: FIVE_COINS, resting: 95 });
    const cfg = keelConfig(dir, url, { markets: [...FIVE_COINS] });
    keel = await startKeel(dir, cfg);
    const clean = await settle(keel.opsUrl, 90_000);
    const truth = await getJson<SimTruth & { fills: { user: string }[] }>(`${url}/_sim/state`);
    const before = { fills: truth.fills.filter((f) => f.user === acct.address).length, openOrders: truth.openOrders.filter((o) => o.user === acct.address).length, positions: truth.accounts.find((a) => a.address === acct.address)?.positions.filter((p) => Number(p.szi) !== 0).length ?? 0 };
    const times: number[] = [];
    const listening: number[] = [];
    for (let i = 0; i < opts.restarts; i++) {
      keel.child.proc.kill('SIGKILL');
      await keel.child.exited;
      const k = await startKeel(dir, cfg);
      keel = k;
      listening.push(performance.now() - k.startedAt);
      await waitReady(k.opsUrl, 60_000);
      times.push(performance.now() - k.startedAt);
      await sleep(1_000);
    }
    const start = summary(processStartMs());
    const t = summary(times);
    const overStart = t.p50 - start.p50;
    return {
      id: 'restart_to_ready',
      title: 'Restart to ready',
      method: `real processes: SIGKILL keel run while ready, respawn on the same data dir, spawn → /readyz 200 (polled every 5 ms), ${opts.restarts} restarts; process start = node -e 0`,
      figures: [
        { name: 'spawn → ready (median)', value: t.p50, unit: 'ms' },
        { name: 'process start (node -e 0)', value: start.p50, unit: 'ms' },
        { name: 'ready − process start', value: overStart, unit: 'ms', target: '< 1000', met: overStart < 1000 },
        { name: 'spawn → ops listening (modules loaded)', value: summary(listening).p50, unit: 'ms' },
      ],
      details: { readyMs: t, processStartMs: start, listeningMs: summary(listening), seeded, accountBeforeKill: before, settledClean: clean },
    };
  } finally {
    await keel?.child.kill('SIGKILL');
    await sim.kill('SIGTERM');
  }
}

async function flattenOnce(failRate: number): Promise<{ ms: number; flat: boolean; status: number; before: { positions: number; openOrders: number } }> {
  const dir = tempDir('flatten');
  const { child: sim, url } = await startSim(dir, ['--data', fiveCoinData(dir), '--speed', '60', '--seed', '12']);
  let keel: Awaited<ReturnType<typeof startKeel>> | undefined;
  try {
    const dataDir = path.join(dir, 'var');
    const acct = await paperAccount(url, dataDir, 'flatten');
    await seedHistory(url, acct, { fills: 0, positions: FIVE_COINS, resting: 50 });
    keel = await startKeel(dir, keelConfig(dir, url, { markets: [...FIVE_COINS] }));
    await settle(keel.opsUrl, 60_000);
    const truth = await getJson<SimTruth>(`${url}/_sim/state`);
    const before = { positions: truth.accounts.find((a) => a.address === acct.address)?.positions.filter((p) => Number(p.szi) !== 0).length ?? 0, openOrders: truth.openOrders.filter((o) => o.user === acct.address).length };
    if (failRate > 0) await postJson(`${url}/_sim/faults`, { http5xx: failRate });
    const t0 = performance.now();
    const r = await control(keel.opsUrl, 'kill', 120_000);
    const ms = performance.now() - t0;
    await postJson(`${url}/_sim/faults`, {});
    const after = await getJson<SimTruth>(`${url}/_sim/state`);
    const mine = after.accounts.find((a) => a.address === acct.address);
    const flat = (mine?.positions ?? []).every((p) => Number(p.szi) === 0) && after.openOrders.every((o) => o.user !== acct.address);
    return { ms, flat, status: r.status, before };
  } finally {
    await keel?.child.kill('SIGKILL');
    await sim.kill('SIGTERM');
  }
}

export async function emergencyFlatten(): Promise<ScenarioResult> {
  const clean = await flattenOnce(0);
  const faulty = await flattenOnce(0.3);
  return {
    id: 'emergency_flatten',
    title: 'Emergency flatten',
    method: 'real processes: POST /control/kill (flatten, halt, Emergency) → its answer, after which /_sim/state is checked flat; 5 positions + 50 resting orders (+ keel\'s stops); again with http5xx at 30 % on /info and /exchange',
    figures: [
      { name: 'kill → flat', value: clean.ms, unit: 'ms', target: '< 1000', met: clean.flat && clean.ms < 1000 },
      { name: 'kill → flat, 30 % requests failing', value: faulty.ms, unit: 'ms', target: '< 5000', met: faulty.flat && faulty.ms < 5000 },
    ],
    details: { clean, faulty },
  };
}

export async function paperSessionRss(opts: { seconds: number }): Promise<{ rssMb: number[]; sampleEverySeconds: number }> {
  const dir = tempDir('paper');
  const { child: sim, url } = await startSim(dir, ['--speed', '600', '--seed', '5']);
  let keel: Awaited<ReturnType<typeof startKeel>> | undefined;
  try {
    keel = await startKeel(dir, keelConfig(dir, url, { markets: ['BTC', 'ETH'] }));
    await waitReady(keel.opsUrl, 60_000);
    const every = Math.max(1, Math.floor(opts.seconds / 6));
    const xs: number[] = [];
    for (let t = 0; t < opts.seconds; t += every) {
      await sleep(every * 1000);
      xs.push(rssMb(keel.child.proc.pid!));
    }
    return { rssMb: xs, sampleEverySeconds: every };
  } finally {
    await keel?.child.kill('SIGTERM');
    await sim.kill('SIGTERM');
  }
}

export { Child };
