/** `keel migrate`: creates or upgrades the database (the runtime also does it at boot). */
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config.ts';
import { openStore } from '../store/index.ts';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('create or upgrade the database in KEEL_DATA_DIR')
    .option('--config <file>', 'configuration file (JSON or YAML)')
    .action(async (o: { config?: string }) => {
      const cfg = loadConfig({ env: process.env, ...(o.config ? { file: o.config } : {}) });
      const file = path.join(cfg.dataDir, 'keel.sqlite');
      const store = await openStore({ path: file });
      try {
        const names = (store.raw.prepare('SELECT name FROM kysely_migration ORDER BY name').all() as { name: string }[]).map((r) => r.name);
        process.stdout.write(`${JSON.stringify({ database: file, migrations: names })}\n`);
      } finally {
        store.close();
      }
    });
}
