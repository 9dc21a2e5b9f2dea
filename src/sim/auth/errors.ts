/**
 * Every outcome the auth layer can refuse with, as the real exchange words it.
 *
 * Invariants: refusals are values, never throws; a body the real API cannot deserialize is an HTTP
 * 422 with the exact text below; everything else is a top-level `{status:"err", response: message}`.
 *
 * Strings: "Failed to deserialize…", "L1 error: User or API Wallet … does not exist.", "Must deposit…",
 * "Invalid nonce: duplicate nonce N" come from hyperliquid-api.md. "nonce too low N < B", "nonce too high
 * N > B", "Action already expired", "Mainnet and testnet require different signature.", "Nonce mismatch.",
 * "Unable to recover signer." and "Vault not registered: 0x…" are strings public client code records
 * as live answers (found with the search tool, not verified against the exchange by us). The rest are
 * our own wording and are marked so below.
 */

export const DESERIALIZE_FAILED = 'Failed to deserialize the JSON body into the target type';

/** The real API's answer to a body it cannot deserialize (HTTP 422, text/plain). */
export interface HttpRefusal {
  readonly ok: false;
  readonly kind: 'http';
  readonly status: 422;
  readonly text: string;
  /** Why, for logs only; never sent on the wire (the real API's text carries no detail we trust). */
  readonly detail: string;
}

/** A top-level `{status:"err", response: message}` (HTTP 200). */
export interface ErrRefusal {
  readonly ok: false;
  readonly kind: 'err';
  readonly message: string;
  /** The acting account when it was known at the point of refusal (to charge rate limits). */
  readonly account?: string;
  /** True for an action refused because `expiresAfter` passed: the address limit charges it 5×. */
  readonly expired?: boolean;
  /** How many address-limit requests this refusal costs (5 when expired, else 0: not charged). */
  readonly rateLimitCost: number;
}

export type AuthRefusal = HttpRefusal | ErrRefusal;

export const EXPIRED_RATE_LIMIT_MULTIPLIER = 5;

export function http422(detail: string): HttpRefusal {
  return { ok: false, kind: 'http', status: 422, text: DESERIALIZE_FAILED, detail };
}

export function errRefusal(message: string, extra: { account?: string; expired?: boolean } = {}): ErrRefusal {
  const r: { -readonly [K in keyof ErrRefusal]: ErrRefusal[K] } = { ok: false, kind: 'err', message, rateLimitCost: 0 };
  if (extra.account !== undefined) r.account = extra.account;
  if (extra.expired) {
    r.expired = true;
    r.rateLimitCost = EXPIRED_RATE_LIMIT_MULTIPLIER;
  }
  return r;
}

export const messages = {
  unknownSigner: (addr: string) => `L1 error: User or API Wallet ${addr} does not exist.`,
  mustDeposit: (addr: string) => `Must deposit before performing actions. User: ${addr}`,
  duplicateNonce: (n: number) => `Invalid nonce: duplicate nonce ${n}`,
  nonceTooLow: (n: number, bound: number) => `Invalid nonce: nonce too low ${n} < ${bound}`,
  nonceTooHigh: (n: number, bound: number) => `Invalid nonce: nonce too high ${n} > ${bound}`,
  expired: () => 'Action already expired',
  wrongChain: () => 'Mainnet and testnet require different signature.',
  nonceMismatch: () => 'Nonce mismatch.',
  unrecoverable: () => 'Unable to recover signer.',
  vaultNotRegistered: (addr: string) => `Vault not registered: ${addr}`,
  // Our own wording (no public record of the real strings):
  userSignedExtras: () => 'vaultAddress and expiresAfter are not allowed on user-signed actions.',
  agentExpiry: (maxDays: number) => `Invalid agent valid_until: must be in the future and at most ${maxDays} days away.`,
  agentNameTooLong: () => 'Invalid agent name: at most 16 characters.',
  tooManyAgents: (max: number) => `Cannot approve more than ${max} named agents.`,
  agentTaken: (addr: string) => `Agent ${addr} is already approved by another user.`,
} as const;
