/**
 * `keel replay`: feeds a recorded stretch of the black box back through fresh decision makers and
 * reports every decision that differs from the recorded one.
 *
 * What is recomputed (each from its own recorded inputs, so one stage's divergence does not
 * cascade into the next):
 * - strategy.signal: one fresh strategy per coin and boot (`createStrategy(name, params, instrument)`),
 *   warmed up on the boot's `feed.history`, then fed every `feed.candle` in seq order. Signals are
 *   paired with the recorded ones per coin by their bar time; a recorded signal the replay does not
 *   produce is `missing`, a recomputed one never recorded is `extra`, a pair that differs is `different`.
 * - risk.verdict: `evaluateSignal(signal, context, config)` over the preceding `risk.context`,
 *   shaped as the runtime records it.
 * - order.intent of kind entry: derived from the latest recorded approved verdict of its coin (the
 *   order manager's only source of entries) and compared on what it must carry over unchanged
 *   (asset, coin, side, size, price; reduce-only off, IOC). An entry intent with no approval before
 *   it is reported as a problem.
 * Other decisions (protective intents, mode.transition) depend on inputs the black box does not
 * hold in full (venue responses, watchdog facts); they are counted as not replayed, never passed.
 *
 * Invariants:
 * - The chain over every row read is verified first; a broken chain refuses the replay (its seq is
 *   reported) unless the caller opts out, because a tampered input proves nothing.
 * - Rows are read from the oldest kept row, so strategies are warmed by the boot's history even
 *   when `from` lies after it; only decisions recorded within from..to are compared and reported.
 * - Pure over the rows: no wall clock, no randomness, no I/O besides the reader (and the bundled
 *   market list, read once, for instruments the records do not carry). The decision makers here
 *   are pure functions, so no machine clock is involved; a replayed machine would run on XState's
 *   SimulatedClock driven by the recorded row times.
 * - Runtime semantics mirrored: history candles are all fed (closed ones, any interval) and their
 *   signals dropped; live candles go to the strategy only when it takes their interval; candles of
 *   a coin seen before its boot's history are fed after the warm-up, as the runtime's backlog is.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { evaluateSignal } from '../domain/risk.ts';
import type { Candle, Instrument, Signal } from '../domain/types.ts';
import { canonicalJson, type BlackboxRow } from '../store/blackbox-codec.ts';
import type { BlackboxReader, BlackboxVerifyResult } from '../store/blackbox-reader.ts';
import { GAP_EVENT_TYPE } from '../store/blackbox-recorder.ts';
import { BUILTIN_STRATEGIES, type Strategy, type StrategyRegistry } from '../strategy/index.ts';
import { firstDifference } from './json-diff.ts';
import { instrumentOfRiskContext, parseCandle, parseHistory, parseRiskInput, parseSignal, parseVerdictHead } from './payloads.ts';

/** Decision types the replay recomputes. */
export const REPLAYED_DECISIONS = ['strategy.signal', 'risk.verdict', 'order.intent'] as const;
export type ReplayedDecision = (typeof REPLAYED_DECISIONS)[number];

export type DivergenceKind = 'different' | 'missing' | 'extra';

export interface Divergence {
  /** The recorded decision's seq; for `extra`, the seq of the input that produced it. */
  readonly seq: number;
  readonly type: ReplayedDecision;
  readonly coin: string;
  readonly kind: DivergenceKind;
  /** First differing path (`$` for a missing or extra decision). */
  readonly path: string;
  /** Recorded value at `path` (undefined for `extra`). */
  readonly expected: unknown;
  /** Recomputed value at `path` (undefined for `missing`). */
  readonly got: unknown;
  /** The input row the recomputed decision came from, when there is one. */
  readonly inputSeq?: number;
}

/** Something the replay could not use: a payload it cannot parse, a strategy it cannot build. */
export interface ReplayProblem {
  readonly seq: number;
  readonly type: string;
  readonly message: string;
}

