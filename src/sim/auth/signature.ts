/**
 * Signature recovery for the two schemes Hyperliquid uses.
 *
 * L1 ("phantom agent"): keccak(msgpack(action) ‖ nonce ‖ vault ‖ expiresAfter) is signed as the
 * EIP-712 `Agent{source, connectionId}` in domain Exchange/1/1337/0x0; source "a" on mainnet, "b"
 * on testnet. User-signed: the action's own fields under `HyperliquidTransaction:<Name>` in domain
 * HyperliquidSignTransaction/1/<signatureChainId>/0x0.
 *
 * Invariants: r and s are read as integers and left-padded to 32 bytes (Python sends unpadded hex);
 * a signature that recovers nothing yields undefined, never a throw; addresses come back lowercase.
 * A wrong hash is not detectable here: it simply recovers another address (as on the real chain).
 */
import { verifyTypedData, zeroPadValue, toBeHex, type TypedDataField } from 'ethers';
import { createL1ActionHash } from '@nktkas/hyperliquid/signing';

export type Chain = 'Mainnet' | 'Testnet';

export interface WireSignature {
  readonly r: string;
  readonly s: string;
  readonly v: number;
}

export const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000';

export const L1_DOMAIN = { name: 'Exchange', version: '1', chainId: 1337, verifyingContract: ZERO_ADDRESS } as const;
export const L1_TYPES: Record<string, TypedDataField[]> = {
  Agent: [
    { name: 'source', type: 'string' },
    { name: 'connectionId', type: 'bytes32' },
  ],
};

export type UserSignedTypes = Record<string, readonly { readonly name: string; readonly type: string }[]>;

export const APPROVE_AGENT_TYPES: UserSignedTypes = {
  'HyperliquidTransaction:ApproveAgent': [
    { name: 'hyperliquidChain', type: 'string' },
    { name: 'agentAddress', type: 'address' },
    { name: 'agentName', type: 'string' },
    { name: 'nonce', type: 'uint64' },
  ],
};
export const USD_SEND_TYPES: UserSignedTypes = {
  'HyperliquidTransaction:UsdSend': [
    { name: 'hyperliquidChain', type: 'string' },
    { name: 'destination', type: 'string' },
    { name: 'amount', type: 'string' },
    { name: 'time', type: 'uint64' },
  ],
};
export const WITHDRAW_TYPES: UserSignedTypes = {
  'HyperliquidTransaction:Withdraw': [
    { name: 'hyperliquidChain', type: 'string' },
    { name: 'destination', type: 'string' },
    { name: 'amount', type: 'string' },
    { name: 'time', type: 'uint64' },
  ],
};

/** The 32-byte connection id an L1 signature signs. `action` is hashed exactly as given (key order matters). */
export function l1ConnectionId(args: { action: Record<string, unknown>; nonce: number; vaultAddress?: string | null; expiresAfter?: number | null }): string {
  const hashArgs: Parameters<typeof createL1ActionHash>[0] = { action: args.action, nonce: args.nonce };
  if (args.vaultAddress) hashArgs.vaultAddress = args.vaultAddress.toLowerCase() as `0x${string}`;
  if (args.expiresAfter !== undefined && args.expiresAfter !== null) hashArgs.expiresAfter = args.expiresAfter;
  return createL1ActionHash(hashArgs);
}

/** `{r,s,v}` as ethers wants it, or undefined when r/s are not hex integers below 2^256 or v is not 27/28. */
export function normalizeSignature(sig: WireSignature): { r: string; s: string; v: number } | undefined {
  // Only 27/28: ethers would read other values as EIP-155 `v` and recover some address.
  if (sig.v !== 27 && sig.v !== 28) return undefined;
  try {
    const r = BigInt(sig.r);
    const s = BigInt(sig.s);
    if (r < 0n || s < 0n || r >= 1n << 256n || s >= 1n << 256n) return undefined;
    return { r: zeroPadValue(toBeHex(r), 32), s: zeroPadValue(toBeHex(s), 32), v: sig.v };
  } catch {
    return undefined;
  }
}

function recoverTyped(domain: Record<string, unknown>, types: UserSignedTypes, message: Record<string, unknown>, sig: WireSignature): string | undefined {
  const norm = normalizeSignature(sig);
  if (norm === undefined) return undefined;
  try {
    const mutableTypes: Record<string, TypedDataField[]> = {};
    for (const [k, fields] of Object.entries(types)) mutableTypes[k] = fields.map((f) => ({ name: f.name, type: f.type }));
    return verifyTypedData(domain, mutableTypes, message, norm).toLowerCase();
  } catch {
    return undefined;
  }
}

/**
 * Recovers the signer of an L1 action, or undefined when the signature is unusable.
 *
 * @example recoverL1Signer({ action, nonce, signature, chain: 'Testnet' }) // '0x1479…9325'
 */
export function recoverL1Signer(args: {
  action: Record<string, unknown>;
  nonce: number;
  vaultAddress?: string | null;
  expiresAfter?: number | null;
  signature: WireSignature;
  chain: Chain;
}): string | undefined {
  let connectionId: string;
  try {
    connectionId = l1ConnectionId(args);
  } catch {
    return undefined;
  }
  const source = args.chain === 'Mainnet' ? 'a' : 'b';
  return recoverTyped({ ...L1_DOMAIN }, L1_TYPES, { source, connectionId }, args.signature);
}

/**
 * Recovers the signer of a user-signed action. `message` holds the typed fields (extra keys are
 * ignored); `signatureChainId` is the action's hex chain id.
 */
export function recoverUserSignedSigner(args: {
  types: UserSignedTypes;
  message: Record<string, unknown>;
  signatureChainId: string;
  signature: WireSignature;
}): string | undefined {
  let chainId: bigint;
  try {
    chainId = BigInt(args.signatureChainId);
  } catch {
    return undefined;
  }
  const domain = { name: 'HyperliquidSignTransaction', version: '1', chainId, verifyingContract: ZERO_ADDRESS };
  return recoverTyped(domain, args.types, args.message, args.signature);
}
