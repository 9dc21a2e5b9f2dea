/**
 * `keel keystore create|import`: encrypted (ethers JSON) agent keystore, owner-only, never
 * overwritten, the raw key only from stdin, only the address printed; `keel migrate`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ethers } from 'ethers';
import { describe, expect, it } from 'vitest';

const cli = path.resolve(import.meta.dirname, '../../src/cli/main.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'keel-keystore-'));
const pwFile = path.join(dir, 'password');
writeFileSync(pwFile, 'correct horse battery staple\n', { mode: 0o600 });

function keel(args: string[], input?: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', input, env: { ...process.env, ...env } });
}

describe('keel keystore', () => {
  it('creates an encrypted keystore, owner-only, printing only the address', async () => {
    const out = path.join(dir, 'agent.json');
    const r = keel(['keystore', 'create', '--out', out, '--password-file', pwFile]);
    expect(r.status).toBe(0);
    const printed = JSON.parse(r.stdout) as { agentAddress: string };
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const w = await ethers.Wallet.fromEncryptedJson(readFileSync(out, 'utf8'), 'correct horse battery staple');
    expect(w.address.toLowerCase()).toBe(printed.agentAddress);
    expect(r.stdout).not.toContain(w.privateKey.slice(2));
    // Never overwritten.
    const again = keel(['keystore', 'create', '--out', out, '--password-file', pwFile]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/refusing to overwrite/);
  });

  it('imports a raw key from stdin only, and refuses a short password', async () => {
    const key = ethers.id('keel-test:import');
    const out = path.join(dir, 'imported.json');
    const r = keel(['keystore', 'import', '--out', out], `${key}\n`, { KEEL_KEYSTORE_PASSWORD_FILE: pwFile });
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(key.slice(2));
    const w = await ethers.Wallet.fromEncryptedJson(readFileSync(out, 'utf8'), 'correct horse battery staple');
    expect(w.privateKey).toBe(key);
    const short = path.join(dir, 'short');
    writeFileSync(short, 'short');
    const bad = keel(['keystore', 'import', '--out', path.join(dir, 'x.json'), '--password-file', short], `${key}\n`);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/shorter than 12/);
    const garbage = keel(['keystore', 'import', '--out', path.join(dir, 'y.json'), '--password-file', pwFile], 'not a key');
    expect(garbage.status).not.toBe(0);
  });
});

describe('keel migrate', () => {
  it('creates the database with every migration, owner-only', () => {
    const data = path.join(dir, 'data');
    const r = keel(['migrate'], undefined, { KEEL_DATA_DIR: data });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout) as { migrations: string[] };
    expect(out.migrations[0]).toBe('0001_initial');
    expect(statSync(path.join(data, 'keel.sqlite')).mode & 0o777).toBe(0o600);
  });
});
