/**
 * The replayer on hand-written black boxes (a real SQLite file per case, a toy strategy whose
 * signals depend on how many bars it has seen, so a missed warm-up, a missed reset at a restart or
 * a mis-ordered backlog changes its decisions): pairing of signals (missing, extra, different),
 * the runtime's backlog and restart semantics, risk verdicts recomputed from their contexts,
 * ranges, instruments, overrides that cannot build a strategy; and the pure helpers
 * (firstDifference, parseStrategyParam, the payload parsers).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { afterAll, describe, expect, it } from 'vitest';
import { InvalidArgumentError } from 'commander';
import { dec } from '../../src/domain/decimal.ts';
import { DEFAULT_RISK_CONFIG, evaluateSignal, type RiskContext } from '../../src/domain/risk.ts';
import type { Candle, Instrument, Signal } from '../../src/domain/types.ts';
import { BlackboxRecorder } from '../../src/store/blackbox-recorder.ts';
import { BlackboxReader } from '../../src/store/blackbox-reader.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { StrategyRegistry, type Strategy, type StrategyFactory } from '../../src/strategy/index.ts';
import { replayBlackbox, type ReplayOptions, type ReplayReport } from '../../src/replay/replayer.ts';
import { firstDifference } from '../../src/replay/json-diff.ts';
import { parseRiskInput, parseSignal } from '../../src/replay/payloads.ts';
import { formatReplayReport, parseStrategyParam, replayExitCode } from '../../src/cli/replay-command.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-replay-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileNo = 0;

// ── a toy strategy: a long signal on every `every`-th new bar it has seen (history included) ──
const CountSchema = z.strictObject({ every: z.number().int().positive().default(3) });
type CountConfig = z.infer<typeof CountSchema>;
const countFactory: StrategyFactory<CountConfig> = {
  name: 'count',
  description: 'signals on every n-th new bar (tests)',
  configSchema: CountSchema,
  create: (cfg, inst): Strategy => {
    let seen = 0;
    let lastT = -Infinity;
    return {
      name: 'count',
      intervals: ['1m'],
      warmupBars: 0,
      onCandle(c) {
        if (!c.closed || c.coin !== inst.coin || c.t <= lastT) return undefined;
        lastT = c.t;
        seen += 1;
        if (seen % cfg.every !== 0) return undefined;
        const px = dec(c.c);
        return { coin: inst.coin, direction: 'long', refPx: px, stopPx: px.minus(300), takeProfitPx: px.plus(900), time: c.T, strategy: 'count', reason: `bar ${seen}` };
      },
    };
  },
};
const registry = new StrategyRegistry([countFactory]);

const T0 = 1_700_000_040_000;
function bar(coin: string, i: number, close = 60_000 + i, interval = '1m'): Candle {
  return { coin, interval, t: T0 + i * 60_000, T: T0 + i * 60_000 + 59_999, o: close, h: close + 5, l: close - 5, c: close, v: 10, closed: true };
}

const BTC: Instrument = { coin: 'BTC', assetId: 0, szDecimals: 5, maxLeverage: 40, isMajor: true };

/** Records what the runtime records, driving real toy strategies the way the runtime does. */
class Session {
  readonly box: BlackboxRecorder;
  readonly store: Store;
  readonly strategies = new Map<string, Strategy>();
  readonly signals: { seq: number; signal: Signal }[] = [];
  #time = 1_000;

  private constructor(store: Store) {
    this.store = store;
    this.box = new BlackboxRecorder(store.raw, { flushIntervalMs: 60_000 });
  }

  static async open(): Promise<Session> {
    return new Session(await openStore({ path: path.join(dir, `replay-${++fileNo}.sqlite`) }));
  }

