/**
 * POST /exchange (and WebSocket `post` of type `action`): authenticate (signature, agent → master,
 * nonce, expiresAfter), charge the address-based rate limit, execute on the engine, and answer in
 * the exact wire shapes: `{status:"ok",response:{type,data?}}` or `{status:"err",response:msg}`
 * (HTTP 200), or HTTP 422 for a body the real API could not deserialize.
 */
import type { Exchange } from '../engine/index.ts';
import { authenticate, type AgentRegistry, type NonceTracker, type ParsedAction } from '../auth/index.ts';
import type { AddressLimiter } from './rate-limits.ts';
import type { HandlerResult } from './info.ts';

export interface ExchangeContext {
  readonly exchange: Exchange;
  readonly agents: AgentRegistry;
  readonly nonces: NonceTracker;
  readonly addressLimits: AddressLimiter;
  readonly chain: 'Mainnet' | 'Testnet';
  readonly now: () => number;
}

const ok = (response: unknown): HandlerResult => ({ kind: 'json', body: { status: 'ok', response } });
const err = (message: string): HandlerResult => ({ kind: 'json', body: { status: 'err', response: message } });

/** Number of requests an action counts for the address-based limit. */
function requestCount(a: ParsedAction): { n: number; isCancel: boolean } {
  switch (a.type) {
    case 'order':
      return { n: a.orders.length, isCancel: false };
    case 'batchModify':
      return { n: a.modifies.length, isCancel: false };
    case 'cancel':
    case 'cancelByCloid':
      return { n: a.cancels.length, isCancel: true };
    default:
      return { n: 1, isCancel: false };
  }
}

export function handleExchange(ctx: ExchangeContext, raw: unknown): HandlerResult {
  const now = ctx.now();
  const auth = authenticate(raw, {
    now,
    chain: ctx.chain,
    accountExists: (a) => ctx.exchange.hasAccount(a),
    agents: ctx.agents,
    nonces: ctx.nonces,
  });
  if (!auth.ok) {
    if (auth.kind === 'http') return { kind: 'http', status: auth.status, text: auth.text };
    if (auth.account && auth.rateLimitCost > 0) ctx.addressLimits.take(auth.account, auth.rateLimitCost, now);
    return err(auth.message);
  }
  const { account, action } = auth;
  const count = requestCount(action);
  const verdict = ctx.addressLimits.take(account, count.n, now, count.isCancel);
  if (!verdict.ok) return err(verdict.message);

  const ex = ctx.exchange;
  switch (action.type) {
    case 'order':
      return ok({ type: 'order', data: { statuses: ex.placeOrders(account, action.orders, action.grouping) } });
    case 'cancel':
      return ok({ type: 'cancel', data: { statuses: ex.cancel(account, action.cancels) } });
    case 'cancelByCloid':
      return ok({ type: 'cancel', data: { statuses: ex.cancelByCloid(account, action.cancels) } });
    case 'modify': {
      const r = ex.modify(account, action.oid, action.order);
      return 'error' in r ? err(r.error) : ok({ type: 'default' });
    }
    case 'batchModify':
      return ok({ type: 'order', data: { statuses: ex.batchModify(account, action.modifies) } });
    case 'scheduleCancel': {
      const r = ex.scheduleCancel(account, action.time);
      return 'error' in r ? err(r.error) : ok({ type: 'default' });
    }
    case 'updateLeverage': {
      const r = ex.updateLeverage(account, action.asset, action.isCross, action.leverage);
      return 'error' in r ? err(r.error) : ok({ type: 'default' });
    }
    case 'approveAgent': {
      const r = ctx.agents.approve(account, action.agentAddress, action.agentName, now);
      if (!r.ok) return err(r.error);
      // A replaced agent's nonce state is pruned, as on the venue: never reuse agent keys.
      for (const old of r.replaced) ctx.nonces.forget(old);
      return ok({ type: 'default' });
    }
    case 'noop':
      return ok({ type: 'default' });
    case 'usdSend':
    case 'withdraw3':
      // Transfers move money off the perp account; the simulator has no destination ledger, so they
      // are refused (keel never sends them: its agent key cannot).
      return err(`Action ${action.type} is not supported by the simulator.`);
    case 'unknown':
      return err(`Action ${action.actionType} is not supported by the simulator.`);
  }
}
