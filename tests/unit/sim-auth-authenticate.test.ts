/**
 * authenticate() end to end: bodies produced by the real SDK's ExchangeClient (captured by a fake
 * transport, sent through JSON like the wire) and by hand-signed Python-style bodies.
 */
import { describe, expect, it } from 'vitest';
import { Wallet } from 'ethers';
import { ExchangeClient } from '@nktkas/hyperliquid';
import { signL1Action, signUserSignedAction } from '@nktkas/hyperliquid/signing';
import { UsdSendTypes } from '@nktkas/hyperliquid/api/exchange';
import { AgentRegistry, NonceTracker, authenticate, type AuthContext, type AuthResult, type Authenticated } from '../../src/sim/auth/index.ts';
import { Decimal } from '../../src/domain/decimal.ts';

const T0 = 1_800_000_000_000;
const master = new Wallet('0x' + '11'.repeat(32));
const agent = new Wallet('0x' + '22'.repeat(32));
const stranger = new Wallet('0x' + '33'.repeat(32));
const M = master.address.toLowerCase();
const A = agent.address.toLowerCase();
const S = stranger.address.toLowerCase();

function makeCtx(over: Partial<AuthContext> = {}, funded: string[] = [M]): AuthContext {
  return {
    now: T0,
    chain: 'Testnet',
    accountExists: (a) => funded.includes(a),
    agents: new AgentRegistry(),
    nonces: new NonceTracker(),
    ...over,
  };
}

/** An ExchangeClient whose transport records the JSON body instead of sending it. */
function capturingClient(wallet: Wallet, opts: { isTestnet?: boolean; nonceStart?: number } = {}) {
  const bodies: unknown[] = [];
  let nonce = opts.nonceStart ?? T0;
  const transport = {
    isTestnet: opts.isTestnet ?? true,
    async request(_endpoint: string, payload: unknown): Promise<never> {
      bodies.push(JSON.parse(JSON.stringify(payload)));
      return { status: 'ok', response: { type: 'default' } } as never;
    },
  };
  const client = new ExchangeClient({ transport, wallet, nonceManager: () => nonce++ });
  return { client, bodies, last: () => bodies[bodies.length - 1] };
}

function expectOk(r: AuthResult): Authenticated {
  if (!r.ok) throw new Error(`expected ok, got ${JSON.stringify(r)}`);
  return r;
}