  rec(kind: 'input' | 'decision', type: string, payload: unknown): number {
    this.#time += 1;
    return this.box.record(kind, type, payload, this.#time);
  }

  /** `feed.history` then the warm-up, as the strategy child does at boot. */
  boot(coin: string, history: readonly Candle[], params: Record<string, unknown> = {}, instrument?: Instrument): number {
    const seq = this.rec('input', 'feed.history', { coin, strategy: { name: 'count', params }, candles: history, ...(instrument ? { instrument } : {}) });
    const r = registry.create('count', params, instrument ?? { ...BTC, coin });
    if (!r.ok) throw new Error(r.error.message);
    for (const c of history) if (c.closed) r.strategy.onCandle(c);
    this.strategies.set(coin, r.strategy);
    return seq;
  }

  /** A candle the feed closed: recorded; handed to the strategy only when `live`. */
  candle(c: Candle, live = true): number {
    const seq = this.rec('input', 'feed.candle', { ...c, source: 'ws' });
    if (live) this.decide(c);
    return seq;
  }

  /** The strategy's turn on a candle (live, or from the backlog). */
  decide(c: Candle): Signal | undefined {
    const s = this.strategies.get(c.coin);
    if (!s || !s.intervals.includes(c.interval)) return undefined;
    const sig = s.onCandle(c);
    if (sig) this.signals.push({ seq: this.rec('decision', 'strategy.signal', sig), signal: sig });
    return sig;
  }

  /** risk.context then risk.verdict, as the risk child records them (`tamper` edits the verdict). */
  risk(signal: Signal, ctx: Partial<RiskContext> = {}, tamper?: (v: Record<string, unknown>) => Record<string, unknown>): { context: number; verdict: number } {
    const context: RiskContext = { gate: 'active', instrument: BTC, markPx: signal.refPx, equity: dec(100_000), dayStartEquity: dec(100_000), marginUsed: dec(0), positions: [], workingEntries: [], pnlToday: dec(0), recentOrderTimes: [], now: signal.time + 1, sizeMultiplier: 1, ...ctx };
    const c = this.rec('input', 'risk.context', { signal, context, config: DEFAULT_RISK_CONFIG });
    const v = evaluateSignal(signal, context, DEFAULT_RISK_CONFIG);
    let payload: Record<string, unknown> = v.approved ? { approved: true, coin: signal.coin, order: v.order } : { approved: false, coin: signal.coin, reason: v.reason, detail: v.detail };
    if (tamper) payload = tamper(payload);
    return { context: c, verdict: this.rec('decision', 'risk.verdict', payload) };
  }

  replay(opts: ReplayOptions = {}): ReplayReport {
    this.box.flush();
    const reader = new BlackboxReader(this.store.raw);
    return replayBlackbox(reader, { registry, ...opts });
  }
}

const history = (coin: string, n: number) => Array.from({ length: n }, (_, i) => bar(coin, i));

describe('replayBlackbox: strategy signals', () => {
  it('matches a faithful session, backlog and restart included', async () => {
    const s = await Session.open();
    // A candle closed before the strategy booted: the runtime backlogs it and feeds it after the warm-up.
    const early = bar('BTC', 10);
    s.candle(early, false);
    s.boot('BTC', history('BTC', 10));
    s.decide(early);
    for (let i = 11; i < 30; i++) s.candle(bar('BTC', i));
    // A restart: a fresh strategy warmed on a new history (its bar count starts again).
    s.candle(bar('BTC', 31), false);
    s.boot('BTC', history('BTC', 31));
    s.decide(bar('BTC', 31));
    for (let i = 32; i < 45; i++) s.candle(bar('BTC', i));
    expect(s.signals.length).toBeGreaterThan(8);

    const r = s.replay();
    expect(r.divergences).toEqual([]);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.compared['strategy.signal']).toBe(s.signals.length);
    expect(r.matched).toBe(s.signals.length);
    expect(replayExitCode(r, true)).toBe(0);
  });

  it('reports a recorded signal the replay does not make, and one it makes that was not recorded', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 5));
    const candleSeqs = new Map<number, number>();
    // Bar 8 is recorded but never reached the session's strategy, so its bar count runs one behind
    // the replay's from there on: signals at bars 5 and 9 recorded, 5, 8 and 11 recomputed.
    for (let i = 5; i < 12; i++) candleSeqs.set(i, s.candle(bar('BTC', i), i !== 8));
    expect(s.signals.map((x) => x.signal.time)).toEqual([bar('BTC', 5).T, bar('BTC', 9).T]);
    const r = s.replay();
    expect(r.ok).toBe(false);
    expect(r.matched).toBe(1);
    expect(r.divergences.map((d) => [d.kind, d.seq])).toEqual([
      ['extra', candleSeqs.get(8)],
      ['missing', s.signals[1]!.seq],
      ['extra', candleSeqs.get(11)],
    ]);
    expect(r.divergences[0]!.got).toMatchObject({ coin: 'BTC', time: bar('BTC', 8).T, reason: 'bar 9' });
    expect(r.divergences[1]!.expected).toMatchObject({ time: bar('BTC', 9).T, reason: 'bar 9' });
  });

  it('reports a signal that differs, with the first differing path', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 5));
    for (let i = 5; i < 8; i++) s.candle(bar('BTC', i));
    // Bar 8's signal recorded with a different stop.
    const seq8 = s.rec('input', 'feed.candle', { ...bar('BTC', 8), source: 'ws' });
    const sig = s.strategies.get('BTC')!.onCandle(bar('BTC', 8))!;
    const bad = s.rec('decision', 'strategy.signal', { ...sig, stopPx: sig.stopPx.minus(1) });
    const r = s.replay();
    expect(r.divergenceCount).toBe(1);
    expect(r.divergences[0]).toEqual({ seq: bad, type: 'strategy.signal', coin: 'BTC', kind: 'different', path: '$.stopPx', expected: sig.stopPx.minus(1).toFixed(), got: sig.stopPx.toFixed(), inputSeq: seq8 });
    expect(formatReplayReport(r)).toContain(`DIVERGENT seq ${bad} strategy.signal BTC: differs at $.stopPx`);
    expect(replayExitCode(r, true)).toBe(1);
    expect(replayExitCode(r, false)).toBe(0);
  });

  it('reports a recorded signal with no recomputed counterpart as missing', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 4));
    s.candle(bar('BTC', 4));
    const lone = s.rec('decision', 'strategy.signal', { coin: 'BTC', direction: 'long', refPx: dec(1), stopPx: dec(0.5), takeProfitPx: dec(3), time: bar('BTC', 4).T, strategy: 'count', reason: 'invented' });
    const r = s.replay();
    expect(r.divergences).toEqual([expect.objectContaining({ seq: lone, kind: 'missing', type: 'strategy.signal', path: '$' })]);
  });

  it('a changed parameter diverges; a parameter the strategy refuses is a problem, not a silent pass', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 6));
    for (let i = 6; i < 20; i++) s.candle(bar('BTC', i));
    expect(s.replay().ok).toBe(true);
    const changed = s.replay({ strategyParams: { every: 4 } });
    expect(changed.divergenceCount).toBeGreaterThan(0);
    expect(changed.strategyParams).toEqual({ every: 4 });
    const refused = s.replay({ strategyParams: { nope: 1 } });
    expect(refused.ok).toBe(false);
    expect(refused.problems[0]?.message).toMatch(/cannot build strategy count for BTC: .*nope/);
    expect(refused.notReplayed['strategy.signal']).toBe(s.signals.length);
  });

  it('compares only decisions in from..to, warming strategies on the rows before from', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 6));
    const seqs: number[] = [];
    for (let i = 6; i < 30; i++) seqs.push(s.candle(bar('BTC', i)));
    const mid = s.signals[2]!.seq;
    const last = s.signals[s.signals.length - 1]!;
    // The range ends on the candle whose signal is recorded right after it: not compared, noted.
    const to = last.seq - 1;
    const r = s.replay({ from: mid, to });
    expect(r.divergences).toEqual([]);
    expect(r.compared['strategy.signal']).toBe(s.signals.filter((x) => x.seq >= mid && x.seq <= to).length);
    expect(r.notes.some((n) => n.includes('after --to'))).toBe(true);
    expect(r.ok).toBe(true);
  });

  it('takes the instrument from the records, and reports a coin it cannot price', async () => {
    const s = await Session.open();
    const zzz: Instrument = { coin: 'ZZZ', assetId: 7, szDecimals: 2, maxLeverage: 3, isMajor: false };
    s.boot('ZZZ', history('ZZZ', 6), {}, zzz);
    for (let i = 6; i < 12; i++) s.candle(bar('ZZZ', i));
    // A history without an instrument, for a coin neither the records nor the bundled markets know.
    s.boot('QQQ', history('QQQ', 6));
    for (let i = 6; i < 12; i++) s.candle(bar('QQQ', i));
    const r = s.replay();
    expect(r.compared['strategy.signal']).toBe(s.signals.filter((x) => x.signal.coin === 'ZZZ').length);
    expect(r.problems.map((p) => p.message)).toEqual([expect.stringMatching(/no instrument for QQQ/), expect.stringMatching(/could not be rebuilt/)]);
    expect(r.notReplayed['strategy.signal']).toBe(s.signals.filter((x) => x.signal.coin === 'QQQ').length);
  });
});

