/**
 * Parses an `/exchange` action into validated domain values and the form its signature covers.
 *
 * The real node hashes its own re-serialization of the action it deserialized, not the bytes it
 * received. So we rebuild the action canonically (key order of the wire schema, decimals without
 * trailing zeros, hex lowercase, `f`/`a` kept only when true) and hash that: a body with padded
 * numbers or reordered keys still recovers the signer of the canonical form, while a signature
 * made over a non-canonical form (or over `f:false`) recovers some other address, as it does live.
 *
 * Invariants: never throws; a malformed action (unknown `type`, wrong JSON types, NaN or negative
 * numbers, a cloid that is not 0x + 32 hex, an unknown tif) is the 422 deserialize error; values
 * that are well-formed but invalid for trading (tick, lot, zero size, unknown asset) pass through
 * for the engine to reject.
 */
import { ApproveBuilderFeeTypes, CDepositTypes, CWithdrawTypes, ConvertToMultiSigUserTypes, SendAssetTypes, SpotSendTypes, TokenDelegateTypes, UsdClassTransferTypes, UserDexAbstractionTypes, UserPortfolioMarginTypes, UserSetAbstractionTypes, LinkStakingUserTypes, SendToEvmWithDataTypes, StakingLinkDisableTradingUserTypes } from '@nktkas/hyperliquid/api/exchange';
import { Decimal, toWire } from '../../domain/decimal.ts';
import type { Grouping, OrderRequest, Tif } from '../types.ts';
import { http422, type HttpRefusal } from './errors.ts';
import { APPROVE_AGENT_TYPES, USD_SEND_TYPES, WITHDRAW_TYPES, type Chain, type UserSignedTypes } from './signature.ts';
import { Malformed, address, array, bool, hexString, record, str, uint } from './wire.ts';

export interface CancelRequest {
  readonly asset: number;
  readonly oid: number;
}
export interface CancelByCloidRequest {
  readonly asset: number;
  readonly cloid: string;
}
/** An order id as modify accepts it: an oid, or a cloid (`0x` + 32 lowercase hex). */
export type OrderRef = number | string;
export interface ModifyRequest {
  readonly oid: OrderRef;
  readonly order: OrderRequest;
}

export type ParsedAction =
  | {
      readonly type: 'order';
      readonly orders: readonly OrderRequest[];
      readonly grouping: Grouping;
      /** `{p}` priority grouping (fraction p / 1e8); the simulator treats it as `na`. */
      readonly priority?: number;
      /** Builder fee request; accepted and ignored by the simulator. */
      readonly builder?: { readonly address: string; readonly fee: number };
    }
  | { readonly type: 'cancel'; readonly cancels: readonly CancelRequest[]; readonly fast: boolean }
  | { readonly type: 'cancelByCloid'; readonly cancels: readonly CancelByCloidRequest[]; readonly fast: boolean }
  | { readonly type: 'modify'; readonly oid: OrderRef; readonly order: OrderRequest; readonly alwaysPlace: boolean }
  | { readonly type: 'batchModify'; readonly modifies: readonly ModifyRequest[]; readonly alwaysPlace: boolean }
  | { readonly type: 'scheduleCancel'; readonly time?: number }
  | { readonly type: 'updateLeverage'; readonly asset: number; readonly isCross: boolean; readonly leverage: number }
  | {
      readonly type: 'approveAgent';
      readonly agentAddress: string;
      /** As signed: '' for the unnamed agent, possibly with a ` valid_until <ms>` suffix. */
      readonly agentName: string;
      readonly hyperliquidChain: Chain;
      readonly signatureChainId: string;
      readonly nonce: number;
    }
  | { readonly type: 'usdSend' | 'withdraw3'; readonly destination: string; readonly amount: Decimal; readonly time: number; readonly hyperliquidChain: Chain; readonly signatureChainId: string }
  | { readonly type: 'noop' }
  /** A real Hyperliquid action type the simulator does not implement; the signer is still verified. */
  | { readonly type: 'unknown'; readonly actionType: string; readonly scheme: 'l1' | 'user'; readonly raw: Record<string, unknown> };

/** What the signature covers, per scheme. */
export type SigningPayload =
  | { readonly kind: 'l1'; readonly hashed: Record<string, unknown> }
  | {
      readonly kind: 'user';
      readonly types: UserSignedTypes;
      readonly message: Record<string, unknown>;
      readonly signatureChainId: string;
      readonly hyperliquidChain: string;
      /** The action's own `nonce` / `time`, which must equal the outer nonce. */
      readonly innerNonce: number;
    };

export interface ParsedWireAction {
  readonly action: ParsedAction;
  readonly signing: SigningPayload;
}

