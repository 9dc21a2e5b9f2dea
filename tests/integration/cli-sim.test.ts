/**
 * `keel sim` as an operator runs it: a real process that prints its listening line, serves the
 * venue API, answers --help, refuses bad arguments with one line, and stops cleanly on SIGTERM.
 */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const cli = path.join(root, 'src/cli/main.ts');

describe('keel sim', () => {
  it('serves on the announced port and exits 0 on SIGTERM', async () => {
    const proc = spawn(process.execPath, [cli, 'sim', '--port', '0', '--seed', '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await new Promise<string>((resolve, reject) => {
      let buf = '';
      proc.stdout.on('data', (d: Buffer) => {
        buf += d.toString();
        const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(buf);
        if (m) resolve(m[1]!);
      });
      proc.once('exit', (c) => reject(new Error(`exited early with ${c}`)));
    });
    const r = await fetch(`${url}/info`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"meta"}' });
    expect(r.status).toBe(200);
    const meta = (await r.json()) as { universe: { name: string }[] };
    expect(meta.universe.length).toBeGreaterThanOrEqual(2);
    const code = await new Promise<number | null>((resolve) => {
      proc.once('exit', (c) => resolve(c));
      proc.kill('SIGTERM');
    });
    expect(code).toBe(0);
  });

  it('prints help and exits 0; refuses a bad argument with a one-line reason and non-zero', () => {
    const help = spawnSync(process.execPath, [cli, 'sim', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('--seed');
    const bad = spawnSync(process.execPath, [cli, 'sim', '--port', 'abc'], { encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--port must be an integer/);
  });
});
