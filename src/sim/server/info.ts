/**
 * POST /info (and WebSocket `post` of type `info`): validates the request at the edge and answers
 * with the exact wire shapes. An unknown `type` or a malformed field gets the real API's answer,
 * HTTP 422 "Failed to deserialize the JSON body into the target type", never a crash.
 */
import { z } from 'zod';
import type { Exchange } from '../engine/index.ts';
import type { MarketReplay } from '../market/index.ts';
import type { AddressLimiter } from './rate-limits.ts';
import type { AgentRegistry } from '../auth/index.ts';

export const DESERIALIZE_ERROR = 'Failed to deserialize the JSON body into the target type';

export type HandlerResult =
  | { kind: 'json'; body: unknown; items?: number }
  | { kind: 'http'; status: number; text: string };

export interface InfoContext {
  readonly exchange: Exchange;
  readonly market: MarketReplay;
  readonly addressLimits: AddressLimiter;
  readonly agents: AgentRegistry;
  readonly now: () => number;
}

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/).transform((s) => s.toLowerCase());
const cloid = z.string().regex(/^0x[0-9a-fA-F]{32}$/).transform((s) => s.toLowerCase());
const ms = z.number().int().nonnegative();
const dex = z.string().nullish();
const INTERVALS = ['1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;

const InfoRequest = z.discriminatedUnion('type', [
  z.object({ type: z.literal('meta'), dex }),
  z.object({ type: z.literal('metaAndAssetCtxs'), dex }),
  z.object({ type: z.literal('allMids'), dex }),
  z.object({ type: z.literal('clearinghouseState'), user: address, dex }),
  z.object({ type: z.literal('openOrders'), user: address, dex }),
  z.object({ type: z.literal('frontendOpenOrders'), user: address, dex }),
  z.object({ type: z.literal('userFills'), user: address, aggregateByTime: z.boolean().nullish() }),
  z.object({ type: z.literal('userFillsByTime'), user: address, startTime: ms, endTime: ms.nullish(), aggregateByTime: z.boolean().nullish(), reversed: z.boolean().nullish() }),
  z.object({ type: z.literal('orderStatus'), user: address, oid: z.union([z.number().int().nonnegative(), cloid]) }),
  z.object({ type: z.literal('candleSnapshot'), req: z.object({ coin: z.string(), interval: z.enum(INTERVALS), startTime: ms, endTime: ms.nullish() }) }),
  z.object({ type: z.literal('l2Book'), coin: z.string(), nSigFigs: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(5)]).nullish(), mantissa: z.union([z.literal(1), z.literal(2), z.literal(5)]).nullish() }),
  z.object({ type: z.literal('recentTrades'), coin: z.string() }),
  z.object({ type: z.literal('userRateLimit'), user: address }),
  z.object({ type: z.literal('spotMeta') }),
  z.object({ type: z.literal('spotMetaAndAssetCtxs') }),
  z.object({ type: z.literal('spotClearinghouseState'), user: address, dex }),
  z.object({ type: z.literal('perpDexs') }),
  z.object({ type: z.literal('exchangeStatus') }),
  z.object({ type: z.literal('extraAgents'), user: address }),
  z.object({ type: z.literal('userRole'), user: address }),
  z.object({ type: z.literal('maxBuilderFee'), user: address, builder: address }),
  z.object({ type: z.literal('userFees'), user: address }),
]);
export type InfoRequest = z.infer<typeof InfoRequest>;

export function parseInfoRequest(raw: unknown): InfoRequest | undefined {
  const r = InfoRequest.safeParse(raw);
  return r.success ? r.data : undefined;
}

/** Only the default perp dex exists here; a named HIP-3 dex has no assets. */
function isDefaultDex(d: string | null | undefined): boolean {
  return d === undefined || d === null || d === '';
}

export function handleInfo(ctx: InfoContext, raw: unknown): HandlerResult {
  const req = parseInfoRequest(raw);
  if (!req) return { kind: 'http', status: 422, text: DESERIALIZE_ERROR };
  const ex = ctx.exchange;
  switch (req.type) {
    case 'meta':
      return { kind: 'json', body: isDefaultDex(req.dex) ? ex.meta() : { universe: [], marginTables: [], collateralToken: 0 } };
    case 'metaAndAssetCtxs':
      return { kind: 'json', body: isDefaultDex(req.dex) ? ex.metaAndAssetCtxs() : [{ universe: [], marginTables: [], collateralToken: 0 }, []] };
    case 'allMids':
      return { kind: 'json', body: isDefaultDex(req.dex) ? ex.allMids() : {} };
    case 'clearinghouseState':
      return { kind: 'json', body: ex.clearinghouseState(req.user) };
    case 'openOrders':
      return { kind: 'json', body: ex.openOrders(req.user) };
    case 'frontendOpenOrders':
      return { kind: 'json', body: ex.frontendOpenOrders(req.user) };
    case 'userFills': {
      const fills = ex.userFills(req.user, req.aggregateByTime ?? false);
      return { kind: 'json', body: fills, items: fills.length };
    }
    case 'userFillsByTime': {
      const fills = ex.userFillsByTime(req.user, req.startTime, req.endTime ?? undefined, req.aggregateByTime ?? false);
      return { kind: 'json', body: req.reversed ? [...fills].reverse() : fills, items: fills.length };
    }
    case 'orderStatus':
      return { kind: 'json', body: ex.orderStatus(req.user, req.oid) };
    case 'candleSnapshot': {
      const candles = ctx.market.candleSnapshot(req.req.coin, req.req.interval, req.req.startTime, req.req.endTime ?? undefined);
      return { kind: 'json', body: candles, items: candles.length };
    }
    case 'l2Book':
      return { kind: 'json', body: ex.l2Book(req.coin, req.nSigFigs ?? undefined, req.mantissa ?? undefined) };
    case 'recentTrades': {
      const trades = ex.recentTrades(req.coin);
      return { kind: 'json', body: trades, items: trades.length };
    }
    case 'userRateLimit':
      return { kind: 'json', body: ctx.addressLimits.report(req.user) };
    case 'spotMeta':
      return { kind: 'json', body: { universe: [], tokens: [] } };
    case 'spotMetaAndAssetCtxs':
      return { kind: 'json', body: [{ universe: [], tokens: [] }, []] };
    case 'spotClearinghouseState':
      return { kind: 'json', body: { balances: [] } };
    case 'perpDexs':
      // The default dex is listed as null; no HIP-3 dexes here.
      return { kind: 'json', body: [null] };
    case 'exchangeStatus':
      return { kind: 'json', body: { time: ctx.now(), specialStatuses: null } };
    case 'extraAgents':
      return { kind: 'json', body: ctx.agents.list(req.user, ctx.now()) };
    case 'userRole':
      return { kind: 'json', body: ex.hasAccount(req.user) ? { role: 'user' } : ctx.agents.masterOf(req.user, ctx.now()) ? { role: 'agent', data: { user: ctx.agents.masterOf(req.user, ctx.now()) } } : { role: 'missing' } };
    case 'maxBuilderFee':
      return { kind: 'json', body: 0 };
    case 'userFees':
      return { kind: 'json', body: ex.userFees(req.user) };
  }
}