/** L1 action types Hyperliquid knows and the simulator does not execute (answered by the server). */
export const UNSUPPORTED_L1_TYPES: ReadonlySet<string> = new Set([
  'updateIsolatedMargin', 'topUpIsolatedOnlyMargin', 'twapOrder', 'twapCancel', 'vaultTransfer', 'vaultModify',
  'vaultDistribute', 'createVault', 'createSubAccount', 'subAccountModify', 'subAccountTransfer', 'subAccountSpotTransfer',
  'setReferrer', 'registerReferrer', 'setDisplayName', 'claimRewards', 'reserveRequestWeight', 'evmUserModify',
  'spotUser', 'agentEnableDexAbstraction', 'agentSetAbstraction', 'agentSendAsset', 'borrowLend', 'perpDeploy',
  'spotDeploy', 'CSignerAction', 'CValidatorAction', 'validatorL1Stream', 'multiSig', 'gossipPriorityBid',
  'finalizeEvmContract', 'hip3LiquidatorTransfer', 'userOutcome', 'activateOutcomeDeployer', 'authorizeAqav2Role',
]);

/** User-signed types the simulator does not execute; their EIP-712 types come from the SDK. */
const UNSUPPORTED_USER_SIGNED: Readonly<Record<string, UserSignedTypes>> = {
  approveBuilderFee: ApproveBuilderFeeTypes,
  cDeposit: CDepositTypes,
  cWithdraw: CWithdrawTypes,
  convertToMultiSigUser: ConvertToMultiSigUserTypes,
  linkStakingUser: LinkStakingUserTypes,
  sendAsset: SendAssetTypes,
  sendToEvmWithData: SendToEvmWithDataTypes,
  spotSend: SpotSendTypes,
  stakingLinkDisableTradingUser: StakingLinkDisableTradingUserTypes,
  tokenDelegate: TokenDelegateTypes,
  usdClassTransfer: UsdClassTransferTypes,
  userDexAbstraction: UserDexAbstractionTypes,
  userPortfolioMargin: UserPortfolioMarginTypes,
  userSetAbstraction: UserSetAbstractionTypes,
};

const TIFS: ReadonlySet<string> = new Set<Tif>(['Gtc', 'Ioc', 'Alo', 'FrontendMarket']);
const GROUPINGS: ReadonlySet<string> = new Set<Grouping>(['na', 'normalTpsl', 'positionTpsl']);
const UNSIGNED_DECIMAL = /^\d+(?:\.\d+)?$/;
const CLOID = /^0x[0-9a-fA-F]{32}$/;
const MAX_U32 = 0xffff_ffff;

function decimal(v: unknown, path: string): Decimal {
  const s = str(v, path);
  if (!UNSIGNED_DECIMAL.test(s)) throw new Malformed(`${path}: expected an unsigned decimal string`);
  return new Decimal(s);
}

function cloid(v: unknown, path: string): string {
  const s = str(v, path);
  if (!CLOID.test(s)) throw new Malformed(`${path}: expected 0x + 32 hex`);
  return s.toLowerCase();
}

/** An externally tagged enum: exactly one key. */
function tagged(v: unknown, path: string): [string, unknown] {
  const r = record(v, path);
  const keys = Object.keys(r);
  if (keys.length !== 1) throw new Malformed(`${path}: expected exactly one variant`);
  const key = keys[0] as string;
  return [key, r[key]];
}

/** Optional boolean flag that the canonical form keeps only when true (`f`, `a`). */
function trueFlag(v: unknown, path: string): boolean {
  return v === undefined || v === null ? false : bool(v, path);
}

function parseOrder(v: unknown, path: string): { order: OrderRequest; wire: Record<string, unknown> } {
  const o = record(v, path);
  const asset = uint(o.a, `${path}.a`, MAX_U32);
  const isBuy = bool(o.b, `${path}.b`);
  const px = decimal(o.p, `${path}.p`);
  const sz = decimal(o.s, `${path}.s`);
  const reduceOnly = bool(o.r, `${path}.r`);
  const [kind, body] = tagged(o.t, `${path}.t`);
  let type: OrderRequest['type'];
  let wireT: Record<string, unknown>;
  if (kind === 'limit') {
    const tif = str(record(body, `${path}.t.limit`).tif, `${path}.t.limit.tif`);
    if (!TIFS.has(tif)) throw new Malformed(`${path}.t.limit.tif: unknown tif`);
    type = { kind: 'limit', tif: tif as Tif };
    wireT = { limit: { tif } };
  } else if (kind === 'trigger') {
    const t = record(body, `${path}.t.trigger`);
    const isMarket = bool(t.isMarket, `${path}.t.trigger.isMarket`);
    const triggerPx = decimal(t.triggerPx, `${path}.t.trigger.triggerPx`);
    const tpsl = str(t.tpsl, `${path}.t.trigger.tpsl`);
    if (tpsl !== 'tp' && tpsl !== 'sl') throw new Malformed(`${path}.t.trigger.tpsl: expected tp or sl`);
    type = { kind: 'trigger', isMarket, triggerPx, tpsl };
    wireT = { trigger: { isMarket, triggerPx: toWire(triggerPx), tpsl } };
  } else {
    throw new Malformed(`${path}.t: unknown order type ${kind}`);
  }
  const c = o.c === undefined || o.c === null ? undefined : cloid(o.c, `${path}.c`);
  const wire: Record<string, unknown> = { a: asset, b: isBuy, p: toWire(px), s: toWire(sz), r: reduceOnly, t: wireT };
  if (c !== undefined) wire.c = c;
  const order: OrderRequest = c === undefined ? { asset, isBuy, px, sz, reduceOnly, type } : { asset, isBuy, px, sz, reduceOnly, type, cloid: c };
  return { order, wire };
}

