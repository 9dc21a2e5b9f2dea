/**
 * The black box's row format: canonical payload serialization, the chain hash, the row and
 * JSON-lines shapes shared by the recorder, the reader and `keel blackbox`.
 *
 * Invariants:
 * - `canonicalJson` is deterministic: the same value always gives the same text, whatever the
 *   insertion order of its keys. Objects list integer-like keys first in ascending numeric order,
 *   then the other keys by UTF-16 code unit (exactly the order JavaScript gives a parsed object), so
 *   `JSON.stringify(JSON.parse(text)) === text`: an exported payload re-serializes to the hashed
 *   bytes. Decimal → its plain string (never exponent notation); Map → object (keys as strings);
 *   Set → array sorted by each element's canonical text; bigint → decimal string; Date → epoch ms;
 *   non-finite numbers → "NaN" / "Infinity" / "-Infinity" (JSON has no such numbers, and null would
 *   lose them); -0 → 0; undefined, functions and symbols are omitted from objects and become null
 *   in arrays (as JSON.stringify does); an Error → { name, message }; other objects with toJSON →
 *   their toJSON(). A cycle or nesting deeper than MAX_DEPTH is a BlackboxError('invalid_payload').
 * - hash = sha256 hex of `prev_hash \n seq \n time \n kind \n type \n payload` (UTF-8, decimal
 *   integers). The newline separators make the fields unambiguous: type is restricted to
 *   TYPE_PATTERN and canonical JSON never holds a raw newline.
 * - The first row ever links to GENESIS_HASH (64 zeros); after retention pruning, the first row
 *   links to the anchor (the last pruned row's hash) kept in blackbox_meta.
 */
import { createHash } from 'node:crypto';
import { Decimal as DecimalJs } from 'decimal.js';

export const GENESIS_HASH = '0'.repeat(64);
export const BLACKBOX_KINDS = ['input', 'decision'] as const;
export type BlackboxKind = (typeof BLACKBOX_KINDS)[number];
/** Event type names: dotted words such as `feed.candle`, `venue.response`, `risk.verdict`. */
export const TYPE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,99}$/;
export const MAX_DEPTH = 64;
const HASH_RE = /^[0-9a-f]{64}$/;

export type BlackboxErrorKind = 'invalid_payload' | 'invalid_event' | 'not_migrated' | 'in_transaction' | 'closed' | 'write_failed' | 'corrupt';

/** The black box's one error class; `detail` carries what was refused or what failed. */
export class BlackboxError extends Error {
  readonly kind: BlackboxErrorKind;
  readonly detail: unknown;
  constructor(kind: BlackboxErrorKind, message: string, detail?: unknown, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BlackboxError';
    this.kind = kind;
    this.detail = detail;
  }
}

/** One stored row; `payload` is the canonical JSON text exactly as hashed. */
export interface BlackboxRow {
  readonly seq: number;
  readonly time: number;
  readonly kind: BlackboxKind;
  readonly type: string;
  readonly payload: string;
  readonly prevHash: string;
  readonly hash: string;
}

export function isBlackboxKind(v: unknown): v is BlackboxKind {
  return v === 'input' || v === 'decision';
}

export function isHash(v: unknown): v is string {
  return typeof v === 'string' && HASH_RE.test(v);
}

/** The chain hash of one row (see the module header for the exact input). */
export function chainHash(prevHash: string, seq: number, time: number, kind: string, type: string, payload: string): string {
  return createHash('sha256').update(`${prevHash}\n${seq}\n${time}\n${kind}\n${type}\n${payload}`).digest('hex');
}

const INTEGER_KEY = /^(?:0|[1-9]\d*)$/;
// JavaScript orders an object's own keys that are array indices (up to 2^32 - 2) first, numerically.
function isIndexKey(k: string): boolean {
  const c = k.charCodeAt(0);
  if (c < 48 || c > 57) return false;
  return INTEGER_KEY.test(k) && (k.length < 10 || Number(k) <= 4294967294);
}

