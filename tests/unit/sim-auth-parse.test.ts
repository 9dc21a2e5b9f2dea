/**
 * Wire parsing: the 422 cases (what the real API cannot deserialize), validated domain values, and
 * the canonical form the signature is checked against.
 */
import { describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { signL1Action } from '@nktkas/hyperliquid/signing';
import { AgentRegistry, DESERIALIZE_FAILED, NonceTracker, authenticate, parseAction, parseExchangeBody, type ParsedWireAction } from '../../src/sim/auth/index.ts';

const SIG = { r: '0x' + '1'.repeat(64), s: '0x' + '2'.repeat(64), v: 27 };
const ORDER = { a: 0, b: true, p: '100', s: '1', r: false, t: { limit: { tif: 'Gtc' } } };

function is422(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as { kind?: string }).kind === 'http' && (v as { status?: number }).status === 422 && (v as { text?: string }).text === DESERIALIZE_FAILED;
}

function ok(v: ReturnType<typeof parseAction>): ParsedWireAction {
  if ('ok' in v) throw new Error(`expected a parse, got ${JSON.stringify(v)}`);
  return v;
}

describe('parseExchangeBody', () => {
  it('accepts SDK and Python shapes (null optionals), lowercases the vault', () => {
    expect(parseExchangeBody({ action: { type: 'noop' }, nonce: 1, signature: SIG })).toEqual({ action: { type: 'noop' }, nonce: 1, signature: SIG });
    expect(parseExchangeBody({ action: { type: 'noop' }, nonce: 1, signature: SIG, vaultAddress: null, expiresAfter: null })).toEqual({ action: { type: 'noop' }, nonce: 1, signature: SIG });
    const vault = '0x' + 'AB'.repeat(20);
    expect(parseExchangeBody({ action: {}, nonce: 1, signature: SIG, vaultAddress: vault, expiresAfter: 5 })).toMatchObject({ vaultAddress: vault.toLowerCase(), expiresAfter: 5 });
  });

  it.each([
    ['not an object', 'hello'],
    ['array', []],
    ['missing action', { nonce: 1, signature: SIG }],
    ['action not an object', { action: 'order', nonce: 1, signature: SIG }],
    ['missing nonce', { action: {}, signature: SIG }],
    ['string nonce', { action: {}, nonce: '1', signature: SIG }],
    ['negative nonce', { action: {}, nonce: -1, signature: SIG }],
    ['fractional nonce', { action: {}, nonce: 1.5, signature: SIG }],
    ['missing signature', { action: {}, nonce: 1 }],
    ['r not hex', { action: {}, nonce: 1, signature: { ...SIG, r: 'xyz' } }],
    ['r too long', { action: {}, nonce: 1, signature: { ...SIG, r: '0x' + '1'.repeat(65) } }],
    ['v string', { action: {}, nonce: 1, signature: { ...SIG, v: '27' } }],
    ['bad vault', { action: {}, nonce: 1, signature: SIG, vaultAddress: '0x1234' }],
    ['string expiresAfter', { action: {}, nonce: 1, signature: SIG, expiresAfter: '5' }],
  ])('422: %s', (_name, body) => {
    expect(is422(parseExchangeBody(body))).toBe(true);
  });
});

