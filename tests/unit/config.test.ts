/**
 * Configuration at the edge: file (JSON / YAML) + KEEL_* environment, environment winning;
 * errors name the key and the variable; secrets never echoed; mainnet refuses a raw key;
 * off-loopback binding needs a token.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-config-'));
const KEY = `0x${'ab'.repeat(32)}`;
const ACCOUNT = `0x${'12'.repeat(20)}`;

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('defaults to paper trading on loopback', () => {
    const c = loadConfig({ env: {} });
    expect(c.network).toBe('paper');
    expect(c.httpAddr).toBe('127.0.0.1:9464');
    expect(c.dataDir).toBe('./var');
    expect(c.markets).toEqual(['BTC', 'ETH']);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads YAML and JSON files; the environment wins', () => {
    const y = path.join(dir, 'keel.yaml');
    writeFileSync(y, 'dataDir: /tmp/from-file\nmarkets: [BTC]\npaper:\n  speed: 10\n');
    const c = loadConfig({ file: y, env: { KEEL_DATA_DIR: '/tmp/from-env' } });
    expect(c.dataDir).toBe('/tmp/from-env');
    expect(c.markets).toEqual(['BTC']);
    expect(c.paper.speed).toBe(10);
    const j = path.join(dir, 'keel.json');
    writeFileSync(j, JSON.stringify({ log: { level: 'debug' } }));
    expect(loadConfig({ file: j, env: { KEEL_MARKETS: 'ETH, BTC' } }).markets).toEqual(['ETH', 'BTC']);
    expect(loadConfig({ file: j, env: {} }).log.level).toBe('debug');
  });

  it('names the bad key and the variable it came from', () => {
    const e = errorOf(() => loadConfig({ env: { KEEL_NETWORK: 'moon' } }));
    expect(e.issues[0]).toMatch(/^network \(KEEL_NETWORK\): /);
    expect(errorOf(() => loadConfig({ env: { KEEL_PAPER_SPEED: 'fast' } })).issues[0]).toBe('KEEL_PAPER_SPEED: must be a number');
    const f = path.join(dir, 'bad.yaml');
    writeFileSync(f, 'colour: blue\n');
    expect(errorOf(() => loadConfig({ file: f, env: {} })).message).toMatch(/colour/);
    const broken = path.join(dir, 'broken.json');
    writeFileSync(broken, '{');
    expect(errorOf(() => loadConfig({ file: broken, env: {} })).message).toMatch(/not valid JSON/);
    expect(errorOf(() => loadConfig({ file: path.join(dir, 'absent.yaml'), env: {} })).message).toMatch(/cannot read config file/);
  });

  it('never echoes a secret in an error', () => {
    const e = errorOf(() => loadConfig({ env: { KEEL_PRIVATE_KEY: '0xnot-a-key-but-secret' } }));
    expect(e.message).not.toContain('not-a-key-but-secret');
    expect(e.message).toMatch(/privateKey \(KEEL_PRIVATE_KEY\): invalid value/);
  });

  it('refuses a raw private key on mainnet, and requires an account and a key off paper', () => {
    expect(errorOf(() => loadConfig({ env: { KEEL_NETWORK: 'mainnet', KEEL_PRIVATE_KEY: KEY, KEEL_ACCOUNT: ACCOUNT } })).message).toMatch(/raw private key is refused on mainnet/);
    expect(errorOf(() => loadConfig({ env: { KEEL_NETWORK: 'testnet', KEEL_PRIVATE_KEY: KEY } })).message).toMatch(/account \(KEEL_ACCOUNT\): required on testnet/);
    expect(errorOf(() => loadConfig({ env: { KEEL_NETWORK: 'mainnet', KEEL_ACCOUNT: ACCOUNT } })).message).toMatch(/keystore/);
    const ok = loadConfig({ env: { KEEL_NETWORK: 'mainnet', KEEL_ACCOUNT: ACCOUNT, KEEL_KEYSTORE: '/k.json', KEEL_KEYSTORE_PASSWORD_FILE: '/p' } });
    expect(ok.account).toBe(ACCOUNT);
    expect(loadConfig({ env: { KEEL_NETWORK: 'testnet', KEEL_PRIVATE_KEY: KEY, KEEL_ACCOUNT: ACCOUNT } }).network).toBe('testnet');
  });

  it('refuses to bind off loopback without a token', () => {
    expect(errorOf(() => loadConfig({ env: { KEEL_HTTP_ADDR: '0.0.0.0:9464' } })).message).toMatch(/requires KEEL_API_TOKEN/);
    expect(loadConfig({ env: { KEEL_HTTP_ADDR: '0.0.0.0:9464', KEEL_API_TOKEN: 'a-long-enough-token' } }).httpAddr).toBe('0.0.0.0:9464');
  });
});
