/**
 * authenticate(): from the raw JSON body of POST /exchange to "who acts, for which account, doing what".
 *
 * Order of checks (the real exchange's order is not documented; this is our best reading):
 *   1. body shape, then action shape                     → HTTP 422 "Failed to deserialize…"
 *   2. user-signed only: no vaultAddress/expiresAfter, hyperliquidChain = ours, inner nonce = outer
 *   3. signature recovery                                → "Unable to recover signer."
 *   4. signer → account: agent → its master; else a known user (L1: "L1 error: User or API Wallet …
 *      does not exist."; user-signed: "Must deposit …"); a known but unfunded user → "Must deposit …";
 *      vaultAddress → the vault
 *   5. nonce of the signer (window, duplicate, too low)
 *   6. expiresAfter: `now > expiresAfter` → "Action already expired" (charged 5× by the address limit)
 *   7. the nonce is recorded; the action goes to the engine.
 * An action refused at any step burns no nonce (so an expired action can be re-signed with the
 * same nonce and a later expiry); an action refused later by the engine has burned its nonce.
 *
 * Invariants: never throws for any input; addresses in results are lowercase; the only state it
 * changes is the signer's nonce set, and only on success.
 */
import type { AgentRegistry } from './agents.ts';
import { errRefusal, messages, type AuthRefusal } from './errors.ts';
import type { NonceTracker } from './nonces.ts';
import { parseAction, type ParsedAction } from './actions.ts';
import { recoverL1Signer, recoverUserSignedSigner, type Chain } from './signature.ts';
import { isHttpRefusal, parseExchangeBody } from './wire.ts';

export interface AuthContext {
  /** Exchange time (ms) from the injected clock. */
  readonly now: number;
  /** The simulator's chain; the SDK with `isTestnet: true` signs for 'Testnet'. */
  readonly chain: Chain;
  /** Whether the address is a known user (has ever been credited). */
  accountExists(addr: string): boolean;
  /** Whether a known user has funds to act; defaults to `accountExists`. */
  accountFunded?(addr: string): boolean;
  /** Whether `master` may act for `vault` (leader / sub-account owner); defaults to "the vault exists". */
  vaultAllowed?(vault: string, master: string): boolean;
  readonly agents: AgentRegistry;
  readonly nonces: NonceTracker;
}

export interface Authenticated {
  readonly ok: true;
  /** Recovered signer, lowercase (the agent address when an agent signed). */
  readonly signer: string;
  /** The account the action acts for: the vault when `vaultAddress` is set, else the master. Lowercase. */
  readonly account: string;
  /** The master (signer itself, or the agent's master). */
  readonly master: string;
  readonly isAgent: boolean;
  readonly nonce: number;
  readonly vaultAddress?: string;
  readonly expiresAfter?: number;
  readonly action: ParsedAction;
}

export type AuthResult = Authenticated | AuthRefusal;

/**
 * Authenticates one /exchange body. Never throws.
 *
 * @example
 * const auth = authenticate(JSON.parse(text), { now: clock.now(), chain: 'Testnet', accountExists, agents, nonces });
 * if (!auth.ok) return auth.kind === 'http' ? reply422(auth.text) : replyErr(auth.message);
 */
export function authenticate(raw: unknown, ctx: AuthContext): AuthResult {
  const body = parseExchangeBody(raw);
  if (isHttpRefusal(body)) return body;
  const parsed = parseAction(body.action);
  if (isHttpRefusal(parsed)) return parsed;
  const { signing, action } = parsed;
  const funded = (addr: string): boolean => (ctx.accountFunded ? ctx.accountFunded(addr) : ctx.accountExists(addr));

  let signer: string | undefined;
  let master: string;
  let account: string;
  let isAgent = false;

  if (signing.kind === 'user') {
    if (body.vaultAddress !== undefined || body.expiresAfter !== undefined) return errRefusal(messages.userSignedExtras());
    if (signing.hyperliquidChain !== ctx.chain) return errRefusal(messages.wrongChain());
    if (signing.innerNonce !== body.nonce) return errRefusal(messages.nonceMismatch());
    signer = recoverUserSignedSigner({ types: signing.types, message: signing.message, signatureChainId: signing.signatureChainId, signature: body.signature });
    if (signer === undefined) return errRefusal(messages.unrecoverable());
    // Agents only sign L1 actions: an agent address is not a user, so it "must deposit".
    if (!ctx.accountExists(signer) || !funded(signer)) return errRefusal(messages.mustDeposit(signer));
    master = signer;
    account = signer;
  } else {
    signer = recoverL1Signer({
      action: signing.hashed,
      nonce: body.nonce,
      vaultAddress: body.vaultAddress,
      expiresAfter: body.expiresAfter,
      signature: body.signature,
      chain: ctx.chain,
    });
    if (signer === undefined) return errRefusal(messages.unrecoverable());
    const agentMaster = ctx.agents.masterOf(signer, ctx.now);
    if (agentMaster !== undefined) {
      isAgent = true;
      master = agentMaster;
      if (!funded(master)) return errRefusal(messages.mustDeposit(master));
    } else {
      if (!ctx.accountExists(signer)) return errRefusal(messages.unknownSigner(signer));
      if (!funded(signer)) return errRefusal(messages.mustDeposit(signer));
      master = signer;
    }
    account = master;
    if (body.vaultAddress !== undefined) {
      const allowed = ctx.vaultAllowed ? ctx.vaultAllowed(body.vaultAddress, master) : ctx.accountExists(body.vaultAddress);
      if (!allowed) return errRefusal(messages.vaultNotRegistered(body.vaultAddress), { account: master });
      account = body.vaultAddress;
    }
  }

  const nonceRefusal = ctx.nonces.check(signer, body.nonce, ctx.now);
  if (nonceRefusal !== undefined) return errRefusal(nonceRefusal, { account });
  if (body.expiresAfter !== undefined && ctx.now > body.expiresAfter) return errRefusal(messages.expired(), { account, expired: true });
  ctx.nonces.commit(signer, body.nonce);

  const result: { -readonly [K in keyof Authenticated]: Authenticated[K] } = { ok: true, signer, account, master, isAgent, nonce: body.nonce, action };
  if (body.vaultAddress !== undefined) result.vaultAddress = body.vaultAddress;
  if (body.expiresAfter !== undefined) result.expiresAfter = body.expiresAfter;
  return result;
}