describe('replayBlackbox: risk verdicts and the chain', () => {
  it('recomputes verdicts from their recorded contexts, approved and denied', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 2));
    s.candle(bar('BTC', 2));
    const sig = s.signals[0]!.signal;
    const approved = s.risk(sig);
    s.risk(sig, { gate: 'halted' });
    s.risk(sig, { markPx: undefined, positions: [{ coin: 'ETH', szi: dec('-1.5'), entryPx: dec(3000), notional: dec(4500) }] });
    const tampered = s.risk(sig, {}, (v) => ({ ...v, order: { ...(v.order as object), sz: '123' } }));
    const r = s.replay();
    expect(r.compared['risk.verdict']).toBe(4);
    expect(r.compared['strategy.signal']).toBe(1);
    expect(r.divergenceCount).toBe(1);
    expect(s.box.flush() === 0 && new BlackboxReader(s.store.raw).get(approved.verdict)?.payload).toMatch(/^\{"approved":true/);
    expect(r.divergences.filter((d) => d.type === 'risk.verdict')).toEqual([expect.objectContaining({ seq: tampered.verdict, kind: 'different', path: '$.order.sz', expected: '123', inputSeq: tampered.context })]);
  });

  it('checks an entry intent against the approved order it carries out', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 2));
    s.candle(bar('BTC', 2));
    const sig = s.signals[0]!.signal;
    const entry = (order: Record<string, unknown>, cloid: string, over: Record<string, unknown> = {}) =>
      s.rec('decision', 'order.intent', { cloid, coin: order.coin, assetId: order.assetId, side: order.side, sz: order.sz, px: order.px, reduceOnly: false, tif: 'Ioc', kind: 'entry', createdAt: 1, ...over });
    let order: Record<string, unknown> = {};
    s.risk(sig, {}, (v) => ((order = v.order as Record<string, unknown>), v));
    entry(order, '0x01');
    // A protective intent is not derived from a verdict: counted, not compared.
    s.rec('decision', 'order.intent', { cloid: '0x02', coin: 'BTC', kind: 'stop_loss', sz: order.sz, px: '1', reduceOnly: true });
    s.risk(sig);
    const bad = entry(order, '0x03', { sz: dec(order.sz as never).times(2) });
    const orphan = entry(order, '0x04');
    const r = s.replay();
    expect(r.compared['order.intent']).toBe(2);
    expect(r.notReplayed['order.intent']).toBe(2);
    expect(r.divergences).toEqual([expect.objectContaining({ seq: bad, type: 'order.intent', path: '$.sz', got: dec(order.sz as never).toFixed() })]);
    expect(r.problems).toEqual([expect.objectContaining({ seq: orphan, message: expect.stringMatching(/no approved risk verdict/) })]);
  });

  it('a verdict without its context cannot be recomputed: reported, never passed', async () => {
    const s = await Session.open();
    const v = s.rec('decision', 'risk.verdict', { approved: false, coin: 'BTC', reason: 'gate_halted', detail: 'x' });
    const r = s.replay();
    expect(r.notReplayed['risk.verdict']).toBe(1);
    expect(r.problems).toEqual([expect.objectContaining({ seq: v, type: 'risk.verdict' })]);
    expect(r.ok).toBe(false);
  });

  it('refuses a broken chain at its seq unless told to trust it', async () => {
    const s = await Session.open();
    s.boot('BTC', history('BTC', 4));
    for (let i = 4; i < 10; i++) s.candle(bar('BTC', i));
    s.box.flush();
    const victim = s.signals[0]!.seq;
    s.store.raw.prepare("UPDATE blackbox SET payload = replace(payload, '\"reason\":\"bar', '\"reason\":\"BAR') WHERE seq = ?").run(victim);
    const r = s.replay();
    expect(r.refused).toMatch(new RegExp(`broken at seq ${victim}`));
    expect(r.chain).toMatchObject({ ok: false, seq: victim });
    expect(replayExitCode(r, false)).toBe(1);
    const trusted = s.replay({ verifyChain: false });
    expect(trusted.divergences).toEqual([expect.objectContaining({ seq: victim, path: '$.reason' })]);
    expect(trusted.notes.some((n) => n.includes('not verified'))).toBe(true);
  });

  it('an empty black box is refused as empty', async () => {
    const s = await Session.open();
    const r = s.replay();
    expect(r.refused).toBe('the black box is empty');
    expect(replayExitCode(r, false)).toBe(0);
    expect(replayExitCode(r, true)).toBe(1);
  });
});

