/**
 * Regression for a process abort: on Node 24.21 a garbage-collected better-sqlite3 Database or
 * Statement SIGABRTs the process (node::ObjectWrap's destructor). The store must never let one
 * become garbage, however many stores are opened and closed (see src/store/native-lifetime.ts).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const subject = path.resolve(import.meta.dirname, '../fixtures/store-gc.ts');

describe('store native object lifetime', () => {
  it('opening, using and closing many stores survives forced garbage collection', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', subject], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/Assertion failed/);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('survived 12');
  });
});
