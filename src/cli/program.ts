/**
 * The `keel` command line (commander); src/cli/main.ts is its entry point. Each command lives in its own module under src/cli/ and
 * returns an exit code; failures print one line naming the reason and exit non-zero.
 */
import { Command, CommanderError } from 'commander';
import { registerSim } from './sim-command.ts';
import { registerRun } from './run-command.ts';
import { registerStatus } from './status-command.ts';
import { registerBlackbox } from './blackbox-command.ts';
import { registerFlatten } from './flatten-command.ts';
import { registerControl } from './control-command.ts';
import { registerBacktest } from './backtest-command.ts';
import { registerWatchdog } from './watchdog-command.ts';
import { registerKeystore } from './keystore-command.ts';
import { registerMigrate } from './migrate-command.ts';
import { registerReplay } from './replay-command.ts';

export function buildCli(): Command {
  const program = new Command('keel')
    .description('keel: a resilient trading runtime for Hyperliquid perpetuals')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerRun(program);
  registerSim(program);
  registerStatus(program);
  registerBlackbox(program);
  registerFlatten(program);
  registerControl(program);
  registerBacktest(program);
  registerWatchdog(program);
  registerKeystore(program);
  registerMigrate(program);
  registerReplay(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildCli();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    console.error(`keel: ${(e as Error).message}`);
    process.exit(1);
  }
}