describe('parseAction: 422 for what cannot be deserialized', () => {
  const order = (o: Record<string, unknown>) => ({ type: 'order', orders: [{ ...ORDER, ...o }], grouping: 'na' });
  it.each([
    ['unknown action type', { type: 'frobnicate' }],
    ['missing type', { orders: [] }],
    ['NaN px', order({ p: 'NaN' })],
    ['numeric px', order({ p: 100 })],
    ['negative size', order({ s: '-1' })],
    ['exponent size', order({ s: '1e-3' })],
    ['empty px', order({ p: '' })],
    ['bad tif', order({ t: { limit: { tif: 'Fok' } } })],
    ['two order kinds', order({ t: { limit: { tif: 'Gtc' }, trigger: { isMarket: true, triggerPx: '1', tpsl: 'tp' } } })],
    ['bad tpsl', order({ t: { trigger: { isMarket: true, triggerPx: '1', tpsl: 'stop' } } })],
    ['short cloid', order({ c: '0x1234' })],
    ['non-hex cloid', order({ c: '0x' + 'g'.repeat(32) })],
    ['string asset', order({ a: '0' })],
    ['string isBuy', order({ b: 'true' })],
    ['bad grouping', { type: 'order', orders: [ORDER], grouping: 'oco' }],
    ['grouping priority too high', { type: 'order', orders: [ORDER], grouping: { p: 100_000_001 } }],
    ['cancel f not boolean', { type: 'cancel', cancels: [{ a: 0, o: 1 }], f: 'yes' }],
    ['cancel string oid', { type: 'cancel', cancels: [{ a: 0, o: '1' }] }],
    ['cancelByCloid bad cloid', { type: 'cancelByCloid', cancels: [{ asset: 0, cloid: 'abc' }] }],
    ['modify bad oid', { type: 'modify', oid: -1, order: ORDER }],
    ['updateLeverage string leverage', { type: 'updateLeverage', asset: 0, isCross: true, leverage: '5' }],
    ['scheduleCancel negative time', { type: 'scheduleCancel', time: -5 }],
    ['approveAgent bad address', { type: 'approveAgent', signatureChainId: '0x66eee', hyperliquidChain: 'Testnet', agentAddress: '0x12', nonce: 1 }],
    ['approveAgent unknown chain', { type: 'approveAgent', signatureChainId: '0x66eee', hyperliquidChain: 'Devnet', agentAddress: '0x' + '1'.repeat(40), nonce: 1 }],
  ])('%s', (_name, action) => {
    expect(is422(parseAction(action))).toBe(true);
  });
});

describe('parseAction: domain values and canonical hashed form', () => {
  it('order: decimals normalized, cloid lowercased, key order canonical, unknown keys dropped', () => {
    const p = ok(parseAction({
      grouping: 'normalTpsl',
      type: 'order',
      extra: 1,
      orders: [{ c: '0x' + 'AB'.repeat(16), t: { trigger: { tpsl: 'tp', triggerPx: '101.500', isMarket: false } }, r: true, s: '0.0100', p: '100.0', b: false, a: 3 }],
    }));
    expect(p.signing).toEqual({
      kind: 'l1',
      hashed: {
        type: 'order',
        orders: [{ a: 3, b: false, p: '100', s: '0.01', r: true, t: { trigger: { isMarket: false, triggerPx: '101.5', tpsl: 'tp' } }, c: '0x' + 'ab'.repeat(16) }],
        grouping: 'normalTpsl',
      },
    });
    expect(JSON.stringify(Object.keys((p.signing as { hashed: Record<string, unknown> }).hashed))).toBe('["type","orders","grouping"]');
    if (p.action.type !== 'order') throw new Error('type');
    const o = p.action.orders[0]!;
    expect([o.asset, o.isBuy, o.px.toString(), o.sz.toString(), o.reduceOnly, o.cloid]).toEqual([3, false, '100', '0.01', true, '0x' + 'ab'.repeat(16)]);
    expect(o.type.kind === 'trigger' && o.type.triggerPx.toString()).toBe('101.5');
    expect(p.action.grouping).toBe('normalTpsl');
  });

  it('order: zero size and off-tick prices pass (the engine rejects them); priority grouping reads as na; builder kept', () => {
    const p = ok(parseAction({ type: 'order', orders: [{ ...ORDER, p: '0.123456789', s: '0' }], grouping: { p: 5 }, builder: { b: '0x' + 'Ab'.repeat(20), f: 10 } }));
    expect(p.action).toMatchObject({ type: 'order', grouping: 'na', priority: 5, builder: { address: '0x' + 'ab'.repeat(20), fee: 10 } });
  });

  it('cancel: f kept only when true (f:false is not what the node hashes)', () => {
    expect(ok(parseAction({ type: 'cancel', cancels: [{ a: 1, o: 2 }], f: true })).signing).toEqual({ kind: 'l1', hashed: { type: 'cancel', cancels: [{ a: 1, o: 2 }], f: true } });
    const withFalse = ok(parseAction({ type: 'cancel', cancels: [{ a: 1, o: 2 }], f: false }));
    expect(withFalse.signing).toEqual({ kind: 'l1', hashed: { type: 'cancel', cancels: [{ a: 1, o: 2 }] } });
    expect(withFalse.action).toEqual({ type: 'cancel', cancels: [{ asset: 1, oid: 2 }], fast: false });
  });

  it('modify / batchModify / cancelByCloid / scheduleCancel / updateLeverage / noop', () => {
    const cl = '0x' + 'F'.repeat(32);
    expect(ok(parseAction({ type: 'modify', oid: cl, order: ORDER, a: true })).action).toMatchObject({ type: 'modify', oid: cl.toLowerCase(), alwaysPlace: true });
    expect(ok(parseAction({ type: 'batchModify', modifies: [{ oid: 7, order: ORDER }] })).action).toMatchObject({ type: 'batchModify', modifies: [{ oid: 7 }], alwaysPlace: false });
    expect(ok(parseAction({ type: 'cancelByCloid', cancels: [{ asset: 2, cloid: cl }] })).action).toEqual({ type: 'cancelByCloid', cancels: [{ asset: 2, cloid: cl.toLowerCase() }], fast: false });
    expect(ok(parseAction({ type: 'scheduleCancel' })).action).toEqual({ type: 'scheduleCancel' });
    expect(ok(parseAction({ type: 'scheduleCancel', time: null })).action).toEqual({ type: 'scheduleCancel' });
    expect(ok(parseAction({ type: 'scheduleCancel', time: 99 })).action).toEqual({ type: 'scheduleCancel', time: 99 });
    expect(ok(parseAction({ type: 'updateLeverage', asset: 1, isCross: true, leverage: 20 })).action).toEqual({ type: 'updateLeverage', asset: 1, isCross: true, leverage: 20 });
    expect(ok(parseAction({ type: 'noop' })).action).toEqual({ type: 'noop' });
  });

  it('known but unimplemented types parse as unknown (L1 hashed as sent; user-signed with SDK types)', () => {
    const twap = { type: 'twapOrder', twap: { a: 0, b: true, s: '1', r: false, m: 5, t: false } };
    expect(ok(parseAction(twap))).toEqual({ action: { type: 'unknown', actionType: 'twapOrder', scheme: 'l1', raw: twap }, signing: { kind: 'l1', hashed: twap } });
    const spotSend = { type: 'spotSend', signatureChainId: '0x66eee', hyperliquidChain: 'Testnet', destination: '0x' + '1'.repeat(40), token: 'PURR:0x1', amount: '1', time: 5 };
    expect(ok(parseAction(spotSend)).signing).toMatchObject({ kind: 'user', innerNonce: 5, hyperliquidChain: 'Testnet' });
  });
});

