/**
 * Signature recovery against the published vectors (hyperliquid-api.md §6: Python SDK
 * tests/signing_test.py and nktkas tests/signing/mod.test.ts) and round trips with the real SDK.
 */
import { describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { signL1Action, signUserSignedAction } from '@nktkas/hyperliquid/signing';
import { ApproveAgentTypes, UsdSendTypes } from '@nktkas/hyperliquid/api/exchange';
import { APPROVE_AGENT_TYPES, USD_SEND_TYPES, WITHDRAW_TYPES, l1ConnectionId, normalizeSignature, recoverL1Signer, recoverUserSignedSigner } from '../../src/sim/auth/index.ts';

const PY_KEY = '0x0123456789012345678901234567890123456789012345678901234567890123';
const PY_ADDR = '0x14791697260E4c9A71f18484C9f997B308e59325'.toLowerCase();

const DUMMY = { type: 'dummy', num: 100000000000 };
const O1 = { type: 'order', orders: [{ a: 1, b: true, p: '100', s: '100', r: false, t: { limit: { tif: 'Gtc' } } }], grouping: 'na' };
const O1_CLOID = { type: 'order', orders: [{ a: 1, b: true, p: '100', s: '100', r: false, t: { limit: { tif: 'Gtc' } }, c: '0x00000000000000000000000000000001' }], grouping: 'na' };
const O1_TRIGGER = { type: 'order', orders: [{ a: 1, b: true, p: '100', s: '100', r: false, t: { trigger: { isMarket: true, triggerPx: '103', tpsl: 'sl' } } }], grouping: 'na' };
const VAULT = '0x1719884eb866cb12b2287399b15f7db5e7d775ea';

const PY_VECTORS: { name: string; action: Record<string, unknown>; chain: 'Mainnet' | 'Testnet'; vault?: string; r: string; s: string; v: number }[] = [
  { name: 'dummy mainnet', action: DUMMY, chain: 'Mainnet', r: '0x53749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298', s: '0x755c40ba9bf05223521753995abb2f73ab3229be8ec921f350cb447e384d8ed8', v: 27 },
  { name: 'dummy testnet', action: DUMMY, chain: 'Testnet', r: '0x542af61ef1f429707e3c76c5293c80d01f74ef853e34b76efffcb57e574f9510', s: '0x17b8b32f086e8cdede991f1e2c529f5dd5297cbe8128500e00cbaf766204a613', v: 28 },
  { name: 'order mainnet', action: O1, chain: 'Mainnet', r: '0xd65369825a9df5d80099e513cce430311d7d26ddf477f5b3a33d2806b100d78e', s: '0x2b54116ff64054968aa237c20ca9ff68000f977c93289157748a3162b6ea940e', v: 28 },
  { name: 'order testnet', action: O1, chain: 'Testnet', r: '0x82b2ba28e76b3d761093aaded1b1cdad4960b3af30212b343fb2e6cdfa4e3d54', s: '0x6b53878fc99d26047f4d7e8c90eb98955a109f44209163f52d8dc4278cbbd9f5', v: 27 },
  { name: 'order+cloid mainnet', action: O1_CLOID, chain: 'Mainnet', r: '0x41ae18e8239a56cacbc5dad94d45d0b747e5da11ad564077fcac71277a946e3', s: '0x3c61f667e747404fe7eea8f90ab0e76cc12ce60270438b2058324681a00116da', v: 27 },
  { name: 'order+cloid testnet', action: O1_CLOID, chain: 'Testnet', r: '0xeba0664bed2676fc4e5a743bf89e5c7501aa6d870bdb9446e122c9466c5cd16d', s: '0x7f3e74825c9114bc59086f1eebea2928c190fdfbfde144827cb02b85bbe90988', v: 28 },
  { name: 'trigger mainnet', action: O1_TRIGGER, chain: 'Mainnet', r: '0x98343f2b5ae8e26bb2587daad3863bc70d8792b09af1841b6fdd530a2065a3f9', s: '0x6b5bb6bb0633b710aa22b721dd9dee6d083646a5f8e581a20b545be6c1feb405', v: 27 },
  { name: 'dummy vault mainnet', action: DUMMY, chain: 'Mainnet', vault: VAULT, r: '0x3c548db75e479f8012acf3000ca3a6b05606bc2ec0c29c50c515066a326239', s: '0x4d402be7396ce74fbba3795769cda45aec00dc3125a984f2a9f23177b190da2c', v: 28 },
  { name: 'scheduleCancel mainnet', action: { type: 'scheduleCancel', time: 123456789 }, chain: 'Mainnet', r: '0x609cb20c737945d070716dcc696ba030e9976fcf5edad87afa7d877493109d55', s: '0x16c685d63b5c7a04512d73f183b3d7a00da5406ff1f8aad33f8ae2163bab758b', v: 28 },
];

describe('L1 signature vectors (Python SDK)', () => {
  for (const vec of PY_VECTORS) {
    it(`recovers the signer: ${vec.name}`, () => {
      const signer = recoverL1Signer({ action: vec.action, nonce: 0, vaultAddress: vec.vault, signature: { r: vec.r, s: vec.s, v: vec.v }, chain: vec.chain });
      expect(signer).toBe(PY_ADDR);
    });
  }

  it('recovers someone else on the other chain (the domain separates networks)', () => {
    const vec = PY_VECTORS[2]!;
    const other = recoverL1Signer({ action: vec.action, nonce: 0, signature: vec, chain: 'Testnet' });
    expect(other).toMatch(/^0x[0-9a-f]{40}$/);
    expect(other).not.toBe(PY_ADDR);
  });

  it('recovers someone else when a byte of the action changes', () => {
    const vec = PY_VECTORS[2]!;
    const tampered = { ...O1, orders: [{ ...O1.orders[0]!, p: '101' }] };
    expect(recoverL1Signer({ action: tampered, nonce: 0, signature: vec, chain: 'Mainnet' })).not.toBe(PY_ADDR);
  });

  it('pads unpadded r (63 hex digits) to 32 bytes', () => {
    const norm = normalizeSignature({ r: PY_VECTORS[0]!.r, s: PY_VECTORS[0]!.s, v: 27 });
    expect(norm?.r).toBe('0x053749d5b30552aeb2fca34b530185976545bb22d0b3ce6f62e31be961a59298');
    expect(norm?.s.length).toBe(66);
  });

  it('returns undefined, not a throw, for an unusable signature', () => {
    expect(recoverL1Signer({ action: O1, nonce: 0, signature: { r: '0x0', s: '0x0', v: 27 }, chain: 'Mainnet' })).toBeUndefined();
    expect(recoverL1Signer({ action: O1, nonce: 0, signature: { r: '0x1', s: '0x1', v: 99 }, chain: 'Mainnet' })).toBeUndefined();
  });
});

describe('connectionId vectors', () => {
  it('Python connectionId vector', () => {
    const action = { type: 'order', orders: [{ a: 4, b: true, p: '1670.1', s: '0.0147', r: false, t: { limit: { tif: 'Ioc' } } }], grouping: 'na' };
    expect(l1ConnectionId({ action, nonce: 1677777606040 })).toBe('0x0fcbeda5ae3c4950a548021552a4fea2226858c4453571bf3f24ba017eac2908');
  });

  const NK_ACTION = { type: 'order', orders: [{ a: 0, b: true, p: '30000', s: '0.1', r: false, t: { limit: { tif: 'Gtc' } } }], grouping: 'na' };
  const NK_VAULT = '0x1234567890123456789012345678901234567890';
  it.each([
    ['base', undefined, undefined, '0x25367e0dba84351148288c2233cd6130ed6cec5967ded0c0b7334f36f957cc90'],
    ['vault', NK_VAULT, undefined, '0x214e2ea3270981b6fd18174216691e69f56872663139d396b10ded319cb4bb1e'],
    ['expiresAfter', undefined, 1234567890, '0xc30b002ba3775e4c31c43c1dfd3291dfc85c6ae06c6b9f393991de86cad5fac7'],
    ['vault + expiresAfter', NK_VAULT, 1234567890, '0x2d62412aa0fc57441b5189841d81554a6a9680bf07204e1454983a9ca44f0744'],
  ] as const)('nktkas hash: %s', (_name, vaultAddress, expiresAfter, hash) => {
    expect(l1ConnectionId({ action: NK_ACTION, nonce: 1234567890, vaultAddress, expiresAfter })).toBe(hash);
  });

  it('null vaultAddress / expiresAfter hash like absent ones (Python sends null)', () => {
    expect(l1ConnectionId({ action: NK_ACTION, nonce: 1234567890, vaultAddress: null, expiresAfter: null })).toBe(
      '0x25367e0dba84351148288c2233cd6130ed6cec5967ded0c0b7334f36f957cc90',
    );
  });

  it('nktkas mainnet signature recovers its key', () => {
    const expected = new Wallet('0x822e9959e022b78423eb653a62ea0020cd283e71a2a8133a6ff2aeffaf373cff').address.toLowerCase();
    const signature = {
      r: '0x61078d8ffa3cb591de045438a1ae2ed299b271891d1943a33901e7cfb3a31ed8',
      s: '0x0e91df4f9841641d3322dad8d932874b74d7e082cdb5b533f804964a6963aef9',
      v: 28,
    };
    expect(recoverL1Signer({ action: NK_ACTION, nonce: 1234567890, signature, chain: 'Mainnet' })).toBe(expected);
  });
});

describe('user-signed vectors', () => {
  it('usdSend (Python vector, Testnet, chain 0x66eee)', () => {
    const signer = recoverUserSignedSigner({
      types: USD_SEND_TYPES,
      message: { hyperliquidChain: 'Testnet', destination: '0x5e9ee1089755c3435139848e47e6635505d5a13a', amount: '1', time: 1687816341423 },
      signatureChainId: '0x66eee',
      signature: { r: '0x637b37dd731507cdd24f46532ca8ba6eec616952c56218baeff04144e4a77073', s: '0x11a6a24900e6e314136d2592e2f8d502cd89b7c15b198e1bee043c9589f9fad7', v: 27 },
    });
    expect(signer).toBe(PY_ADDR);
  });

  it('our EIP-712 types equal the SDK ones (approveAgent, usdSend)', () => {
    expect(APPROVE_AGENT_TYPES).toEqual(ApproveAgentTypes);
    expect(USD_SEND_TYPES).toEqual(UsdSendTypes);
    expect(Object.keys(WITHDRAW_TYPES)).toEqual(['HyperliquidTransaction:Withdraw']);
  });
});

describe('round trips with the SDK signer and an ethers Wallet', () => {
  const wallet = new Wallet('0x' + '11'.repeat(32));
  const me = wallet.address.toLowerCase();

  it('signL1Action on both chains, with vault and expiresAfter', async () => {
    const action = { type: 'cancel', cancels: [{ a: 3, o: 123456789012 }] };
    for (const isTestnet of [true, false]) {
      const sig = await signL1Action({ wallet, action, nonce: 1_800_000_000_000, isTestnet, vaultAddress: VAULT, expiresAfter: 1_800_000_005_000 });
      const chain = isTestnet ? 'Testnet' : 'Mainnet';
      expect(recoverL1Signer({ action, nonce: 1_800_000_000_000, vaultAddress: VAULT, expiresAfter: 1_800_000_005_000, signature: sig, chain })).toBe(me);
      // Dropping expiresAfter from what is verified changes the hash.
      expect(recoverL1Signer({ action, nonce: 1_800_000_000_000, vaultAddress: VAULT, signature: sig, chain })).not.toBe(me);
    }
  });

  it('signUserSignedAction(approveAgent) with a custom chain id', async () => {
    const action = { type: 'approveAgent', signatureChainId: '0xa4b1' as const, hyperliquidChain: 'Testnet', agentAddress: '0x' + 'ab'.repeat(20), agentName: 'bot1', nonce: 1_800_000_000_000 };
    const sig = await signUserSignedAction({ wallet, action, types: ApproveAgentTypes });
    expect(recoverUserSignedSigner({ types: APPROVE_AGENT_TYPES, message: action, signatureChainId: action.signatureChainId, signature: sig })).toBe(me);
    expect(recoverUserSignedSigner({ types: APPROVE_AGENT_TYPES, message: action, signatureChainId: '0x1', signature: sig })).not.toBe(me);
  });
});