function orderRef(v: unknown, path: string): OrderRef {
  return typeof v === 'string' ? cloid(v, path) : uint(v, path);
}

function chainOf(v: unknown, path: string): Chain {
  const s = str(v, path);
  if (s !== 'Mainnet' && s !== 'Testnet') throw new Malformed(`${path}: expected Mainnet or Testnet`);
  return s;
}

function l1(action: ParsedAction, hashed: Record<string, unknown>): ParsedWireAction {
  return { action, signing: { kind: 'l1', hashed } };
}

function parseOrThrow(a: Record<string, unknown>): ParsedWireAction {
  const type = str(a.type, 'action.type');
  switch (type) {
    case 'order': {
      const parsed = array(a.orders, 'action.orders').map((o, i) => parseOrder(o, `action.orders[${i}]`));
      const hashed: Record<string, unknown> = { type, orders: parsed.map((p) => p.wire) };
      let grouping: Grouping = 'na';
      let priority: number | undefined;
      if (a.grouping !== undefined && a.grouping !== null) {
        if (typeof a.grouping === 'string') {
          if (!GROUPINGS.has(a.grouping)) throw new Malformed('action.grouping: unknown grouping');
          grouping = a.grouping as Grouping;
          hashed.grouping = grouping;
        } else {
          priority = uint(record(a.grouping, 'action.grouping').p, 'action.grouping.p', 100_000_000);
          hashed.grouping = { p: priority };
        }
      }
      let builder: { address: string; fee: number } | undefined;
      if (a.builder !== undefined && a.builder !== null) {
        const b = record(a.builder, 'action.builder');
        builder = { address: address(b.b, 'action.builder.b'), fee: uint(b.f, 'action.builder.f') };
        hashed.builder = { b: builder.address, f: builder.fee };
      }
      const action: ParsedAction = {
        type,
        orders: parsed.map((p) => p.order),
        grouping,
        ...(priority !== undefined ? { priority } : {}),
        ...(builder !== undefined ? { builder } : {}),
      };
      return l1(action, hashed);
    }
    case 'cancel': {
      const cancels = array(a.cancels, 'action.cancels').map((c, i) => {
        const r = record(c, `action.cancels[${i}]`);
        return { asset: uint(r.a, `action.cancels[${i}].a`, MAX_U32), oid: uint(r.o, `action.cancels[${i}].o`) };
      });
      const fast = trueFlag(a.f, 'action.f');
      const hashed: Record<string, unknown> = { type, cancels: cancels.map((c) => ({ a: c.asset, o: c.oid })) };
      if (fast) hashed.f = true;
      return l1({ type, cancels, fast }, hashed);
    }
    case 'cancelByCloid': {
      const cancels = array(a.cancels, 'action.cancels').map((c, i) => {
        const r = record(c, `action.cancels[${i}]`);
        return { asset: uint(r.asset, `action.cancels[${i}].asset`, MAX_U32), cloid: cloid(r.cloid, `action.cancels[${i}].cloid`) };
      });
      const fast = trueFlag(a.f, 'action.f');
      const hashed: Record<string, unknown> = { type, cancels: cancels.map((c) => ({ asset: c.asset, cloid: c.cloid })) };
      if (fast) hashed.f = true;
      return l1({ type, cancels, fast }, hashed);
    }
    case 'modify': {
      const oid = orderRef(a.oid, 'action.oid');
      const { order, wire } = parseOrder(a.order, 'action.order');
      const alwaysPlace = trueFlag(a.a, 'action.a');
      const hashed: Record<string, unknown> = { type, oid, order: wire };
      if (alwaysPlace) hashed.a = true;
      return l1({ type, oid, order, alwaysPlace }, hashed);
    }
    case 'batchModify': {
      const items = array(a.modifies, 'action.modifies').map((m, i) => {
        const r = record(m, `action.modifies[${i}]`);
        const oid = orderRef(r.oid, `action.modifies[${i}].oid`);
        const { order, wire } = parseOrder(r.order, `action.modifies[${i}].order`);
        return { modify: { oid, order }, wire: { oid, order: wire } };
      });
      const alwaysPlace = trueFlag(a.a, 'action.a');
      const hashed: Record<string, unknown> = { type, modifies: items.map((m) => m.wire) };
      if (alwaysPlace) hashed.a = true;
      return l1({ type, modifies: items.map((m) => m.modify), alwaysPlace }, hashed);
    }
    case 'scheduleCancel': {
      if (a.time === undefined || a.time === null) return l1({ type }, { type });
      const time = uint(a.time, 'action.time');
      return l1({ type, time }, { type, time });
    }
    case 'updateLeverage': {
      const asset = uint(a.asset, 'action.asset', MAX_U32);
      const isCross = bool(a.isCross, 'action.isCross');
      const leverage = uint(a.leverage, 'action.leverage', MAX_U32);
      return l1({ type, asset, isCross, leverage }, { type, asset, isCross, leverage });
    }
    case 'noop':
      return l1({ type }, { type });
    case 'approveAgent': {
      const signatureChainId = hexString(a.signatureChainId, 'action.signatureChainId');
      const hyperliquidChain = chainOf(a.hyperliquidChain, 'action.hyperliquidChain');
      const agentAddress = address(a.agentAddress, 'action.agentAddress');
      // Python omits the key for the unnamed agent but signs "".
      const agentName = a.agentName === undefined || a.agentName === null ? '' : str(a.agentName, 'action.agentName');
      const nonce = uint(a.nonce, 'action.nonce');
      return {
        action: { type, agentAddress, agentName, hyperliquidChain, signatureChainId, nonce },
        signing: {
          kind: 'user',
          types: APPROVE_AGENT_TYPES,
          message: { hyperliquidChain, agentAddress, agentName, nonce },
          signatureChainId,
          hyperliquidChain,
          innerNonce: nonce,
        },
      };
    }
    case 'usdSend':
    case 'withdraw3': {
      const signatureChainId = hexString(a.signatureChainId, 'action.signatureChainId');
      const hyperliquidChain = chainOf(a.hyperliquidChain, 'action.hyperliquidChain');
      // `destination` is an EIP-712 string: signed as sent, so keep its case for the hash.
      const destinationRaw = str(a.destination, 'action.destination');
      const destination = address(destinationRaw, 'action.destination');
      const amountRaw = str(a.amount, 'action.amount');
      const amount = decimal(amountRaw, 'action.amount');
      const time = uint(a.time, 'action.time');
      return {
        action: { type, destination, amount, time, hyperliquidChain, signatureChainId },
        signing: {
          kind: 'user',
          types: type === 'usdSend' ? USD_SEND_TYPES : WITHDRAW_TYPES,
          message: { hyperliquidChain, destination: destinationRaw, amount: amountRaw, time },
          signatureChainId,
          hyperliquidChain,
          innerNonce: time,
        },
      };
    }
    default: {
      if (UNSUPPORTED_L1_TYPES.has(type)) return l1({ type: 'unknown', actionType: type, scheme: 'l1', raw: a }, a);
      const types = UNSUPPORTED_USER_SIGNED[type];
      if (types === undefined) throw new Malformed(`action.type: unknown action type ${type}`);
      const primary = Object.values(types)[0] ?? [];
      const nonceField = primary.find((f) => f.name === 'nonce' || f.name === 'time')?.name ?? 'nonce';
      for (const f of primary) if (a[f.name] === undefined || a[f.name] === null) throw new Malformed(`action.${f.name}: missing`);
      return {
        action: { type: 'unknown', actionType: type, scheme: 'user', raw: a },
        signing: {
          kind: 'user',
          types,
          message: a,
          signatureChainId: hexString(a.signatureChainId, 'action.signatureChainId'),
          hyperliquidChain: chainOf(a.hyperliquidChain, 'action.hyperliquidChain'),
          innerNonce: uint(a[nonceField], `action.${nonceField}`),
        },
      };
    }
  }
}

/**
 * Parses one action (the `action` of an /exchange body).
 *
 * @example parseAction({ type: 'cancel', cancels: [{ a: 0, o: 12 }] }) // { action: { type:'cancel', ... }, signing: { kind:'l1', hashed } }
 */
export function parseAction(raw: unknown): ParsedWireAction | HttpRefusal {
  try {
    return parseOrThrow(record(raw, 'action'));
  } catch (e) {
    if (e instanceof Malformed) return http422(e.message);
    throw e;
  }
}
