/**
 * Operator commands against the running instance's control API: `keel pause`, `resume`,
 * `kill [--yes]`, `ack`, `reconcile [--dry-run]`. The bearer token is KEEL_API_TOKEN, or the one
 * the runtime generated in `$KEEL_DATA_DIR/api-token`. Each prints the answer as JSON and exits 0
 * on success, non-zero with a one-line reason otherwise.
 */
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { loadConfig } from '../config/config.ts';

async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

function token(cfg: { apiToken?: string | undefined; dataDir: string }): string {
  if (cfg.apiToken) return cfg.apiToken;
  const file = path.join(cfg.dataDir, 'api-token');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  throw new Error(`no KEEL_API_TOKEN and no ${file}: is keel running with this data directory?`);
}

async function call(action: string, o: { config?: string }, params: Record<string, string> = {}): Promise<void> {
  const cfg = loadConfig({ env: process.env, ...(o.config ? { file: o.config } : {}) });
  const qs = new URLSearchParams(params).toString();
  let r: Response;
  try {
    r = await fetch(`http://${cfg.httpAddr}/control/${action}${qs ? `?${qs}` : ''}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token(cfg)}`, 'x-keel-actor': `cli:${userInfo().username}` },
      signal: AbortSignal.timeout(60_000),
    });
  } catch (e) {
    throw new Error(`keel is not answering on ${cfg.httpAddr} (${(e as Error).message}); for a stopped runtime use \`keel flatten\``);
  }
  const body = await r.text();
  process.stdout.write(`${body}\n`);
  if (!r.ok) throw new Error(`${action} failed: HTTP ${r.status}`);
}

export function registerControl(program: Command): void {
  const cfgOpt = ['--config <file>', 'configuration file (JSON or YAML)'] as const;
  program.command('pause').description('stop new entries (exits and protection continue)').option(...cfgOpt).action((o) => call('pause', o));
  program.command('resume').description('allow new entries again').option(...cfgOpt).action((o) => call('resume', o));
  program
    .command('kill')
    .description('kill switch: enter Emergency (persisted), cancel everything and flatten')
    .option('--yes', 'do not ask for confirmation')
    .option(...cfgOpt)
    .action(async (o: { yes?: boolean; config?: string }) => {
      if (!o.yes && !(await confirm('Kill switch: flatten everything and halt until `keel ack`?'))) throw new Error('not confirmed (use --yes when not on a terminal)');
      await call('kill', o);
    });
  program.command('ack').description('acknowledge an Emergency after a clean reconciliation').option(...cfgOpt).action((o) => call('ack', o));
  program
    .command('reconcile')
    .description('compare with the exchange now; print the differences and the actions')
    .option('--dry-run', 'print the actions without carrying them out')
    .option(...cfgOpt)
    .action((o: { dryRun?: boolean; config?: string }) => call('reconcile', o, o.dryRun ? { dryRun: 'true' } : {}));
}
