/**
 * RUNBOOK drill: rotating the agent key (§6) on a testnet-style set-up against the simulator
 * (KEEL_NETWORK=testnet, an encrypted keystore, the master account in KEEL_ACCOUNT). The new
 * keystore is made by the documented command; the master's approval (the web app's step) goes
 * through the SDK under the same agent name, which replaces the old agent; keel restarts on the new
 * keystore, and the protective order the old agent placed stays on the venue.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExchangeClient, HttpTransport } from '@nktkas/hyperliquid';
import { ethers } from 'ethers';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { killAll, removeTempDirs, simState, unprotectedPositions } from '../helpers/processes.ts';
import { jsonOf, runDrill } from './runbook.ts';
import { byHand, openSite, runKeel, venueView } from './site.ts';

afterEach(killAll);
afterAll(removeTempDirs);

describe('RUNBOOK drill: rotating the agent key', () => {
  it('new encrypted keystore by the documented command, approved under the same name, keel restarted on it; the old key is refused, the stop stays', { timeout: 90_000 }, async () => {
    const site = await openSite('agent-key');
    const master = new ethers.Wallet(ethers.id('keel-drill:agent-key:master'));
    const oldAgent = new ethers.Wallet(ethers.id('keel-drill:agent-key:old-agent'));
    const account = master.address.toLowerCase();
    const secrets = path.join(site.dir, 'secrets');
    mkdirSync(secrets, { mode: 0o700 });
    writeFileSync(path.join(secrets, 'keystore-password'), 'correct horse battery staple\n', { mode: 0o600 });
    writeFileSync(path.join(secrets, 'agent-old.json'), await oldAgent.encrypt('correct horse battery staple'), { mode: 0o600 });
    const fund = await fetch(`${site.simUrl}/_sim/accounts`, { method: 'POST', body: JSON.stringify({ address: account, usdc: 100_000 }) });
    expect(fund.ok).toBe(true);
    const masterEx = new ExchangeClient({ transport: new HttpTransport({ apiUrl: site.simUrl, isTestnet: true }), wallet: master });
    await masterEx.approveAgent({ agentAddress: oldAgent.address, agentName: 'keel' });

    const live = (keystore: string) => ({
      KEEL_NETWORK: 'testnet',
      KEEL_ACCOUNT: account,
      KEEL_KEYSTORE: path.join(secrets, keystore),
      KEEL_KEYSTORE_PASSWORD_FILE: path.join(secrets, 'keystore-password'),
    });
    let keel = await runKeel(site, 'keel run (old agent)', live('agent-old.json'));
    expect(keel.child.messages('keel starting')[0]!.agent).toBe(oldAgent.address.toLowerCase());
    // A position keel protects with a stop signed by the old agent.
    await byHand(site, master).open('BTC', true, '0.01');
    const cmd = { cwd: site.dir, env: { KEEL_HTTP_ADDR: keel.addr } };
    for (let i = 0; i < 40 && unprotectedPositions(await simState(site.simUrl), account).length > 0; i++) {
      await runDrill('reconcile', cmd);
      await new Promise((r) => setTimeout(r, 250));
    }
    const stopsBefore = (await venueView(site, account)).openOrders.filter((o) => o.isTrigger);
    expect(stopsBefore).toHaveLength(1);

    // §6 step 2: the new keystore, by the documented command.
    const made = await runDrill('new-agent-key', { cwd: site.dir, env: { KEEL_KEYSTORE_PASSWORD_FILE: 'secrets/keystore-password' } });
    const newAddress = made[1]!.stdout.trim();
    expect(newAddress).toMatch(/^0x[0-9a-fA-F]{40}$/);
    const ks = readFileSync(path.join(secrets, 'agent-new.json'), 'utf8');
    expect(ks).not.toMatch(/"privateKey"|0x[0-9a-f]{64}/i);
    const decrypted = await ethers.Wallet.fromEncryptedJson(ks, 'correct horse battery staple');
    expect(decrypted.address).toBe(newAddress);

    // §6 step 3: the master approves it under the same name: the old agent is replaced.
    await masterEx.approveAgent({ agentAddress: newAddress as `0x${string}`, agentName: 'keel' });
    await expect(byHand(site, oldAgent).rest('ETH', true, '0.1')).rejects.toThrow();

    // §6 step 4–5: restart on the new keystore; the old agent's stop is still there.
    expect(await keel.child.kill('SIGTERM')).toEqual({ code: 0, signal: null });
    keel = await runKeel(site, 'keel run (new agent)', live('agent-new.json'));
    expect(keel.child.messages('keel starting')[0]!.agent).toBe(newAddress.toLowerCase());
    const [, rec] = await runDrill('reconcile', { cwd: site.dir, env: { KEEL_HTTP_ADDR: keel.addr } });
    expect(jsonOf<{ clean: boolean }>(rec!).clean).toBe(true);
    expect((await venueView(site, account)).openOrders.filter((o) => o.isTrigger).map((o) => o.oid)).toEqual(stopsBefore.map((o) => o.oid));
    expect(unprotectedPositions(await simState(site.simUrl), account)).toEqual([]);
  });
});