function compareKeys(a: string, b: string): number {
  const ai = isIndexKey(a);
  const bi = isIndexKey(b);
  if (ai && bi) return Number(a) - Number(b);
  if (ai !== bi) return ai ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Keys in canonical order: the default sort (UTF-16 code units) unless an index-like key needs moving. */
function sortKeys(keys: string[]): string[] {
  keys.sort();
  for (const k of keys) if (isIndexKey(k)) return keys.sort(compareKeys);
  return keys;
}

function numberText(n: number): string {
  if (Number.isFinite(n)) return Object.is(n, -0) ? '0' : JSON.stringify(n);
  return JSON.stringify(String(n));
}

function decimalText(d: DecimalJs): string {
  if (!d.isFinite()) return JSON.stringify(d.toString());
  // toFixed() is plain notation whatever the clone's toExpPos/toExpNeg; -0 prints as "0".
  return JSON.stringify(d.isZero() ? '0' : d.toFixed());
}

/** A plain object: its own enumerable string keys. The hot path, so no intermediate entries. */
function plainObjectText(o: Record<string, unknown>, seen: Set<object>, depth: number): string {
  let out = '{';
  for (const k of sortKeys(Object.keys(o))) {
    const text = valueText(o[k], seen, depth);
    if (text === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(k)}:${text}`;
  }
  return `${out}}`;
}

function entriesText(entries: readonly (readonly [string, unknown])[], seen: Set<object>, depth: number): string {
  const byKey = new Map<string, unknown>();
  for (const [k, v] of entries) {
    // Only a Map can do this (keys 1 and '1'): JSON would keep one of them silently.
    if (byKey.has(k)) throw new BlackboxError('invalid_payload', `payload has the key ${JSON.stringify(k)} twice`);
    byKey.set(k, v);
  }
  let out = '{';
  for (const k of sortKeys([...byKey.keys()])) {
    const text = valueText(byKey.get(k), seen, depth);
    if (text === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(k)}:${text}`;
  }
  return `${out}}`;
}

function valueText(v: unknown, seen: Set<object>, depth: number): string | undefined {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'number':
      return numberText(v);
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify(v.toString());
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (v === null) return 'null';
  const o = v as object;
  if (depth >= MAX_DEPTH) throw new BlackboxError('invalid_payload', `payload nested deeper than ${MAX_DEPTH}`);
  if (seen.has(o)) throw new BlackboxError('invalid_payload', 'payload has a cycle');
  seen.add(o);
  try {
    const d = depth + 1;
    if (DecimalJs.isDecimal(o)) return decimalText(o as DecimalJs);
    if (Array.isArray(o)) return `[${o.map((x: unknown) => valueText(x, seen, d) ?? 'null').join(',')}]`;
    if (o instanceof Map) {
      const entries: [string, unknown][] = [];
      for (const [k, x] of o as Map<unknown, unknown>) entries.push([typeof k === 'string' ? k : canonicalKey(k, seen, d), x]);
      return entriesText(entries, seen, d);
    }
    if (o instanceof Set) {
      const items = [...(o as Set<unknown>)].map((x) => valueText(x, seen, d) ?? 'null').sort();
      return `[${items.join(',')}]`;
    }
    if (o instanceof Date) return numberText(o.getTime());
    if (o instanceof Error) return entriesText([['name', o.name], ['message', o.message]], seen, d);
    if (ArrayBuffer.isView(o)) return `[${Array.from(o as unknown as ArrayLike<number>, (x) => numberText(Number(x))).join(',')}]`;
    const toJSON = (o as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return valueText(toJSON.call(o), seen, d);
    return plainObjectText(o as Record<string, unknown>, seen, d);
  } finally {
    seen.delete(o);
  }
}

function canonicalKey(k: unknown, seen: Set<object>, depth: number): string {
  if (typeof k === 'number' || typeof k === 'bigint' || typeof k === 'boolean') return String(k);
  return valueText(k, seen, depth) ?? 'null';
}

/**
 * The canonical JSON text of a payload (see the module header). `undefined` at the top level is
 * `null`, so every event has a payload.
 *
 * @example canonicalJson({ b: dec('1.50'), a: new Map([['x', 1]]) }) // '{"a":{"x":1},"b":"1.5"}'
 */
export function canonicalJson(value: unknown): string {
  return valueText(value, new Set(), 0) ?? 'null';
}

/** One JSON-lines record of a row: the payload embedded as JSON (its canonical text, verbatim). */
export function rowToJsonLine(r: BlackboxRow): string {
  return `{"seq":${r.seq},"time":${r.time},"kind":${JSON.stringify(r.kind)},"type":${JSON.stringify(r.type)},"payload":${r.payload},"prev_hash":"${r.prevHash}","hash":"${r.hash}"}`;
}
