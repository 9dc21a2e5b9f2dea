/**
 * `keel replay --from SEQ --to SEQ [--verify] [--strategy-param key=value]…`: feeds a recorded
 * stretch of the black box back through fresh decision makers (src/replay/replayer.ts) and reports
 * every decision that differs. Reads $KEEL_DATA_DIR/keel.sqlite (or --db FILE) read-only, so it
 * works with the runtime stopped or running and can never alter the log.
 *
 * Exit codes: 0 when the replay ran (and, with --verify, nothing diverged and nothing was
 * unreadable); 1 when the chain is broken (the replay refuses unless --no-verify-chain) or, with
 * --verify, a decision diverged or a record could not be replayed; 2 for bad arguments or an
 * unusable database.
 */
import { existsSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { BlackboxError } from '../store/blackbox-codec.ts';
import { BlackboxReader } from '../store/blackbox-reader.ts';
import { replayBlackbox, type Divergence, type ReplayReport } from '../replay/replayer.ts';
import { blackboxDatabasePath } from './blackbox-command.ts';

export const EXIT_OK = 0;
export const EXIT_DIVERGED = 1;
export const EXIT_UNUSABLE = 2;

interface ReplayCliOptions {
  readonly config?: string;
  readonly db?: string;
  readonly from?: number;
  readonly to?: number;
  readonly verify?: boolean;
  readonly verifyChain: boolean;
  readonly strategyParam: Readonly<Record<string, unknown>>;
  readonly json?: boolean;
  readonly maxDivergences?: number;
}

function seqArg(v: string): number {
  if (!/^\d{1,15}$/.test(v)) throw new InvalidArgumentError('must be a non-negative integer seq');
  return Number(v);
}

function countArg(v: string): number {
  if (!/^\d{1,6}$/.test(v)) throw new InvalidArgumentError('must be a non-negative integer');
  return Number(v);
}

const PARAM_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Parses one `key=value` (the value as JSON when it is JSON, else as a string) into `acc`.
 * @example parseStrategyParam('macdFast=5', {}) // { macdFast: 5 }
 */
export function parseStrategyParam(text: string, acc: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new InvalidArgumentError(`expected key=value, got ${JSON.stringify(text)}`);
  const key = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  if (!PARAM_KEY.test(key) || FORBIDDEN_KEYS.has(key)) throw new InvalidArgumentError(`not a parameter name: ${JSON.stringify(key)}`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = raw;
  }
  const out: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  Object.assign(out, acc);
  out[key] = value;
  return out;
}

function show(v: unknown): string {
  const s = v === undefined ? '(absent)' : JSON.stringify(v);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
}

function divergenceLine(d: Divergence): string {
  const input = d.inputSeq !== undefined ? ` (input seq ${d.inputSeq})` : '';
  switch (d.kind) {
    case 'missing':
      return `DIVERGENT seq ${d.seq} ${d.type} ${d.coin}: recorded, but the replay decided nothing: ${show(d.expected)}`;
    case 'extra':
      return `DIVERGENT seq ${d.seq} ${d.type} ${d.coin}: the replay decided ${show(d.got)}, nothing was recorded${input}`;
    default:
      return `DIVERGENT seq ${d.seq} ${d.type} ${d.coin}: differs at ${d.path}: recorded ${show(d.expected)}, replayed ${show(d.got)}${input}`;
  }
}

function counts(m: Readonly<Record<string, number>>): string {
  const e = Object.entries(m).filter(([, n]) => n > 0);
  return e.length === 0 ? 'none' : e.map(([k, n]) => `${k} ${n}`).join(', ');
}

/** The text `keel replay` prints. */
export function formatReplayReport(r: ReplayReport): string {
  const lines: string[] = [];
  const chain = 'skipped' in r.chain ? 'chain not verified' : r.chain.ok ? `chain ok (${r.chain.rows} rows, seq ${r.chain.fromSeq}..${r.chain.toSeq})` : `chain BROKEN at seq ${r.chain.seq} (${r.chain.problem}): ${r.chain.reason}`;
  lines.push(`replay of seq ${r.range.from}..${r.range.to} (inputs read from seq ${r.readFrom}): ${chain}`);
  if (r.refused !== undefined) {
    lines.push(`refused: ${r.refused}`);
    return `${lines.join('\n')}\n`;
  }
  if (Object.keys(r.strategyParams).length > 0) lines.push(`strategy parameters overridden: ${JSON.stringify(r.strategyParams)}`);
  lines.push(`inputs: ${counts(r.inputs)}`);
  lines.push(`compared ${r.comparedTotal} decisions (${counts(r.compared)}): ${r.matched} matched, ${r.divergenceCount} divergent`);
  lines.push(`not replayed: ${counts(r.notReplayed)}`);
  for (const d of r.divergences) lines.push(divergenceLine(d));
  if (r.divergences.length < r.divergenceCount) lines.push(`… ${r.divergenceCount - r.divergences.length} more divergences not listed`);
  for (const p of r.problems) lines.push(`problem at seq ${p.seq} (${p.type}): ${p.message}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  lines.push(r.ok ? 'result: the replay decided the same' : r.divergenceCount > 0 ? 'result: DIVERGENT' : 'result: incomplete (see the problems above)');
  return `${lines.join('\n')}\n`;
}

/** The exit code for a report: refused → 1; with `verify`, any divergence or problem → 1. */
export function replayExitCode(r: ReplayReport, verify: boolean): number {
  if (r.refused !== undefined && !r.refused.startsWith('nothing to replay') && r.refused !== 'the black box is empty') return EXIT_DIVERGED;
  if (verify && !r.ok) return EXIT_DIVERGED;
  return EXIT_OK;
}

/** Runs a replay of the database at `file` (opened read-only and closed again). */
export function replayDatabase(file: string, o: { readonly from?: number; readonly to?: number; readonly verifyChain?: boolean; readonly strategyParams?: Readonly<Record<string, unknown>>; readonly maxDivergences?: number }): ReplayReport {
  if (!existsSync(file)) throw new BlackboxError('not_migrated', `no database at ${file}`);
  const reader = BlackboxReader.open(file);
  try {
    return replayBlackbox(reader, o);
  } finally {
    reader.close();
  }
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('feed a recorded stretch of the black box through fresh decision makers and report every decision that differs')
    .option('--config <file>', 'configuration file (JSON or YAML); the database is <dataDir>/keel.sqlite')
    .option('--db <file>', 'database file (overrides the configuration)')
    .option('--from <seq>', 'first seq whose decisions are compared (default: the oldest kept)', seqArg)
    .option('--to <seq>', 'last seq (default: the newest)', seqArg)
    .option('--verify', 'exit 1 when any decision diverges or cannot be replayed')
    .option('--no-verify-chain', 'replay even when the hash chain is broken (the inputs are then taken on trust)')
    .option('--strategy-param <key=value>', 'override a recorded strategy parameter for the replay (repeatable); a value is JSON when it parses', parseStrategyParam, {})
    .option('--max-divergences <n>', 'list at most n divergences (all are counted; default 100)', countArg)
    .option('--json', 'print the report as JSON')
    .action((o: ReplayCliOptions) => {
      let report: ReplayReport;
      try {
        report = replayDatabase(blackboxDatabasePath(o), {
          ...(o.from !== undefined ? { from: o.from } : {}),
          ...(o.to !== undefined ? { to: o.to } : {}),
          verifyChain: o.verifyChain,
          strategyParams: o.strategyParam,
          ...(o.maxDivergences !== undefined ? { maxDivergences: o.maxDivergences } : {}),
        });
      } catch (e) {
        process.stderr.write(`keel replay: ${(e as Error).message}\n`);
        process.exitCode = EXIT_UNUSABLE;
        return;
      }
      process.stdout.write(o.json === true ? `${JSON.stringify(report)}\n` : formatReplayReport(report));
      process.exitCode = replayExitCode(report, o.verify === true);
    });
}