export interface ReplayOptions {
  /** First seq whose decisions are compared (default: the oldest kept row). */
  readonly from?: number;
  /** Last seq read and compared (default: the newest). */
  readonly to?: number;
  /** Verify the hash chain first and refuse on a break (default true). */
  readonly verifyChain?: boolean;
  /** Strategy parameters overriding the recorded ones (e.g. `{ macdFast: 5 }`). */
  readonly strategyParams?: Readonly<Record<string, unknown>>;
  /** Instruments for coins whose records carry none (default: the bundled data/markets.json). */
  readonly instruments?: (coin: string) => Instrument | undefined;
  readonly registry?: StrategyRegistry;
  /** How many divergences the report lists (all are counted). Default 100. */
  readonly maxDivergences?: number;
}

export interface ReplayReport {
  /** True when the chain held (or was not checked), nothing diverged and there were no problems. */
  readonly ok: boolean;
  /** Why the replay did not run (a broken chain, an empty range). */
  readonly refused?: string;
  readonly range: { readonly from: number; readonly to: number };
  /** First seq read: inputs before `from` only warm the decision makers up. */
  readonly readFrom: number;
  readonly chain: BlackboxVerifyResult | { readonly skipped: true };
  readonly rowsRead: number;
  /** Inputs within the range, by type. */
  readonly inputs: Readonly<Record<string, number>>;
  /** Recorded decisions within the range checked against a recomputation, by type. */
  readonly compared: Readonly<Record<ReplayedDecision, number>>;
  readonly comparedTotal: number;
  readonly matched: number;
  readonly divergenceCount: number;
  readonly divergences: readonly Divergence[];
  /** Recorded decisions within the range that replay cannot recompute, by type. */
  readonly notReplayed: Readonly<Record<string, number>>;
  readonly problems: readonly ReplayProblem[];
  readonly notes: readonly string[];
  readonly strategyParams: Readonly<Record<string, unknown>>;
}

interface PendingSignal {
  readonly signal: Signal;
  readonly inputSeq: number;
}

/** One coin's strategy across boots: each `feed.history` starts a fresh one. */
interface Lane {
  strategy: Strategy | undefined;
  /** Candles since the last history: the next boot's backlog may hold them. */
  recent: { readonly candle: Candle; readonly seq: number }[];
  /** Recomputed signals not yet paired with a recorded one, in bar order. */
  pending: PendingSignal[];
  historySeq: number | undefined;
}

const RECENT_CANDLES = 500;
const MAX_PROBLEMS = 100;

interface BundledMarket {
  readonly coin: string;
  readonly szDecimals: number;
  readonly maxLeverage: number;
}

let bundled: ReadonlyMap<string, Instrument> | undefined;

/** Instruments of the bundled market data (what paper trading quotes), asset ids in file order. */
export function bundledInstrument(coin: string): Instrument | undefined {
  if (bundled === undefined) {
    const m = new Map<string, Instrument>();
    try {
      const file = path.resolve(import.meta.dirname, '../../data/markets.json');
      const list = JSON.parse(readFileSync(file, 'utf8')) as BundledMarket[];
      list.forEach((x, i) => m.set(x.coin, { coin: x.coin, assetId: i, szDecimals: x.szDecimals, maxLeverage: x.maxLeverage, isMajor: x.coin === 'BTC' || x.coin === 'ETH' }));
    } catch {
      // No bundled data: instruments must come from the records.
    }
    bundled = m;
  }
  return bundled.get(coin);
}

/** The recorded payload as a JSON value; the recomputed one through the recorder's own serializer. */
function recordedJson(row: BlackboxRow): unknown {
  return JSON.parse(row.payload);
}

function asRecordedJson(value: unknown): unknown {
  return JSON.parse(canonicalJson(value));
}

