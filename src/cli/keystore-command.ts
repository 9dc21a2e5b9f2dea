/**
 * `keel keystore create|import` — the agent wallet's encrypted keystore (ethers JSON keystore,
 * scrypt). The password comes from `--password-file` (or KEEL_KEYSTORE_PASSWORD_FILE); the file
 * is written owner-only and never overwritten. `import` reads the raw key from stdin, never from
 * an argument (arguments end up in shell history and `ps`). Only the address is ever printed.
 */
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { ethers } from 'ethers';

function password(file: string | undefined): string {
  const f = file ?? process.env['KEEL_KEYSTORE_PASSWORD_FILE'];
  if (!f) throw new Error('a password file is required: --password-file FILE or KEEL_KEYSTORE_PASSWORD_FILE');
  const p = readFileSync(f, 'utf8').trimEnd();
  if (p.length < 12) throw new Error(`the password in ${f} is shorter than 12 characters`);
  return p;
}

async function writeKeystore(out: string, wallet: ethers.Wallet | ethers.HDNodeWallet, pw: string): Promise<void> {
  if (existsSync(out)) throw new Error(`${out} exists: refusing to overwrite a keystore`);
  const json = await wallet.encrypt(pw);
  mkdirSync(path.dirname(path.resolve(out)), { recursive: true, mode: 0o700 });
  writeFileSync(out, json, { mode: 0o600, flag: 'wx' });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').trim();
}

export function registerKeystore(program: Command): void {
  const ks = program.command('keystore').description('create or import the encrypted agent-wallet keystore');
  ks.command('create')
    .description('generate a new agent key and write it encrypted (approve its address from the master account)')
    .requiredOption('--out <file>', 'keystore file to write (owner-only)')
    .option('--password-file <file>', 'file holding the keystore password')
    .action(async (o: { out: string; passwordFile?: string }) => {
      const w = ethers.Wallet.createRandom();
      await writeKeystore(o.out, w, password(o.passwordFile));
      process.stdout.write(`${JSON.stringify({ keystore: o.out, agentAddress: w.address.toLowerCase() })}\n`);
    });
  ks.command('import')
    .description('encrypt an existing agent key read from stdin (0x + 64 hex)')
    .requiredOption('--out <file>', 'keystore file to write (owner-only)')
    .option('--password-file <file>', 'file holding the keystore password')
    .action(async (o: { out: string; passwordFile?: string }) => {
      const raw = await readStdin();
      if (!/^0x[0-9a-fA-F]{64}$/.test(raw)) throw new Error('stdin must hold the agent key as 0x + 64 hex digits');
      const w = new ethers.Wallet(raw);
      await writeKeystore(o.out, w, password(o.passwordFile));
      process.stdout.write(`${JSON.stringify({ keystore: o.out, agentAddress: w.address.toLowerCase() })}\n`);
    });
}
