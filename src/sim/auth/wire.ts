/**
 * Shape check of a POST /exchange body: `{action, nonce, signature:{r,s,v}, vaultAddress?, expiresAfter?}`.
 *
 * Invariants: never throws; anything the real API could not deserialize becomes the HTTP 422
 * `Failed to deserialize the JSON body into the target type`; null is accepted for the optional
 * keys (the Python SDK sends them); unknown top-level keys are ignored (serde's default).
 */
import { http422, type HttpRefusal } from './errors.ts';
import type { WireSignature } from './signature.ts';

export interface ExchangeBody {
  readonly action: Record<string, unknown>;
  readonly nonce: number;
  readonly signature: WireSignature;
  /** Lowercase, or undefined when absent / null. */
  readonly vaultAddress?: string;
  readonly expiresAfter?: number;
}

/** Thrown by the guards below and turned into a 422 at the module edge; never escapes. */
export class Malformed extends Error {
  constructor(detail: string) {
    super(detail);
    this.name = 'Malformed';
  }
}

const HEX = /^0x[0-9a-fA-F]+$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const MAX_U64 = Number.MAX_SAFE_INTEGER; // JSON numbers above 2^53 are not exact in JS; refuse rather than misread.

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function record(v: unknown, path: string): Record<string, unknown> {
  if (!isRecord(v)) throw new Malformed(`${path}: expected an object`);
  return v;
}

export function array(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw new Malformed(`${path}: expected an array`);
  return v;
}

export function bool(v: unknown, path: string): boolean {
  if (typeof v !== 'boolean') throw new Malformed(`${path}: expected a boolean`);
  return v;
}

export function str(v: unknown, path: string): string {
  if (typeof v !== 'string') throw new Malformed(`${path}: expected a string`);
  return v;
}

/** Unsigned integer (u64 on the wire, bounded to exact JS integers). */
export function uint(v: unknown, path: string, max = MAX_U64): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw new Malformed(`${path}: expected an unsigned integer`);
  return v;
}

export function address(v: unknown, path: string): string {
  const s = str(v, path);
  if (!ADDRESS.test(s)) throw new Malformed(`${path}: expected an address`);
  return s.toLowerCase();
}

export function hexString(v: unknown, path: string, maxDigits = 64): string {
  const s = str(v, path);
  if (!HEX.test(s) || s.length - 2 > maxDigits) throw new Malformed(`${path}: expected hex`);
  return s;
}

function optional<T>(v: unknown, parse: (v: unknown) => T): T | undefined {
  return v === undefined || v === null ? undefined : parse(v);
}

/**
 * Parses the outer body. Returns the body or the 422 the real API answers.
 *
 * @example parseExchangeBody(JSON.parse(text)) // { action, nonce, signature, ... } | { ok:false, kind:'http', status:422, ... }
 */
export function parseExchangeBody(raw: unknown): ExchangeBody | HttpRefusal {
  try {
    const body = record(raw, 'body');
    const action = record(body.action, 'action');
    const nonce = uint(body.nonce, 'nonce');
    const sig = record(body.signature, 'signature');
    const signature: WireSignature = {
      r: hexString(sig.r, 'signature.r'),
      s: hexString(sig.s, 'signature.s'),
      v: uint(sig.v, 'signature.v', 255),
    };
    const vaultAddress = optional(body.vaultAddress, (v) => address(v, 'vaultAddress'));
    const expiresAfter = optional(body.expiresAfter, (v) => uint(v, 'expiresAfter'));
    const out: { -readonly [K in keyof ExchangeBody]: ExchangeBody[K] } = { action, nonce, signature };
    if (vaultAddress !== undefined) out.vaultAddress = vaultAddress;
    if (expiresAfter !== undefined) out.expiresAfter = expiresAfter;
    return out;
  } catch (e) {
    if (e instanceof Malformed) return http422(e.message);
    throw e;
  }
}

export function isHttpRefusal(v: unknown): v is HttpRefusal {
  return isRecord(v) && v.ok === false && v.kind === 'http';
}
