/**
 * API (agent) wallets: which master account an agent address signs for.
 *
 * Invariants: per master at most one unnamed agent and `maxNamed` (3) named ones; approving an
 * unnamed agent, or a name already in use, deregisters the agent it replaces; an agent address
 * belongs to at most one master; an agent whose `valid_until` has passed resolves to nobody and no
 * longer occupies its slot. `approve` validates and applies in one step and never throws.
 */
import { messages } from './errors.ts';
import { DAY_MS } from './nonces.ts';

export const MAX_AGENT_VALIDITY_MS = 180 * DAY_MS;
const VALID_UNTIL = / valid_until (\d+)$/;

export interface AgentInfo {
  readonly address: string;
  /** '' for the unnamed agent. */
  readonly name: string;
  /** Expiry in ms, or null when the approval does not expire. */
  readonly validUntil: number | null;
}

export type ApproveResult = { readonly ok: true; readonly replaced: readonly string[] } | { readonly ok: false; readonly error: string };

interface AgentEntry extends AgentInfo {
  readonly master: string;
}

export interface AgentRegistryOptions {
  readonly maxNamed?: number;
}

/** Splits `"bot1 valid_until 1700000000000"` into its base name and expiry. */
export function parseAgentName(agentName: string): { name: string; validUntil: number | null } {
  const m = VALID_UNTIL.exec(agentName);
  if (m === null) return { name: agentName, validUntil: null };
  return { name: agentName.slice(0, m.index), validUntil: Number(m[1]) };
}

export class AgentRegistry {
  readonly #byAgent = new Map<string, AgentEntry>();
  readonly #byMaster = new Map<string, AgentEntry[]>();
  readonly #maxNamed: number;

  constructor(options: AgentRegistryOptions = {}) {
    this.#maxNamed = options.maxNamed ?? 3;
  }

  /**
   * Approves `agentAddress` for `master` (the caller has verified the master's signature and that the
   * signer is not itself an agent). `agentName` is as signed, possibly with ` valid_until <ms>`.
   *
   * @example registry.approve(master, agent, 'bot1', now) // { ok: true, replaced: [] }
   */
  approve(master: string, agentAddress: string, agentName: string, now: number): ApproveResult {
    const m = master.toLowerCase();
    const agent = agentAddress.toLowerCase();
    const { name, validUntil } = parseAgentName(agentName);
    if (name.length > 16) return { ok: false, error: messages.agentNameTooLong() };
    if (validUntil !== null && (validUntil <= now || validUntil > now + MAX_AGENT_VALIDITY_MS)) {
      return { ok: false, error: messages.agentExpiry(MAX_AGENT_VALIDITY_MS / DAY_MS) };
    }
    const owner = this.#live(agent, now);
    if (owner !== undefined && owner.master !== m) return { ok: false, error: messages.agentTaken(agent) };

    const current = this.#pruned(m, now);
    const sameSlot = current.find((e) => e.name === name);
    const namedAfter = current.filter((e) => e.name !== '' && e.name !== name && e.address !== agent).length + (name === '' ? 0 : 1);
    if (name !== '' && sameSlot === undefined && namedAfter > this.#maxNamed) return { ok: false, error: messages.tooManyAgents(this.#maxNamed) };

    const replaced: string[] = [];
    for (const e of current) {
      if (e.name === name || e.address === agent) {
        this.#byAgent.delete(e.address);
        if (e.address !== agent) replaced.push(e.address);
      }
    }
    const entry: AgentEntry = { address: agent, name, validUntil, master: m };
    this.#byMaster.set(m, [...current.filter((e) => e.name !== name && e.address !== agent), entry]);
    this.#byAgent.set(agent, entry);
    return { ok: true, replaced };
  }

  /** The master an agent signs for at `now`, or undefined (unknown, deregistered or expired). */
  masterOf(agent: string, now: number): string | undefined {
    return this.#live(agent.toLowerCase(), now)?.master;
  }

  /** The live agents of a master, unnamed first then by name (for the `extraAgents` info request). */
  list(master: string, now: number): readonly AgentInfo[] {
    return this.#pruned(master.toLowerCase(), now)
      .map(({ address, name, validUntil }) => ({ address, name, validUntil }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Removes an agent (e.g. an operator action in tests). Returns whether it existed. */
  revoke(agent: string): boolean {
    const e = this.#byAgent.get(agent.toLowerCase());
    if (e === undefined) return false;
    this.#byAgent.delete(e.address);
    this.#byMaster.set(e.master, (this.#byMaster.get(e.master) ?? []).filter((x) => x.address !== e.address));
    return true;
  }

  #live(agent: string, now: number): AgentEntry | undefined {
    const e = this.#byAgent.get(agent);
    if (e === undefined) return undefined;
    if (e.validUntil !== null && now >= e.validUntil) {
      this.revoke(agent);
      return undefined;
    }
    return e;
  }

  #pruned(master: string, now: number): AgentEntry[] {
    const entries = this.#byMaster.get(master) ?? [];
    const live = entries.filter((e) => e.validUntil === null || now < e.validUntil);
    if (live.length !== entries.length) {
      for (const e of entries) if (!live.includes(e)) this.#byAgent.delete(e.address);
      this.#byMaster.set(master, live);
    }
    return live;
  }
}
