/**
 * The explicit, ordered list of migrations: no filesystem globbing, so what runs is what is
 * imported here. Names sort in the order they must run (Kysely's Migrator sorts by name).
 */
import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.ts';
import * as m0002 from './0002_trade_exit_fill.ts';
import * as m0003 from './0003_blackbox.ts';
import * as m0004w from './0004_watchdog_lease.ts';

export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_initial': m0001,
  '0002_trade_exit_fill': m0002,
  '0003_blackbox': m0003,
  '0004_watchdog_lease': m0004w,
});

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...MIGRATIONS }),
};
