/**
 * Acceptance 4 of the resilience issue, on a real recorded session: `keel run` (paper, the embedded
 * simulator) trades until its black box holds several strategy signals and risk verdicts, is
 * stopped with SIGTERM, and then `keel replay` (registered on a fresh commander program, in
 * process) must
 *   - replay the whole log with --verify: zero divergent decisions, every recorded signal and
 *     verdict compared, exit 0;
 *   - report a deliberately changed strategy parameter as divergent (exit 1), while the risk
 *     verdicts, recomputed from their own recorded contexts, still match;
 *   - replay a later stretch (--from after the boot's history) with strategies warmed by the rows
 *     before it;
 *   - refuse a log with one tampered row, naming that row's seq (a copy of the database is
 *     tampered with SQL), and with --no-verify-chain show the tampered decision as divergent.
 */
import { copyFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerReplay } from '../../src/cli/replay-command.ts';
import { replayDatabase } from '../../src/cli/replay-command.ts';
import { BlackboxReader } from '../../src/store/blackbox-reader.ts';
import { openRetainedDatabase } from '../../src/store/native-lifetime.ts';
import type { BlackboxRow } from '../../src/store/blackbox-codec.ts';
import { eventually, killAll, removeTempDirs, startKeel, tempDir } from '../helpers/processes.ts';

afterEach(killAll);
afterAll(removeTempDirs);

/** Runs `keel replay …` in process; returns its exit code and what it printed. */
async function replayCli(args: readonly string[]): Promise<{ code: number; out: string }> {
  const program = new Command('keel').exitOverride();
  registerReplay(program);
  let out = '';
  const saved = process.exitCode;
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  });
  try {
    process.exitCode = undefined;
    await program.parseAsync(['node', 'keel', 'replay', ...args]);
    return { code: Number(process.exitCode ?? 0), out };
  } finally {
    spy.mockRestore();
    process.exitCode = saved;
  }
}

function rowsOf(file: string): BlackboxRow[] {
  const reader = BlackboxReader.open(file);
  try {
    return [...reader.range()];
  } finally {
    reader.close();
  }
}

let db: string;
let rows: BlackboxRow[];
const seqsOf = (type: string) => rows.filter((r) => r.type === type).map((r) => r.seq);