class Replay {
  readonly #from: number;
  readonly #opts: ReplayOptions;
  readonly #overrides: Readonly<Record<string, unknown>>;
  readonly #registry: StrategyRegistry;
  readonly #maxDivergences: number;
  readonly #lanes = new Map<string, Lane>();
  readonly #instruments = new Map<string, Instrument>();
  readonly inputs: Record<string, number> = {};
  readonly compared: Record<ReplayedDecision, number> = { 'strategy.signal': 0, 'risk.verdict': 0, 'order.intent': 0 };
  readonly notReplayed: Record<string, number> = {};
  readonly divergences: Divergence[] = [];
  readonly problems: ReplayProblem[] = [];
  readonly notes: string[] = [];
  divergenceCount = 0;
  matched = 0;
  rows = 0;
  #pendingRisk: { readonly seq: number; readonly coin: string; readonly verdict: unknown } | undefined;
  #problemKeys = new Set<string>();
  /** The latest recorded approved order per coin not yet turned into an entry intent. */
  readonly #approved = new Map<string, { readonly seq: number; readonly order: Record<string, unknown> }>();

  constructor(from: number, opts: ReplayOptions) {
    this.#from = from;
    this.#opts = opts;
    this.#overrides = opts.strategyParams ?? {};
    this.#registry = opts.registry ?? BUILTIN_STRATEGIES;
    this.#maxDivergences = opts.maxDivergences ?? 100;
  }

  /** Learns instruments from risk contexts (a first pass), for strategies booted before any. */
  learnInstrument(row: BlackboxRow): void {
    if (row.type !== 'risk.context') return;
    const inst = instrumentOfRiskContext(row.payload);
    if (inst !== undefined && !this.#instruments.has(inst.coin)) this.#instruments.set(inst.coin, inst);
  }

  feed(row: BlackboxRow): void {
    this.rows += 1;
    const inRange = row.seq >= this.#from;
    if (inRange && row.kind === 'input') this.inputs[row.type] = (this.inputs[row.type] ?? 0) + 1;
    switch (row.type) {
      case 'feed.history':
        return this.#onHistory(row);
      case 'feed.candle':
        return this.#onCandle(row);
      case 'strategy.signal':
        return this.#onSignal(row);
      case 'risk.context':
        return this.#onRiskContext(row);
      case 'risk.verdict':
        return this.#onVerdict(row);
      case 'order.intent':
        return this.#onIntent(row);
      case GAP_EVENT_TYPE:
        if (inRange) this.notes.push(`seq ${row.seq}: the recorder dropped events here (${row.payload}); decisions around it may be unpaired`);
        return;
      default:
        if (inRange && row.kind === 'decision') this.notReplayed[row.type] = (this.notReplayed[row.type] ?? 0) + 1;
    }
  }

  /** End of the range: what was recomputed but never recorded. */
  finish(toIsHead: boolean): void {
    for (const [coin, lane] of this.#lanes) {
      for (const p of lane.pending) {
        if (p.inputSeq < this.#from) continue;
        if (toIsHead) this.#diverge({ seq: p.inputSeq, type: 'strategy.signal', coin, kind: 'extra', path: '$', expected: undefined, got: asRecordedJson(p.signal), inputSeq: p.inputSeq });
        else this.notes.push(`${coin}: a signal recomputed from the candle at seq ${p.inputSeq} would be recorded after --to; not compared`);
      }
      lane.pending = [];
    }
    if (this.#pendingRisk !== undefined && this.#pendingRisk.seq >= this.#from) {
      if (toIsHead) this.#problem(this.#pendingRisk.seq, 'risk.context', 'no risk.verdict follows this risk.context');
      else this.notes.push(`the verdict on the risk.context at seq ${this.#pendingRisk.seq} lies after --to; not compared`);
    }
  }

  #lane(coin: string): Lane {
    let lane = this.#lanes.get(coin);
    if (lane === undefined) {
      lane = { strategy: undefined, recent: [], pending: [], historySeq: undefined };
      this.#lanes.set(coin, lane);
    }
    return lane;
  }

  #instrument(coin: string, recorded: Instrument | undefined): Instrument | undefined {
    if (recorded !== undefined) return recorded;
    return this.#instruments.get(coin) ?? (this.#opts.instruments ?? bundledInstrument)(coin);
  }