describe('SDK ExchangeClient bodies authenticate', () => {
  it('order with cloid, number prices and trailing zeros (SDK normalizes before signing)', async () => {
    const { client, last } = capturingClient(master);
    await client.order({
      orders: [{ a: 0, b: true, p: '65000.0', s: 0.0010, r: false, t: { limit: { tif: 'Gtc' } }, c: '0x000000000000000000000000000000AB' }],
      grouping: 'na',
    });
    const auth = expectOk(authenticate(last(), makeCtx()));
    expect(auth).toMatchObject({ signer: M, account: M, master: M, isAgent: false, nonce: T0 });
    if (auth.action.type !== 'order') throw new Error('type');
    const o = auth.action.orders[0]!;
    expect(o.px.eq(new Decimal('65000'))).toBe(true);
    expect(o.sz.eq(new Decimal('0.001'))).toBe(true);
    expect(o.cloid).toBe('0x000000000000000000000000000000ab');
    expect(o.type).toEqual({ kind: 'limit', tif: 'Gtc' });
    expect(auth.action.grouping).toBe('na');
  });

  it('every L1 action the runtime uses, signed by an approved agent, acts for the master', async () => {
    const ctx = makeCtx();
    expect(ctx.agents.approve(M, A, '', T0)).toEqual({ ok: true, replaced: [] });
    const { client, last } = capturingClient(agent);
    const cloid = '0x' + '0'.repeat(31) + '7';
    const calls: [string, () => Promise<unknown>][] = [
      ['order', () => client.order({ orders: [{ a: 1, b: false, p: '100', s: '1', r: true, t: { trigger: { isMarket: true, triggerPx: '99.5', tpsl: 'sl' } } }], grouping: 'positionTpsl' })],
      ['cancel', () => client.cancel({ cancels: [{ a: 1, o: 42 }] })],
      ['cancelByCloid', () => client.cancelByCloid({ cancels: [{ asset: 1, cloid }] })],
      ['modify', () => client.modify({ oid: cloid, order: { a: 1, b: true, p: '10', s: '2', r: false, t: { limit: { tif: 'Alo' } } } })],
      ['batchModify', () => client.batchModify({ modifies: [{ oid: 42, order: { a: 1, b: true, p: '10', s: '2', r: false, t: { limit: { tif: 'Ioc' } } } }] })],
      ['scheduleCancel', () => client.scheduleCancel({ time: T0 + 60_000 })],
      ['scheduleCancel', () => client.scheduleCancel()],
      ['updateLeverage', () => client.updateLeverage({ asset: 1, isCross: false, leverage: 7 })],
      ['noop', () => client.noop({ nonce: T0 + 100 })],
    ];
    for (const [type, call] of calls) {
      await call();
      const auth = expectOk(authenticate(last(), ctx));
      expect(auth.action.type).toBe(type);
      expect(auth).toMatchObject({ signer: A, account: M, master: M, isAgent: true });
    }
    expect(ctx.nonces.stored(A)).toHaveLength(calls.length);
    expect(ctx.nonces.stored(M)).toHaveLength(0);
  });

  it('vaultAddress and expiresAfter are covered by the signature and reported', async () => {
    const vault = '0x' + 'cd'.repeat(20);
    const ctx = makeCtx({}, [M, vault]);
    const { client, last } = capturingClient(master);
    await client.cancel({ cancels: [{ a: 0, o: 1 }] }, { vaultAddress: vault, expiresAfter: T0 + 5_000 });
    const auth = expectOk(authenticate(last(), ctx));
    expect(auth).toMatchObject({ account: vault, master: M, vaultAddress: vault, expiresAfter: T0 + 5_000 });
  });

  it('approveAgent (user-signed by the master) verifies; usdSend and withdraw3 too', async () => {
    const ctx = makeCtx();
    const { client, last } = capturingClient(master);
    await client.approveAgent({ agentAddress: agent.address, agentName: 'bot1' });
    const auth = expectOk(authenticate(last(), ctx));
    expect(auth.action).toMatchObject({ type: 'approveAgent', agentAddress: A, agentName: 'bot1', hyperliquidChain: 'Testnet' });
    await client.usdSend({ destination: stranger.address, amount: '12.50' });
    const send = expectOk(authenticate(last(), ctx));
    if (send.action.type !== 'usdSend') throw new Error('type');
    expect(send.action.destination).toBe(S);
    expect(send.action.amount.eq(new Decimal('12.5'))).toBe(true);
    await client.withdraw3({ destination: stranger.address, amount: '3' });
    expect(expectOk(authenticate(last(), ctx)).action.type).toBe('withdraw3');
  });

  it('a mainnet-signed L1 action recovers another address on a testnet simulator', async () => {
    const { client, last } = capturingClient(master, { isTestnet: false });
    await client.cancel({ cancels: [{ a: 0, o: 1 }] });
    const r = authenticate(last(), makeCtx());
    expect(r).toMatchObject({ ok: false, kind: 'err' });
    expect(!r.ok && r.kind === 'err' && r.message).toMatch(/^L1 error: User or API Wallet 0x[0-9a-f]{40} does not exist\.$/);
    expect(!r.ok && r.kind === 'err' && r.message).not.toContain(M);
  });

  it('a mainnet-signed user-signed action is refused by hyperliquidChain', async () => {
    const { client, last } = capturingClient(master, { isTestnet: false });
    await client.approveAgent({ agentAddress: agent.address });
    expect(authenticate(last(), makeCtx())).toMatchObject({ ok: false, kind: 'err', message: 'Mainnet and testnet require different signature.' });
    expect(authenticate(last(), makeCtx({ chain: 'Mainnet' }))).toMatchObject({ ok: true });
  });
});

describe('who may act', () => {
  const body = async (wallet: Wallet, nonce = T0) => {
    const action = { type: 'cancel', cancels: [{ a: 0, o: 1 }] };
    return { action, nonce, signature: await signL1Action({ wallet, action, nonce, isTestnet: true }) };
  };

  it('unknown signer → L1 error naming the recovered address', async () => {
    expect(authenticate(await body(stranger), makeCtx())).toEqual({
      ok: false,
      kind: 'err',
      message: `L1 error: User or API Wallet ${S} does not exist.`,
      rateLimitCost: 0,
    });
  });

  it('known but unfunded user → Must deposit', async () => {
    const ctx = makeCtx({ accountExists: (a) => a === S, accountFunded: () => false });
    expect(authenticate(await body(stranger), ctx)).toMatchObject({ message: `Must deposit before performing actions. User: ${S}` });
  });

  it('a user-signed action from an unknown address → Must deposit (agents cannot sign them)', async () => {
    const ctx = makeCtx();
    ctx.agents.approve(M, A, '', T0);
    const { client, last } = capturingClient(agent);
    await client.approveAgent({ agentAddress: stranger.address, agentName: 'x' });
    expect(authenticate(last(), ctx)).toMatchObject({ kind: 'err', message: `Must deposit before performing actions. User: ${A}` });
  });

  it('an expired agent no longer resolves', async () => {
    const ctx = makeCtx();
    ctx.agents.approve(M, A, `bot valid_until ${T0 + 1000}`, T0);
    expect(authenticate(await body(agent, T0 + 1), { ...ctx, now: T0 + 999 })).toMatchObject({ ok: true, account: M });
    expect(authenticate(await body(agent, T0 + 2), { ...ctx, now: T0 + 1000 })).toMatchObject({ message: `L1 error: User or API Wallet ${A} does not exist.` });
  });

  it('unknown vault → Vault not registered', async () => {
    const vault = `0x${'ef'.repeat(20)}` as const;
    const action = { type: 'noop' };
    const signature = await signL1Action({ wallet: master, action, nonce: T0, isTestnet: true, vaultAddress: vault });
    expect(authenticate({ action, nonce: T0, signature, vaultAddress: vault }, makeCtx())).toMatchObject({
      message: `Vault not registered: ${vault}`,
      account: M,
    });
  });
});