describe('keel replay over a recorded paper session', () => {
  beforeAll(async () => {
    const dataDir = tempDir('replay');
    db = path.join(dataDir, 'keel.sqlite');
    const keel = await startKeel({ dataDir, env: { KEEL_PAPER_SPEED: '480' } });
    const log = keel.child;
    // The log lines follow the black box records; an approved verdict makes the risk
    // comparison cover a sized order, not only denials.
    await eventually(() => (log.messages('signal').length >= 3 && log.messages(/^risk verdict: (approved|denied)$/).length >= 3 && log.messages('risk verdict: approved').length >= 1 ? true : undefined), {
      timeoutMs: 45_000,
      intervalMs: 100,
      what: 'three signals and three risk verdicts, one approved',
    });
    const exit = await log.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    rows = rowsOf(db);
  }, 90_000);

  it('replays the whole session with zero divergent decisions', async () => {
    expect(seqsOf('feed.history').length).toBeGreaterThanOrEqual(1);
    expect(seqsOf('strategy.signal').length).toBeGreaterThanOrEqual(3);
    expect(seqsOf('risk.verdict').length).toBeGreaterThanOrEqual(3);

    const { code, out } = await replayCli(['--db', db, '--verify']);
    expect(code, out).toBe(0);
    expect(out).toMatch(/chain ok/);
    expect(out).toMatch(/ 0 divergent/);

    const report = replayDatabase(db, {});
    expect(report.ok, JSON.stringify(report.divergences.slice(0, 3))).toBe(true);
    expect(report.divergenceCount).toBe(0);
    expect(report.problems).toEqual([]);
    // Every recorded signal and verdict was checked, none skipped.
    expect(report.compared['strategy.signal']).toBe(seqsOf('strategy.signal').length);
    expect(report.compared['risk.verdict']).toBe(seqsOf('risk.verdict').length);
    // Entry intents are checked against the approved orders they carry out.
    const entries = rows.filter((r) => r.type === 'order.intent' && (JSON.parse(r.payload) as { kind: string }).kind === 'entry');
    expect(entries.length).toBeGreaterThanOrEqual(1);
    expect(report.compared['order.intent']).toBe(entries.length);
    expect(report.matched).toBe(report.comparedTotal);
    expect(report.comparedTotal).toBeGreaterThan(0);
    expect(report.inputs['feed.candle']).toBe(seqsOf('feed.candle').length);
  });

  it('reports a changed strategy parameter as divergent and exits 1', async () => {
    const { code, out } = await replayCli(['--db', db, '--verify', '--strategy-param', 'macdFast=5', '--json']);
    expect(code).toBe(1);
    const report = JSON.parse(out) as ReturnType<typeof replayDatabase>;
    expect(report.strategyParams).toEqual({ macdFast: 5 });
    expect(report.ok).toBe(false);
    expect(report.divergenceCount).toBeGreaterThan(0);
    const signals = new Set(seqsOf('strategy.signal'));
    const candles = new Set(seqsOf('feed.candle'));
    for (const d of report.divergences) {
      expect(d.type).toBe('strategy.signal');
      // Each divergence points at a recorded signal, or (an extra one) at the candle that made it.
      expect(d.kind === 'extra' ? candles.has(d.seq) : signals.has(d.seq)).toBe(true);
    }
    // Risk is recomputed from its own recorded inputs: the strategy change does not reach it.
    expect(report.compared['risk.verdict']).toBe(seqsOf('risk.verdict').length);
    expect(report.divergences.some((d) => d.type === 'risk.verdict')).toBe(false);

    // The text report names the divergent seqs.
    const text = await replayCli(['--db', db, '--verify', '--strategy-param', 'macdFast=5']);
    expect(text.code).toBe(1);
    expect(text.out).toMatch(/^DIVERGENT seq \d+ strategy\.signal/m);
    expect(text.out).toMatch(/result: DIVERGENT/);
  });

  it('replays a later stretch with strategies warmed by the rows before it', async () => {
    const signals = seqsOf('strategy.signal');
    const from = signals[1]!;
    const to = rows[rows.length - 1]!.seq;
    const report = replayDatabase(db, { from, to });
    expect(report.ok, JSON.stringify(report.divergences.slice(0, 3))).toBe(true);
    expect(report.range).toEqual({ from, to });
    expect(report.readFrom).toBeLessThan(from);
    expect(report.compared['strategy.signal']).toBe(signals.filter((s) => s >= from).length);
    expect(report.compared['risk.verdict']).toBe(seqsOf('risk.verdict').filter((s) => s >= from).length);
  });

  it('refuses a tampered log at the tampered seq; without the chain check the tampered decision diverges', async () => {
    const copy = path.join(tempDir('replay-tamper'), 'keel.sqlite');
    copyFileSync(db, copy);
    for (const ext of ['-wal', '-shm']) if (existsSync(db + ext)) copyFileSync(db + ext, copy + ext);
    const target = rows.find((r) => r.type === 'strategy.signal' && r.seq === seqsOf('strategy.signal')[1])!;
    const payload = JSON.parse(target.payload) as { stopPx: string };
    const forged = target.payload.replace(`"stopPx":"${payload.stopPx}"`, `"stopPx":"${payload.stopPx}1"`);
    expect(forged).not.toBe(target.payload);
    const raw = openRetainedDatabase(copy, {});
    raw.prepare('UPDATE blackbox SET payload = ? WHERE seq = ?').run(forged, target.seq);
    raw.close();

    const refused = await replayCli(['--db', copy, '--verify']);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain(`chain BROKEN at seq ${target.seq} (hash_mismatch)`);
    expect(refused.out).toMatch(/refused: the hash chain is broken/);
    const report = replayDatabase(copy, {});
    expect(report.refused).toBeDefined();
    expect(report.chain).toMatchObject({ ok: false, seq: target.seq, problem: 'hash_mismatch' });
    expect(report.comparedTotal).toBe(0);

    const trusted = replayDatabase(copy, { verifyChain: false });
    expect(trusted.divergenceCount).toBe(1);
    expect(trusted.divergences[0]).toMatchObject({ seq: target.seq, type: 'strategy.signal', kind: 'different', path: '$.stopPx', expected: `${payload.stopPx}1`, got: payload.stopPx });
    const loose = await replayCli(['--db', copy, '--verify', '--no-verify-chain']);
    expect(loose.code).toBe(1);
    expect(loose.out).toMatch(/chain not verified/);
  });
});
