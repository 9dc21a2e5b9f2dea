/**
 * `keel run` (also `npm start` with no command): the runtime. On the default `paper` network it
 * starts the embedded simulator and trades against it. SIGINT / SIGTERM stop it gracefully: no new
 * orders, in-flight orders resolved, state flushed, exit 0.
 */
import type { Command } from 'commander';
import { loadConfig, ConfigError } from '../config/config.ts';
import { createLogger } from '../ops/logger.ts';
import { startRuntime } from '../../supervisor/runtime.ts';

export function registerRun(program: Command): void {
  program
    .command('run', { isDefault: true })
    .description('run the trading runtime (default network: paper, against the embedded simulator)')
    .option('--config <file>', 'configuration file (JSON or YAML); KEEL_* environment variables win')
    .action(async (o: { config?: string }) => {
      let cfg;
      try {
        cfg = loadConfig({ env: process.env, ...(o.config ? { file: o.config } : {}) });
      } catch (e) {
        if (e instanceof ConfigError) {
          process.stderr.write(`keel: ${e.message}\n`);
          process.exit(2);
        }
        throw e;
      }
      const log = createLogger({ level: cfg.log.level });
      const rt = await startRuntime(cfg, log);
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'stopping: no new orders, resolving in-flight orders, flushing state');
        void rt.stop(signal).then(
          (code) => process.exit(code),
          (e: unknown) => {
            log.fatal({ err: e }, 'stop failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      const code = await rt.done;
      if (!stopping) process.exit(code);
    });
}
