/**
 * The black box never lets a better-sqlite3 object become garbage: recorders and readers created
 * and dropped many times over, with forced GCs, leave the process alive (native-lifetime.ts).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const subject = path.resolve(import.meta.dirname, '../fixtures/blackbox-gc.ts');

describe('black box native object lifetime', () => {
  it('recording, reading, exporting and verifying repeatedly survives forced garbage collection', () => {
    const r = spawnSync(process.execPath, ['--expose-gc', subject], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/Assertion failed/);
    expect(r.signal).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('survived 12');
  });
});