describe('replay helpers', () => {
  it('firstDifference gives the first differing path in key order', () => {
    expect(firstDifference({ a: 1, b: [1, 2] }, { b: [1, 2], a: 1 })).toBeUndefined();
    expect(firstDifference({ a: [1, 2] }, { a: [1, 3] })).toEqual({ path: '$.a[1]', expected: 2, got: 3 });
    expect(firstDifference({ a: [1] }, { a: [1, 2] })).toEqual({ path: '$.a[1]', expected: undefined, got: 2 });
    expect(firstDifference({ 'x-y': 1, z: 2 }, { z: 2 })).toEqual({ path: '$["x-y"]', expected: 1, got: undefined });
    expect(firstDifference(null, {})).toEqual({ path: '$', expected: null, got: {} });
  });

  it('parseStrategyParam reads JSON values, keeps other text, refuses bad keys', () => {
    let p = parseStrategyParam('macdFast=5', {});
    p = parseStrategyParam('baseInterval=5m', p);
    p = parseStrategyParam('capped=true', p);
    expect({ ...p }).toEqual({ macdFast: 5, baseInterval: '5m', capped: true });
    expect(() => parseStrategyParam('=5', {})).toThrow(InvalidArgumentError);
    expect(() => parseStrategyParam('__proto__=1', {})).toThrow(InvalidArgumentError);
    expect(() => parseStrategyParam('noequals', {})).toThrow(InvalidArgumentError);
  });

  it('payload parsers refuse Decimals that are not recorded decimal strings', () => {
    const good = { coin: 'BTC', direction: 'long', refPx: '100.5', stopPx: '99', takeProfitPx: '103', time: 5, strategy: 's', reason: 'r' };
    const ok = parseSignal(JSON.stringify(good));
    expect(ok.ok && ok.value.refPx.toFixed()).toBe('100.5');
    const asNumber = parseSignal(JSON.stringify({ ...good, refPx: 100.5 }));
    expect(asNumber.ok).toBe(false);
    const garbage = parseSignal(JSON.stringify({ ...good, stopPx: '1e5' }));
    expect(garbage).toEqual({ ok: false, error: expect.stringMatching(/stopPx: not a decimal/) });
    expect(parseSignal('{not json')).toEqual({ ok: false, error: 'payload is not JSON' });
    const risk = parseRiskInput(JSON.stringify({ signal: good, context: {}, config: {} }));
    expect(risk.ok).toBe(false);
  });
});