  #onHistory(row: BlackboxRow): void {
    const h = parseHistory(row.payload);
    if (!h.ok) return this.#problem(row.seq, row.type, `unreadable feed.history: ${h.error}`);
    const hist = h.value;
    const lane = this.#lane(hist.coin);
    if (lane.strategy !== undefined && lane.pending.length > 0) {
      // A restart: candles recorded just before it may belong to the new boot's backlog, so a
      // signal the old boot's strategy made from them proves nothing either way.
      const late = lane.pending.filter((p) => p.inputSeq >= this.#from);
      if (late.length > 0) this.notes.push(`${hist.coin}: ${late.length} signal(s) recomputed from candles at seq ${late.map((p) => p.inputSeq).join(', ')} were not recorded before the restart at seq ${row.seq} (those candles may belong to the new boot's backlog); not compared`);
    }
    lane.pending = [];
    lane.historySeq = row.seq;
    lane.strategy = undefined;
    const inst = this.#instrument(hist.coin, hist.instrument);
    if (inst === undefined) return this.#problem(row.seq, row.type, `no instrument for ${hist.coin}: not in the records nor in the bundled markets; its signals cannot be recomputed`);
    const params = { ...hist.strategy.params, ...this.#overrides };
    const built = this.#registry.create(hist.strategy.name, params, inst);
    if (!built.ok) return this.#problem(row.seq, row.type, `cannot build strategy ${hist.strategy.name} for ${hist.coin}: ${built.error.message}`);
    const s = built.strategy;
    for (const c of hist.candles) if (c.closed) s.onCandle(c);
    lane.strategy = s;
    const backlog = lane.recent;
    lane.recent = [];
    for (const b of backlog) this.#live(lane, b.candle, b.seq);
  }

  #onCandle(row: BlackboxRow): void {
    const c = parseCandle(row.payload);
    if (!c.ok) return this.#problem(row.seq, row.type, `unreadable feed.candle: ${c.error}`);
    this.#live(this.#lane(c.value.coin), c.value, row.seq);
  }

