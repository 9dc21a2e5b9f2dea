/**
 * Test fixtures: a simulator on loopback, deterministic wallets, and the real SDK's clients wired
 * to it the way an operator's process would be (master funds and approves an agent; the agent
 * signs orders for the master).
 */
import { ethers } from 'ethers';
import { ExchangeClient, HttpTransport, InfoClient, SubscriptionClient, WebSocketTransport } from '@nktkas/hyperliquid';
import { startSimulator, type Simulator, type SimulatorOptions } from '../../src/sim/server/simulator.ts';

/** A deterministic wallet per label (never a real key: derived from a public string). */
export function walletFor(label: string): ethers.Wallet {
  return new ethers.Wallet(ethers.id(`keel-test:${label}`));
}

export interface SdkRig {
  sim: Simulator;
  master: ethers.Wallet;
  agent: ethers.Wallet;
  http: HttpTransport;
  info: InfoClient;
  /** Signs with the agent key, acts for the master. */
  ex: ExchangeClient;
  /** Signs with the master key (agent approval). */
  masterEx: ExchangeClient;
  user: string;
  ws(): { transport: WebSocketTransport; subs: SubscriptionClient; info: InfoClient; ex: ExchangeClient };
  close(): Promise<void>;
}

export async function startRig(label: string, opts: SimulatorOptions & { usdc?: number } = {}): Promise<SdkRig> {
  const sim = await startSimulator({ clock: 'manual', seed: 7, blockMs: 100, ipWeightPerMinute: 1_000_000, ...opts });
  const master = walletFor(`${label}:master`);
  const agent = walletFor(`${label}:agent`);
  sim.fund(master.address, opts.usdc ?? 100_000);
  const http = new HttpTransport({ apiUrl: sim.url, isTestnet: true, timeout: 5_000 });
  const info = new InfoClient({ transport: http });
  const masterEx = new ExchangeClient({ transport: http, wallet: master });
  await masterEx.approveAgent({ agentAddress: agent.address, agentName: 'keel' });
  const ex = new ExchangeClient({ transport: http, wallet: agent });
  const opened: WebSocketTransport[] = [];
  return {
    sim,
    master,
    agent,
    http,
    info,
    ex,
    masterEx,
    user: master.address.toLowerCase(),
    ws() {
      const transport = new WebSocketTransport({ url: sim.wsUrl, isTestnet: true, timeout: 5_000, reconnect: { maxRetries: 0 } });
      opened.push(transport);
      return { transport, subs: new SubscriptionClient({ transport }), info: new InfoClient({ transport }), ex: new ExchangeClient({ transport, wallet: agent }) };
    },
    async close() {
      for (const t of opened) t.close();
      await sim.close();
    },
  };
}

/** Polls `fn` until it returns a defined value or the deadline passes (steps a manual clock). */
export async function until<T>(fn: () => T | undefined | Promise<T | undefined>, opts: { timeoutMs?: number; sim?: Simulator; stepMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 5_000);
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error('condition not met before the deadline');
    if (opts.sim && opts.sim.clock.mode === 'manual') opts.sim.step(opts.stepMs ?? 100);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * A cloid with a high prefix. (A cloid like 0x00…01 would be read by the SDK's schema as the
 * integer oid 1, since `Number("0x…01")` is a safe integer: real cloids never look like that.)
 */
export function cloidOf(n: number): string {
  return `0x6b65656c${n.toString(16).padStart(24, '0')}`;
}