describe('canonical hashing end to end', () => {
  const wallet = new Wallet('0x' + '44'.repeat(32));
  const me = wallet.address.toLowerCase();
  const ctx = () => ({ now: 1_800_000_000_000, chain: 'Testnet' as const, accountExists: (a: string) => a === me, agents: new AgentRegistry(), nonces: new NonceTracker() });
  const nonce = 1_800_000_000_000;

  it('padded numbers, reordered keys and uppercase cloid in the body still recover the canonical signer', async () => {
    const canonical = { type: 'order', orders: [{ ...ORDER, c: '0x' + 'ab'.repeat(16) }], grouping: 'na' };
    const signature = await signL1Action({ wallet, action: canonical, nonce, isTestnet: true });
    const messy = { grouping: 'na', orders: [{ c: '0x' + 'AB'.repeat(16), t: { limit: { tif: 'Gtc' } }, r: false, s: '1.000', p: '100.00', b: true, a: 0 }], type: 'order' };
    expect(authenticate({ action: messy, nonce, signature }, ctx())).toMatchObject({ ok: true, signer: me });
  });

  it('a signature over a non-canonical form (trailing zeros, f:false) recovers someone else', async () => {
    const padded = { type: 'order', orders: [{ ...ORDER, p: '100.0' }], grouping: 'na' };
    const sig1 = await signL1Action({ wallet, action: padded, nonce, isTestnet: true });
    expect(authenticate({ action: padded, nonce, signature: sig1 }, ctx())).toMatchObject({ ok: false, message: expect.stringMatching(/^L1 error: User or API Wallet/) });
    const fFalse = { type: 'cancel', cancels: [{ a: 0, o: 1 }], f: false };
    const sig2 = await signL1Action({ wallet, action: fFalse, nonce, isTestnet: true });
    expect(authenticate({ action: fFalse, nonce, signature: sig2 }, ctx())).toMatchObject({ ok: false, message: expect.stringMatching(/^L1 error: User or API Wallet/) });
  });
});