  #live(lane: Lane, candle: Candle, seq: number): void {
    lane.recent.push({ candle, seq });
    if (lane.recent.length > RECENT_CANDLES) lane.recent.splice(0, lane.recent.length - RECENT_CANDLES);
    const s = lane.strategy;
    if (s === undefined || !s.intervals.includes(candle.interval)) return;
    const signal = s.onCandle(candle);
    if (signal !== undefined) lane.pending.push({ signal, inputSeq: seq });
  }

  #onSignal(row: BlackboxRow): void {
    const inRange = row.seq >= this.#from;
    const parsed = parseSignal(row.payload);
    if (!parsed.ok) return this.#problem(row.seq, row.type, `unreadable strategy.signal: ${parsed.error}`);
    const rec = parsed.value;
    const lane = this.#lane(rec.coin);
    if (lane.historySeq === undefined || lane.strategy === undefined) {
      if (inRange) {
        this.notReplayed[row.type] = (this.notReplayed[row.type] ?? 0) + 1;
        this.#problem(row.seq, row.type, lane.historySeq === undefined ? `no feed.history for ${rec.coin} before this signal: its strategy cannot be rebuilt` : `the strategy for ${rec.coin} could not be rebuilt (see seq ${lane.historySeq})`);
      }
      return;
    }
    // Signals are recorded in bar order per coin: a recomputed one for an earlier bar that is still
    // unpaired was never recorded.
    while (lane.pending.length > 0 && lane.pending[0]!.signal.time < rec.time) {
      const p = lane.pending.shift()!;
      if (p.inputSeq >= this.#from) this.#diverge({ seq: p.inputSeq, type: 'strategy.signal', coin: rec.coin, kind: 'extra', path: '$', expected: undefined, got: asRecordedJson(p.signal), inputSeq: p.inputSeq });
    }
    const head = lane.pending[0];
    if (head !== undefined && head.signal.time === rec.time) {
      lane.pending.shift();
      if (inRange) this.#compare(row, 'strategy.signal', rec.coin, asRecordedJson(head.signal), head.inputSeq);
      return;
    }
    if (inRange) {
      this.compared['strategy.signal'] += 1;
      this.#diverge({ seq: row.seq, type: 'strategy.signal', coin: rec.coin, kind: 'missing', path: '$', expected: recordedJson(row), got: undefined });
    }
  }

  #onRiskContext(row: BlackboxRow): void {
    if (this.#pendingRisk !== undefined && this.#pendingRisk.seq >= this.#from) this.#problem(this.#pendingRisk.seq, 'risk.context', 'no risk.verdict follows this risk.context');
    this.#pendingRisk = undefined;
    const r = parseRiskInput(row.payload);
    if (!r.ok) return this.#problem(row.seq, row.type, `unreadable risk.context: ${r.error}`);
    const { signal, context, config } = r.value;
    let verdict: unknown;
    try {
      const v = evaluateSignal(signal, context, config);
      verdict = v.approved ? { approved: true, coin: signal.coin, order: v.order } : { approved: false, coin: signal.coin, reason: v.reason, detail: v.detail };
    } catch (e) {
      return this.#problem(row.seq, row.type, `evaluateSignal threw on the recorded context: ${(e as Error).message}`);
    }
    this.#pendingRisk = { seq: row.seq, coin: signal.coin, verdict: asRecordedJson(verdict) };
  }

  #onVerdict(row: BlackboxRow): void {
    const inRange = row.seq >= this.#from;
    const pending = this.#pendingRisk;
    this.#pendingRisk = undefined;
    const head = parseVerdictHead(row.payload);
    if (!head.ok) return this.#problem(row.seq, row.type, `unreadable risk.verdict: ${head.error}`);
    if (head.value.approved) {
      const order = (recordedJson(row) as { order?: unknown }).order;
      if (typeof order === 'object' && order !== null) this.#approved.set(head.value.coin, { seq: row.seq, order: order as Record<string, unknown> });
    }
    if (pending === undefined) {
      if (inRange) {
        this.notReplayed[row.type] = (this.notReplayed[row.type] ?? 0) + 1;
        this.#problem(row.seq, row.type, 'no readable risk.context precedes this verdict: it cannot be recomputed');
      }
      return;
    }
    if (!inRange) return;
    if (pending.coin !== head.value.coin) {
      this.compared['risk.verdict'] += 1;
      this.#diverge({ seq: row.seq, type: 'risk.verdict', coin: head.value.coin, kind: 'different', path: '$.coin', expected: head.value.coin, got: pending.coin, inputSeq: pending.seq });
      return;
    }
    this.#compare(row, 'risk.verdict', pending.coin, pending.verdict, pending.seq);
  }

  #onIntent(row: BlackboxRow): void {
    const inRange = row.seq >= this.#from;
    let intent: Record<string, unknown>;
    try {
      intent = JSON.parse(row.payload) as Record<string, unknown>;
    } catch {
      return this.#problem(row.seq, row.type, 'unreadable order.intent: payload is not JSON');
    }
    if (typeof intent !== 'object' || intent === null || intent.kind !== 'entry' || typeof intent.coin !== 'string') {
      if (inRange) this.notReplayed[row.type] = (this.notReplayed[row.type] ?? 0) + 1;
      return;
    }
    const approved = this.#approved.get(intent.coin);
    this.#approved.delete(intent.coin);
    if (!inRange) return;
    if (approved === undefined) {
      this.notReplayed[row.type] = (this.notReplayed[row.type] ?? 0) + 1;
      return this.#problem(row.seq, row.type, `entry intent for ${intent.coin} with no approved risk verdict before it`);
    }
    const o = approved.order;
    const derived = { assetId: o.assetId, coin: o.coin, side: o.side, sz: o.sz, px: o.px, reduceOnly: false, tif: 'Ioc', kind: 'entry' };
    const recorded: Record<string, unknown> = {};
    for (const k of Object.keys(derived)) recorded[k] = intent[k];
    this.compared['order.intent'] += 1;
    const d = firstDifference(recorded, derived);
    if (d === undefined) this.matched += 1;
    else this.#diverge({ seq: row.seq, type: 'order.intent', coin: intent.coin, kind: 'different', path: d.path, expected: d.expected, got: d.got, inputSeq: approved.seq });
  }

  #compare(row: BlackboxRow, type: ReplayedDecision, coin: string, got: unknown, inputSeq: number): void {
    this.compared[type] += 1;
    const d = firstDifference(recordedJson(row), got);
    if (d === undefined) this.matched += 1;
    else this.#diverge({ seq: row.seq, type, coin, kind: 'different', path: d.path, expected: d.expected, got: d.got, inputSeq });
  }

  #diverge(d: Divergence): void {
    this.divergenceCount += 1;
    if (this.divergences.length < this.#maxDivergences) this.divergences.push(d);
  }

  #problem(seq: number, type: string, message: string): void {
    // One line per distinct message: a strategy that cannot be built fails every signal alike.
    const key = `${type}|${message}`;
    if (this.#problemKeys.has(key)) return;
    this.#problemKeys.add(key);
    if (this.problems.length < MAX_PROBLEMS) this.problems.push({ seq, type, message });
  }
}

