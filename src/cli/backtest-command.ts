/**
 * `keel backtest`: the live strategy, risk and order machines over historical candles on a
 * simulated clock, against the simulator's matching engine (src/backtest/). Prints the report as
 * a table, optionally writes it as JSON (`--json`) and as a self-contained HTML page (`--html`),
 * and prints the speed (candles per second through the whole stack) on its own line.
 *
 * Markets: `--markets`, else the configured markets the data holds, else every market in the data.
 * Invariant: the JSON report depends only on the data, the configuration and the seed (the speed
 * line is printed, never written into the report).
 */
import { writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig } from '../config/config.ts';
import { createLogger } from '../ops/logger.ts';
import { BacktestError, reportToHtml, reportToJson, reportToTable, runBacktest } from '../backtest/index.ts';
import { CandleDataError, bundledDataDir, tryLoadCandleSeries } from '../sim/market/index.ts';
import { intArg, positiveArg } from './args.ts';

export interface BacktestCliOptions {
  readonly data?: string;
  readonly markets?: string;
  readonly seed?: number;
  readonly config?: string;
  readonly json?: string;
  readonly html?: string;
  readonly usdc?: number;
  readonly points?: '2' | '4';
  readonly trades?: number;
  readonly logLevel?: string;
}



/** Runs the command; returns the exit code. `out` / `err` receive whole lines. */
export async function backtestCommand(o: BacktestCliOptions, io: { out: (s: string) => void; err: (s: string) => void; env?: Readonly<Record<string, string | undefined>> }): Promise<number> {
  let cfg;
  try {
    cfg = loadConfig({ env: io.env ?? process.env, ...(o.config ? { file: o.config } : {}) });
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(`keel backtest: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const data = o.data ?? bundledDataDir();
  const loaded = tryLoadCandleSeries(data);
  if (!loaded.ok) {
    io.err(`keel backtest: ${new CandleDataError(loaded.issues).message.split('\n').slice(0, 6).join('\n')}\n`);
    return 2;
  }
  const available = loaded.series.map((s) => s.coin);
  let markets: string[];
  if (o.markets !== undefined) {
    markets = o.markets.split(',').map((s) => s.trim()).filter(Boolean);
    const missing = markets.filter((m) => !available.includes(m));
    if (markets.length === 0 || missing.length > 0) {
      io.err(`keel backtest: --markets: ${missing.length ? `not in the data: ${missing.join(', ')}` : 'no market given'} (the data holds ${available.join(', ')})\n`);
      return 2;
    }
  } else {
    const configured = cfg.markets.filter((m) => available.includes(m));
    markets = configured.length > 0 ? configured : available;
  }
  // The engine's universe is the data's, in its order, restricted to the markets traded.
  const series = loaded.series.filter((s) => markets.includes(s.coin));
  const seed = o.seed ?? cfg.paper.seed;
  const log = o.logLevel ? createLogger({ level: o.logLevel, destination: process.stderr as never }) : undefined;
  let result;
  try {
    result = await runBacktest({
      series,
      dataLabel: o.data ?? 'bundled',
      seed,
      strategy: { name: cfg.strategy.name, params: cfg.strategy.params },
      risk: cfg.risk,
      orders: cfg.orders,
      usdc: o.usdc ?? cfg.paper.usdc,
      pointsPerBar: o.points === '2' ? 2 : 4,
      ...(log ? { log } : {}),
    });
  } catch (e) {
    if (e instanceof BacktestError) {
      io.err(`keel backtest: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  const { report, stats } = result;
  io.out(reportToTable(report, { maxTrades: o.trades ?? 20 }));
  try {
    if (o.json) writeFileSync(o.json, reportToJson(report));
    if (o.html) writeFileSync(o.html, reportToHtml(report));
  } catch (e) {
    io.err(`keel backtest: cannot write the report: ${(e as Error).message}\n`);
    return 1;
  }
  if (o.json) io.out(`report: ${o.json} (JSON)\n`);
  if (o.html) io.out(`report: ${o.html} (HTML)\n`);
  io.out(
    `speed: ${stats.candlesPerSecond} candles/s (${stats.candles} candles in ${stats.loopMs.toFixed(0)} ms through strategy, risk, order manager and matching engine; ` +
      `${stats.orders} entries, ${stats.settleRounds} order-actor timer rounds = ${stats.timerWaitMs.toFixed(0)} ms waiting; blocks applied ${stats.blocksApplied}, skipped ${stats.blocksSkipped})\n`,
  );
  return 0;
}

export function registerBacktest(program: Command): void {
  program
    .command('backtest')
    .description('run the live strategy, risk and order machines over historical candles on a simulated clock; print the report')
    .option('--data <dir|file>', 'candle data: a directory (markets.json or *.csv), a manifest, or one CSV file (default: the bundled real data; format in data/README.md)')
    .option('--markets <list>', 'comma-separated markets to trade (default: the configured ones the data holds, else all)')
    .option('--seed <n>', 'seed of the intra-bar path order and the funding model (default: paper.seed)', intArg('--seed', 0, 2 ** 32 - 1))
    .option('--config <file>', 'configuration file (JSON or YAML): strategy, risk, orders; KEEL_* environment variables win')
    .option('--json <file>', 'write the report as JSON')
    .option('--html <file>', 'write the report as a self-contained HTML page (equity curve, drawdown)')
    .option('--usdc <n>', 'starting collateral in USD (default: paper.usdc)', positiveArg('--usdc'))
    .addOption(new Option('--points <n>', 'price points per bar the engine sees: 4 = open, high/low, close; 2 = open, close').choices(['2', '4']).default('4'))
    .option('--trades <n>', 'trades listed in the terminal table', intArg('--trades', 0, 1_000_000), 20)
    .option('--log-level <level>', 'write the machines\u2019 logs to stderr at this level (default: silent)')
    .action(async (o: BacktestCliOptions) => {
      const code = await backtestCommand(o, { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) });
      if (code !== 0) process.exit(code);
    });
}

