/**
 * `keel sim`: the Hyperliquid-compatible simulator alone. Prints
 * `listening on http://127.0.0.1:<port>` once it serves; stops cleanly on SIGINT / SIGTERM.
 */
import { Command, Option } from 'commander';
import { startSimulator } from '../sim/server/simulator.ts';
import { intArg, positiveArg } from './args.ts';



export function registerSim(program: Command): void {
  program
    .command('sim')
    .description('run the Hyperliquid-compatible exchange simulator (replays real recorded candles)')
    .option('--host <addr>', 'listen address (the control endpoints answer loopback only)', '127.0.0.1')
    .option('--port <n>', 'listen port (0 = any free port)', intArg('--port', 0, 65535), 3001)
    .option('--seed <n>', 'seed of the synthetic book, trades and faults', intArg('--seed', 0, 2 ** 32 - 1), 1)
    .option('--speed <x>', 'replay speed: recorded ms per exchange ms', positiveArg('--speed'), 1)
    .option('--block-ms <ms>', 'exchange ms per market block', intArg('--block-ms', 10, 60_000), 100)
    .option('--data <dir>', 'directory of candle files with a markets.json manifest (default: bundled real data)')
    .addOption(new Option('--chain <chain>', 'signature chain the simulator accepts').choices(['Testnet', 'Mainnet']).default('Testnet'))
    .addOption(new Option('--clock <mode>', 'wall clock, or manual (moves only via POST /_sim/clock {"step":ms})').choices(['wall', 'manual']).default('wall'))
    .option('--book-interval-ms <ms>', 'minimum ms between l2Book pushes per subscription (venue: 500)', intArg('--book-interval-ms', 0, 60_000), 500)
    .option('--ip-weight <n>', 'REST request weight per minute per IP', intArg('--ip-weight', 1, 10_000_000), 1200)
    .action(async (o: { host: string; port: number; seed: number; speed: number; blockMs: number; data?: string; chain: 'Testnet' | 'Mainnet'; clock: 'wall' | 'manual'; ipWeight: number; bookIntervalMs: number }) => {
      const sim = await startSimulator({
        host: o.host,
        port: o.port,
        seed: o.seed,
        speed: o.speed,
        blockMs: o.blockMs,
        ...(o.data ? { dataDir: o.data } : {}),
        chain: o.chain,
        clock: o.clock,
        ipWeightPerMinute: o.ipWeight,
        bookIntervalMs: o.bookIntervalMs,
        log: (line) => process.stderr.write(`${JSON.stringify({ level: 'warn', time: Date.now(), msg: line })}\n`),
      });
      const coins = sim.exchange.meta().universe.map((u: { name: string }) => u.name).join(', ');
      process.stdout.write(`keel sim: listening on ${sim.url} (ws ${sim.wsUrl}; seed ${o.seed}; speed ${o.speed}; chain ${o.chain}; markets ${coins})\n`);
      const stop = async (signal: string) => {
        process.stdout.write(`keel sim: ${signal}, stopping\n`);
        await sim.close();
        process.exit(0);
      };
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
    });
}
