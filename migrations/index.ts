/**
 * The explicit, ordered list of migrations: no filesystem globbing, so what runs is what is
 * imported here. Names sort in the order they must run (Kysely's Migrator sorts by name).
 */
import type { Migration, MigrationProvider } from 'kysely';
import * as m0001 from './0001_initial.ts';

export const MIGRATIONS: Readonly<Record<string, Migration>> = Object.freeze({
  '0001_initial': m0001,
});

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...MIGRATIONS }),
};