describe('nonces and expiry through authenticate', () => {
  const signed = async (nonce: number, expiresAfter?: number) => {
    const action = { type: 'noop' };
    const signature = await signL1Action({ wallet: master, action, nonce, isTestnet: true, ...(expiresAfter !== undefined ? { expiresAfter } : {}) });
    return { action, nonce, signature, ...(expiresAfter !== undefined ? { expiresAfter } : {}) };
  };

  it('replay → duplicate nonce; noop burns its nonce', async () => {
    const ctx = makeCtx();
    const b = await signed(T0);
    expect(authenticate(b, ctx).ok).toBe(true);
    expect(authenticate(b, ctx)).toMatchObject({ kind: 'err', message: `Invalid nonce: duplicate nonce ${T0}`, account: M });
  });

  it('outside (now − 2 days, now + 1 day) → too low / too high', async () => {
    const ctx = makeCtx();
    const low = T0 - 2 * 86_400_000;
    const high = T0 + 86_400_000;
    expect(authenticate(await signed(low), ctx)).toMatchObject({ message: `Invalid nonce: nonce too low ${low} < ${low}` });
    expect(authenticate(await signed(high), ctx)).toMatchObject({ message: `Invalid nonce: nonce too high ${high} > ${high}` });
    expect(authenticate(await signed(low + 1), ctx).ok).toBe(true);
    expect(authenticate(await signed(high - 1), ctx).ok).toBe(true);
  });

  it('expiresAfter in the past → Action already expired, charged 5×, nonce not burned', async () => {
    const ctx = makeCtx();
    const expired = await signed(T0, T0 - 1);
    expect(authenticate(expired, ctx)).toEqual({ ok: false, kind: 'err', message: 'Action already expired', account: M, expired: true, rateLimitCost: 5 });
    expect(ctx.nonces.stored(M)).toEqual([]);
    expect(authenticate(await signed(T0, T0), ctx).ok).toBe(true); // now === expiresAfter is still valid
  });

  it('an expiresAfter not covered by the signature recovers someone else', async () => {
    const b = await signed(T0);
    expect(authenticate({ ...b, expiresAfter: T0 + 10_000 }, makeCtx())).toMatchObject({ kind: 'err', message: expect.stringMatching(/^L1 error: User or API Wallet/) });
  });
});

describe('Python-style bodies', () => {
  it('null vaultAddress/expiresAfter, unpadded r, unnamed approveAgent without agentName', async () => {
    const action = { type: 'approveAgent', signatureChainId: '0x66eee', hyperliquidChain: 'Testnet', agentAddress: A, nonce: T0 };
    const sig = await signUserSignedAction({ wallet: master, action: { ...action, signatureChainId: '0x66eee', agentName: '' }, types: { 'HyperliquidTransaction:ApproveAgent': [
      { name: 'hyperliquidChain', type: 'string' },
      { name: 'agentAddress', type: 'address' },
      { name: 'agentName', type: 'string' },
      { name: 'nonce', type: 'uint64' },
    ] } });
    const unpadded = { r: '0x' + BigInt(sig.r).toString(16), s: '0x' + BigInt(sig.s).toString(16), v: sig.v };
    const auth = expectOk(authenticate({ action, nonce: T0, signature: unpadded, vaultAddress: null, expiresAfter: null }, makeCtx()));
    expect(auth.action).toMatchObject({ type: 'approveAgent', agentName: '' });
  });

  it('user-signed: inner nonce must equal the outer one; vault/expiry not allowed', async () => {
    const action = { type: 'usdSend', signatureChainId: '0x66eee', hyperliquidChain: 'Testnet', destination: S, amount: '1', time: T0 };
    const signature = await signUserSignedAction({ wallet: master, action: { ...action, signatureChainId: '0x66eee' }, types: UsdSendTypes });
    expect(authenticate({ action, nonce: T0 + 1, signature }, makeCtx())).toMatchObject({ message: 'Nonce mismatch.' });
    expect(authenticate({ action, nonce: T0, signature, expiresAfter: T0 + 1 }, makeCtx())).toMatchObject({ kind: 'err', message: expect.stringContaining('not allowed') });
    expect(authenticate({ action, nonce: T0, signature }, makeCtx())).toMatchObject({ ok: true, signer: M });
  });
});
