/**
 * Request authentication and wire parsing for POST /exchange: the public surface of `src/sim/auth/`.
 * See authenticate.ts for the order of checks and errors.ts for where each error string comes from.
 */
export { authenticate, type AuthContext, type Authenticated, type AuthResult } from './authenticate.ts';
export { parseExchangeBody, isHttpRefusal, type ExchangeBody } from './wire.ts';
export {
  parseAction,
  UNSUPPORTED_L1_TYPES,
  type ParsedAction,
  type ParsedWireAction,
  type SigningPayload,
  type CancelRequest,
  type CancelByCloidRequest,
  type ModifyRequest,
  type OrderRef,
} from './actions.ts';
export {
  recoverL1Signer,
  recoverUserSignedSigner,
  l1ConnectionId,
  normalizeSignature,
  L1_DOMAIN,
  L1_TYPES,
  APPROVE_AGENT_TYPES,
  USD_SEND_TYPES,
  WITHDRAW_TYPES,
  ZERO_ADDRESS,
  type Chain,
  type WireSignature,
  type UserSignedTypes,
} from './signature.ts';
export { AgentRegistry, parseAgentName, MAX_AGENT_VALIDITY_MS, type AgentInfo, type ApproveResult, type AgentRegistryOptions } from './agents.ts';
export { NonceTracker, DAY_MS, type NonceTrackerOptions } from './nonces.ts';
export {
  DESERIALIZE_FAILED,
  EXPIRED_RATE_LIMIT_MULTIPLIER,
  messages,
  http422,
  errRefusal,
  type AuthRefusal,
  type ErrRefusal,
  type HttpRefusal,
} from './errors.ts';