/**
 * Replays from..to of the black box behind `reader` (the caller owns and closes it).
 *
 * @example
 * const reader = BlackboxReader.open('var/keel.sqlite');
 * const report = replayBlackbox(reader, { from: 1, strategyParams: { macdFast: 5 } });
 * if (report.divergenceCount > 0) console.log(report.divergences[0]);
 * reader.close();
 */
export function replayBlackbox(reader: BlackboxReader, opts: ReplayOptions = {}): ReplayReport {
  const head = reader.head();
  const first = head.firstSeq ?? head.anchorSeq + 1;
  const from = Math.max(opts.from ?? first, first);
  const to = Math.min(opts.to ?? head.headSeq, head.headSeq);
  const strategyParams = { ...(opts.strategyParams ?? {}) };
  const base = { range: { from, to }, readFrom: first, strategyParams };
  const empty = { rowsRead: 0, inputs: {}, compared: { 'strategy.signal': 0, 'risk.verdict': 0, 'order.intent': 0 }, comparedTotal: 0, matched: 0, divergenceCount: 0, divergences: [], notReplayed: {}, problems: [], notes: [] };

  if (from > to) return { ok: false, refused: head.rows === 0 ? 'the black box is empty' : `nothing to replay: seq ${from}..${to} holds no rows`, chain: { skipped: true }, ...base, ...empty };

  let chain: ReplayReport['chain'] = { skipped: true };
  if (opts.verifyChain !== false) {
    chain = reader.verify(first, to);
    if (!chain.ok) return { ok: false, refused: `the hash chain is broken at seq ${chain.seq} (${chain.problem}): ${chain.reason}`, chain, ...base, ...empty };
  }

  const replay = new Replay(from, opts);
  for (const row of reader.range(first, to)) replay.learnInstrument(row);
  for (const row of reader.range(first, to)) replay.feed(row);
  replay.finish(to === head.headSeq);
  if (opts.verifyChain === false) replay.notes.push('the hash chain was not verified (--no-verify-chain): the inputs are taken on trust');

  const comparedTotal = REPLAYED_DECISIONS.reduce((n, t) => n + replay.compared[t], 0);
  return {
    ok: replay.divergenceCount === 0 && replay.problems.length === 0,
    chain,
    ...base,
    rowsRead: replay.rows,
    inputs: replay.inputs,
    compared: replay.compared,
    comparedTotal,
    matched: replay.matched,
    divergenceCount: replay.divergenceCount,
    divergences: [...replay.divergences].sort((a, b) => a.seq - b.seq),
    notReplayed: replay.notReplayed,
    problems: replay.problems,
    notes: replay.notes,
  };
}
