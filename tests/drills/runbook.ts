/**
 * Drill fixtures: the commands of RUNBOOK.md, taken from the document itself and run as an
 * operator would run them (bash, in a keel directory, `keel` = bin/keel on PATH).
 *
 * A drilled block is a fenced `sh` block preceded by `<!-- drill: <id> -->`. Every line of it that
 * is not a comment is one command. The drills never retype a documented command: they run the
 * block's text, with only the substitutions an operator makes for their own machine (the ops
 * port, the simulator URL), each listed by the drill and applied to the whole line. So a drill
 * fails when the document drifts from what keel does.
 *
 * Invariants: a missing or empty drilled block is an error (a renamed id cannot silently skip a
 * drill); a substitution that does not occur in the block is an error too (the documented text
 * changed under the drill); commands run with no KEEL_* variable from the parent environment.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/processes.ts';

export const RUNBOOK = path.join(REPO_ROOT, 'RUNBOOK.md');

/** The command lines of the block marked `<!-- drill: id -->` (comments and blank lines dropped). */
export function drillBlock(id: string, text: string = readFileSync(RUNBOOK, 'utf8')): string[] {
  const marker = `<!-- drill: ${id} -->`;
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`RUNBOOK.md has no block marked ${marker}`);
  if (text.indexOf(marker, at + marker.length) >= 0) throw new Error(`RUNBOOK.md marks two blocks ${marker}`);
  const m = /^[ \t]*```sh[ \t]*\n([\s\S]*?)^[ \t]*```/m.exec(text.slice(at + marker.length));
  if (!m) throw new Error(`no \`\`\`sh block after ${marker}`);
  const between = text.slice(at + marker.length, at + marker.length + m.index);
  if (between.trim() !== '') throw new Error(`text between ${marker} and its block: the marker must sit right above it`);
  const lines = m[1]!
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length === 0) throw new Error(`the block marked ${marker} holds no command`);
  return lines;
}

export interface CommandResult {
  readonly command: string;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface DrillContext {
  /** The keel directory the operator stands in (its `var/` is the data directory). */
  readonly cwd: string;
  /** KEEL_* settings of this machine (e.g. KEEL_HTTP_ADDR of the running instance). */
  readonly env?: Readonly<Record<string, string>>;
  /** [documented text, this machine's text]: each must occur in the block. */
  readonly substitute?: readonly (readonly [string, string])[];
  readonly timeoutMs?: number;
}

/** Runs one shell command line the way an operator's terminal would (bash -c), to completion. */
export function runShell(command: string, ctx: DrillContext): Promise<CommandResult> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('KEEL_')) base[k] = v;
  // `keel` is bin/keel (the project's Node 24); `node` is Node 24 too, as in the container.
  const PATH = `${path.join(REPO_ROOT, 'bin')}:${path.join(REPO_ROOT, 'node_modules/.bin')}:${base['PATH'] ?? '/usr/bin:/bin'}`;
  const child = spawn('bash', ['-c', command], { cwd: ctx.cwd, env: { ...base, PATH, ...ctx.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), ctx.timeoutMs ?? 60_000);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ command, code, stdout, stderr });
    });
  });
}

/**
 * Runs the block marked `id`, line by line, stopping at the first failure unless `allowFailure`;
 * returns every line's result in order.
 */
export async function runDrill(id: string, ctx: DrillContext & { allowFailure?: boolean }): Promise<CommandResult[]> {
  let lines = drillBlock(id);
  for (const [from, to] of ctx.substitute ?? []) {
    if (!lines.some((l) => l.includes(from))) throw new Error(`drill ${id}: '${from}' no longer occurs in its RUNBOOK block:\n${lines.join('\n')}`);
    lines = lines.map((l) => l.split(from).join(to));
  }
  const out: CommandResult[] = [];
  for (const line of lines) {
    const r = await runShell(line, ctx);
    out.push(r);
    if (r.code !== 0 && !ctx.allowFailure) {
      throw new Error(`drill ${id}: \`${line}\` exited ${r.code}\n--- stdout ---\n${r.stdout.slice(-3_000)}\n--- stderr ---\n${r.stderr.slice(-3_000)}`);
    }
  }
  return out;
}

/** The JSON a command printed on stdout (the whole output, or its last JSON document). */
export function jsonOf<T = Record<string, unknown>>(r: CommandResult): T {
  const text = r.stdout.trim();
  try {
    return JSON.parse(text) as T;
  } catch {
    const start = text.lastIndexOf('\n{');
    return JSON.parse(start >= 0 ? text.slice(start + 1) : text) as T;
  }
}
