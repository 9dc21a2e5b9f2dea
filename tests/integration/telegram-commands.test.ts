/**
 * Telegram operator commands over a Bot API stand-in on loopback (long polling with offsets,
 * sendMessage recorded), composed exactly as the runtime composes them: `startOperatorAlerts`
 * from a `KeelConfig`, with a `ControlPort`.
 *
 * 1. In process, with a ControlPort that records every call: answers to /status, /positions,
 *    /pnl; /pause and /resume; unknown chats ignored (no answer, no call, audited); /kill and
 *    /flatten only after `/confirm <code>` from the same chat, in time, once; /ack acknowledges
 *    the repeating alerts and calls the control ack; stale messages are refused.
 * 2. End to end on real processes: `keel sim` + `keel run`, a position opened by hand, then the
 *    kill switch from a Telegram message with confirmation. The commands run in this test
 *    process with a ControlPort over keel's authenticated control API (`POST /control/kill` with
 *    the bearer token from `$KEEL_DATA_DIR/api-token`), so the path is Telegram → commands →
 *    keel's control handler → Emergency + flatten on the venue. When the runtime itself wires
 *    `startOperatorAlerts` (supervisor/runtime.ts), the same story runs with keel polling the
 *    stand-in on its own.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { ExchangeClient, HttpTransport, InfoClient } from '@nktkas/hyperliquid';
import { ethers } from 'ethers';
import type BetterSqlite3 from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { dec, roundPrice, toWire } from '../../src/domain/decimal.ts';
import { startOperatorAlerts, type OperatorAlerts } from '../../src/ops/alerts-wiring.ts';
import type { ControlAction } from '../../src/ops/http-server.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { openRetainedDatabase } from '../../src/store/native-lifetime.ts';
import type { ControlPort } from '../../src/ops/telegram-commands.ts';
import { REPO_ROOT, eventually, killAll, removeTempDirs, simState, startKeel, startSim, tempDir } from '../helpers/processes.ts';
import { startTelegramStandIn, type TelegramStandIn } from '../helpers/telegram-standin.ts';

const OPERATOR = '1001';
const DEPUTY = '1002';
const STRANGER = '666';

class RecordingControl implements ControlPort {
  readonly calls: { action: ControlAction; by: string }[] = [];
  readonly audits: { actor: string; action: string; detail: unknown }[] = [];
  mode = 'Normal';
  status() {
    return {
      mode: this.mode,
      gate: this.mode === 'Normal' ? 'active' : 'halted',
      supervisor: { running: { marketFeed: 'up' } },
      venue: { network: 'paper', url: 'http://127.0.0.1:1' },
      account: '0xabc',
      feed: { source: 'ws', stale: false },
      equity: '100012.5',
      conditions: [],
      positions: [{ coin: 'BTC', szi: '0.01', entryPx: '65000', stage: 'protected', stopCloid: '0x01' }],
      openOrders: [{ cloid: '0x01' }],
      recentTrades: [
        { coin: 'ETH', direction: 'long', sz: '0.2', netPnl: '15.25' },
        { coin: 'BTC', direction: 'short', sz: '0.01', netPnl: '-2.75' },
      ],
      lastReconciliation: { clean: true, summary: 'clean' },
    };
  }
  async control(action: ControlAction, by: string) {
    this.calls.push({ action, by });
    if (action === 'kill') this.mode = 'Emergency';
    if (action === 'ack') this.mode = 'Normal';
    return { status: 200, body: { action, mode: this.mode } };
  }
  audit(e: { actor: string; action: string; detail: unknown }) {
    this.audits.push(e);
  }
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
  await killAll();
});
afterAll(removeTempDirs);

async function inProcess(opts: { confirmTtlMs?: number; now?: () => number } = {}): Promise<{ tg: TelegramStandIn; control: RecordingControl; alerts: OperatorAlerts; logText: () => string }> {
  const tg = await startTelegramStandIn({ maxPollS: 1 });
  const control = new RecordingControl();
  let logged = '';
  const log = createLogger({ level: 'debug', destination: new Writable({ write: (c: Buffer, _e, cb) => ((logged += c.toString()), cb()) }) });
  const cfg = loadConfig({ env: { KEEL_TELEGRAM_BOT_TOKEN: tg.token, KEEL_TELEGRAM_CHAT_ID: `${OPERATOR},${DEPUTY}`, KEEL_TELEGRAM_API_ROOT: tg.apiRoot } });
  const alerts = startOperatorAlerts(cfg, {
    log,
    control,
    ...(opts.now ? { now: opts.now } : {}),
    router: { repeatMs: 200 },
    commands: { pollTimeoutS: 1, ...(opts.confirmTtlMs ? { confirmTtlMs: opts.confirmTtlMs } : {}) },
  });
  closers.push(async () => {
    await alerts.close({ drainMs: 0 });
    await tg.close();
  });
  return { tg, control, alerts, logText: () => logged };
}

/** Sends `text` from `chat` and waits for the bot's next answer to that chat. */
async function ask(tg: TelegramStandIn, chat: string, text: string, match: (t: string) => boolean = () => true): Promise<string> {
  const from = tg.sent.length;
  tg.inject(chat, text);
  const m = await tg.waitForSent((s) => s.chatId === chat && match(s.text), { from, what: `answer to ${text}` });
  return m.text;
}

const codeOf = (text: string): string => /\/confirm (\d{4})/.exec(text)?.[1] ?? '';

describe('Telegram commands (stand-in Bot API, recording control port)', () => {
  it('answers /status, /positions and /pnl from the runtime status, /pause and /resume through control', { timeout: 20_000 }, async () => {
    const { tg, control } = await inProcess();
    const status = await ask(tg, OPERATOR, '/status');
    expect(status).toContain('mode: Normal · gate: active');
    expect(status).toContain('equity: 100012.5');
    expect(status).toContain('positions: 1 · open orders: 1');
    expect(await ask(tg, OPERATOR, '/positions')).toBe('BTC 0.01 @ 65000 (protected, stop on)');
    const pnl = await ask(tg, OPERATOR, '/pnl@keel_bot');
    expect(pnl).toContain('last 2 trades net PnL: 12.5');
    expect(await ask(tg, OPERATOR, '/pause')).toMatch(/^pause: done/);
    expect(await ask(tg, DEPUTY, '/resume')).toMatch(/^resume: done/);
    expect(control.calls).toEqual([
      { action: 'pause', by: `telegram:${OPERATOR}` },
      { action: 'resume', by: `telegram:${DEPUTY}` },
    ]);
    expect(control.audits.map((a) => `${a.actor} ${a.action}`)).toEqual([
      `telegram:${OPERATOR} telegram.status`,
      `telegram:${OPERATOR} telegram.positions`,
      `telegram:${OPERATOR} telegram.pnl`,
      `telegram:${OPERATOR} telegram.pause`,
      `telegram:${OPERATOR} control.pause`,
      `telegram:${DEPUTY} telegram.resume`,
      `telegram:${DEPUTY} control.resume`,
    ]);
    expect(await ask(tg, OPERATOR, '/frobnicate')).toMatch(/^unknown command \/frobnicate/);
  });

  it('ignores chats that are not allowed: no answer, no control call, the refusal logged and audited', { timeout: 20_000 }, async () => {
    const { tg, control, logText } = await inProcess();
    tg.inject(STRANGER, '/kill');
    tg.inject(STRANGER, '/pause');
    tg.inject(STRANGER, '/status');
    // Updates are handled in order: once the operator's later /status is answered, the
    // stranger's messages have been seen.
    await ask(tg, OPERATOR, '/status');
    expect(tg.sentTo(STRANGER)).toEqual([]);
    expect(control.calls).toEqual([]);
    expect(control.audits.filter((a) => a.action === 'telegram.refused').map((a) => a.actor)).toEqual([`telegram:${STRANGER}`, `telegram:${STRANGER}`, `telegram:${STRANGER}`]);
    expect(logText()).toContain('message from a chat that is not allowed');
    expect(logText()).not.toContain(tg.token);
  });

  it('/kill executes only after /confirm <code> from the same chat, once', { timeout: 20_000 }, async () => {
    const { tg, control } = await inProcess();
    const prompt = await ask(tg, OPERATOR, '/kill');
    expect(prompt).toMatch(/KILL SWITCH/);
    const code = codeOf(prompt);
    expect(code).toMatch(/^\d{4}$/);
    expect(control.calls).toEqual([]);
    // Another allowed chat cannot confirm the operator's code.
    expect(await ask(tg, DEPUTY, `/confirm ${code}`)).toMatch(/nothing to confirm/);
    // A wrong code cancels.
    const wrong = code === '1000' ? '1001' : '1000';
    expect(await ask(tg, OPERATOR, `/confirm ${wrong}`)).toMatch(/wrong code: \/kill NOT executed/);
    expect(await ask(tg, OPERATOR, `/confirm ${code}`)).toMatch(/nothing to confirm/);
    expect(control.calls).toEqual([]);
    // Asked again, confirmed right: executed once.
    const code2 = codeOf(await ask(tg, OPERATOR, '/kill'));
    const done = await ask(tg, OPERATOR, `/confirm ${code2}`, (t) => t.startsWith('kill:'));
    expect(done).toMatch(/^kill: done/);
    expect(done).toContain('"mode":"Emergency"');
    expect(control.calls).toEqual([{ action: 'kill', by: `telegram:${OPERATOR}` }]);
    expect(await ask(tg, OPERATOR, `/confirm ${code2}`)).toMatch(/nothing to confirm/);
    expect(control.calls).toHaveLength(1);
  });

  it('/flatten asks for confirmation too; another command or an expired code cancels it', { timeout: 20_000 }, async () => {
    let skew = 0;
    const { tg, control } = await inProcess({ now: () => Date.now() + skew, confirmTtlMs: 60_000 });
    const c1 = codeOf(await ask(tg, OPERATOR, '/flatten'));
    await ask(tg, OPERATOR, '/status');
    expect(await ask(tg, OPERATOR, `/confirm ${c1}`)).toMatch(/nothing to confirm/);
    const c2 = codeOf(await ask(tg, OPERATOR, '/flatten'));
    skew = 61_000;
    expect(await ask(tg, OPERATOR, `/confirm ${c2}`)).toMatch(/confirmation expired: \/flatten NOT executed/);
    skew = 0;
    const c3 = codeOf(await ask(tg, DEPUTY, '/flatten'));
    expect(await ask(tg, DEPUTY, `/confirm ${c3}`, (t) => t.startsWith('flatten:'))).toMatch(/^flatten: done/);
    expect(control.calls).toEqual([{ action: 'flatten', by: `telegram:${DEPUTY}` }]);
  });

  it('/ack acknowledges the repeating alerts and calls the control ack', { timeout: 20_000 }, async () => {
    const { tg, control, alerts } = await inProcess();
    alerts.router.alert({ severity: 'critical', key: 'mode.Emergency', title: 'Emergency' });
    await tg.waitForSent((m) => m.chatId === OPERATOR && m.text.includes('(repeat 1)'), { what: 'a repeat' });
    const answer = await ask(tg, DEPUTY, '/ack', (t) => t.startsWith('acknowledged'));
    expect(answer).toBe('acknowledged 1 alert: mode.Emergency');
    await tg.waitForSent((m) => m.chatId === DEPUTY && m.text.startsWith('ack: done'), { what: 'ack result' });
    expect(alerts.router.unacknowledged()).toEqual([]);
    expect(control.calls).toEqual([{ action: 'ack', by: `telegram:${DEPUTY}` }]);
  });

  it('keeps polling through Bot API errors (a revoked token: 401), backing off, the token never logged', { timeout: 20_000 }, async () => {
    const tg = await startTelegramStandIn({ maxPollS: 1 });
    const revoked = '999999:revoked-token-abcdefghijklmnopqrst';
    let logged = '';
    const log = createLogger({ destination: new Writable({ write: (c: Buffer, _e, cb) => ((logged += c.toString()), cb()) }) });
    const cfg = loadConfig({ env: { KEEL_TELEGRAM_BOT_TOKEN: revoked, KEEL_TELEGRAM_CHAT_ID: OPERATOR, KEEL_TELEGRAM_API_ROOT: tg.apiRoot } });
    const control = new RecordingControl();
    const alerts = startOperatorAlerts(cfg, { log, control, commands: { pollTimeoutS: 1 } });
    closers.push(async () => {
      await alerts.close({ drainMs: 0 });
      await tg.close();
    });
    await eventually(() => ((alerts.commands?.stats().pollErrors ?? 0) >= 2 ? true : undefined), { timeoutMs: 10_000, what: 'two failed polls' });
    expect(alerts.commands?.stats().updates).toBe(0);
    expect(logged).toContain('telegram getUpdates: HTTP 401: Unauthorized');
    expect(logged).not.toContain(revoked);
    expect(logged).not.toContain('revoked-token');
  });

  it('refuses a command that waited too long in the queue (sent while keel was down)', { timeout: 20_000 }, async () => {
    const { tg, control } = await inProcess();
    const from = tg.sent.length;
    tg.inject(OPERATOR, '/pause', { ageS: 600 });
    const m = await tg.waitForSent((s) => s.chatId === OPERATOR, { from });
    expect(m.text).toMatch(/\/pause ignored: sent 10 min ago/);
    expect(control.calls).toEqual([]);
  });
});

// ── end to end on real processes ──────────────────────────────────────────────────────────

const walletFor = (label: string) => new ethers.Wallet(ethers.id(`keel-test:telegram:${label}`));

async function paperAccount(url: string, label: string) {
  const dataDir = path.join(tempDir(`telegram-${label}`), 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const master = walletFor(`${label}:master`);
  const agent = walletFor(`${label}:agent`);
  writeFileSync(path.join(dataDir, 'paper-keys.json'), JSON.stringify({ master: master.privateKey, agent: agent.privateKey }), { mode: 0o600 });
  const funded = await fetch(`${url}/_sim/accounts`, { method: 'POST', body: JSON.stringify({ address: master.address.toLowerCase(), usdc: 100_000 }) });
  expect(funded.ok).toBe(true);
  const transport = new HttpTransport({ apiUrl: url, isTestnet: true, timeout: 5_000 });
  const ex = new ExchangeClient({ transport, wallet: master });
  await ex.approveAgent({ agentAddress: agent.address, agentName: 'keel' });
  const info = new InfoClient({ transport });
  /** A position and a resting order by hand (no cloid), signed by the master key. */
  const byHand = async () => {
    const [meta, mids] = await Promise.all([info.meta(), info.allMids()]);
    const order = (coin: string, b: boolean, factor: number, s: string, tif: 'Ioc' | 'Gtc') => {
      const a = meta.universe.findIndex((u) => u.name === coin);
      return { a, b, p: toWire(roundPrice(dec(mids[coin]!).mul(factor), meta.universe[a]!.szDecimals)), s, r: false, t: { limit: { tif } } };
    };
    await ex.order({ orders: [order('BTC', true, 1.01, '0.01', 'Ioc')], grouping: 'na' });
    await ex.order({ orders: [order('ETH', true, 0.9, '0.1', 'Gtc')], grouping: 'na' });
  };
  return { dataDir, user: master.address.toLowerCase(), byHand };
}

async function venueOf(url: string, user: string) {
  const s = await simState(url);
  return {
    positions: (s.accounts.find((a) => a.address === user)?.positions ?? []).filter((p) => Number(p.szi) !== 0).map((p) => p.coin),
    openOrders: s.openOrders.filter((o) => o.user === user).length,
  };
}

/** Does the runtime start the operator alerts itself (the lead's wiring in supervisor/runtime.ts)? */
const runtimeWired = readFileSync(path.join(REPO_ROOT, 'supervisor/runtime.ts'), 'utf8').includes('startOperatorAlerts');

describe('kill switch end to end from a Telegram message, on a real keel run', () => {
  it('Telegram → /kill → /confirm <code> → keel control API → Emergency and flat on the venue', { timeout: 90_000 }, async () => {
    const tg = await startTelegramStandIn({ maxPollS: 1 });
    closers.push(() => tg.close());
    const { url } = await startSim({ speed: 1, seed: 31 });
    const acct = await paperAccount(url, 'kill');
    await acct.byHand();
    expect(await venueOf(url, acct.user)).toEqual({ positions: ['BTC'], openOrders: 1 });
    const keel = await startKeel({ dataDir: acct.dataDir, env: { KEEL_API_URL: url }, name: 'keel run (telegram kill)' });
    await keel.child.waitForMsg('reconciled with the venue', 30_000);
    const token = readFileSync(path.join(acct.dataDir, 'api-token'), 'utf8').trim();

    // The operator surfaces, with keel's control API as the control port.
    const httpControl: ControlPort = {
      status: () => ({}),
      async control(action, by) {
        const r = await fetch(`${keel.opsUrl}/control/${action}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'x-keel-actor': by }, signal: AbortSignal.timeout(60_000) });
        return { status: r.status, body: await r.json() };
      },
    };
    const cfg = loadConfig({ env: { KEEL_TELEGRAM_BOT_TOKEN: tg.token, KEEL_TELEGRAM_CHAT_ID: OPERATOR, KEEL_TELEGRAM_API_ROOT: tg.apiRoot } });
    const alerts = startOperatorAlerts(cfg, { log: createLogger({ level: 'silent' }), control: httpControl, commands: { pollTimeoutS: 1 } });
    closers.push(() => alerts.close({ drainMs: 0 }));

    tg.inject(STRANGER, '/kill');
    const prompt = await ask(tg, OPERATOR, '/kill');
    expect((await keel.status())['mode']).not.toBe('Emergency');
    const done = await ask(tg, OPERATOR, `/confirm ${codeOf(prompt)}`, (t) => t.startsWith('kill:'));
    expect(done).toMatch(/^kill: done/);
    expect(tg.sentTo(STRANGER)).toEqual([]);
    expect((await keel.status())['mode']).toBe('Emergency');
    expect(await venueOf(url, acct.user)).toEqual({ positions: [], openOrders: 0 });
    // keel's audit log names the Telegram chat that asked.
    const db: BetterSqlite3.Database = openRetainedDatabase(path.join(acct.dataDir, 'keel.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("SELECT actor FROM audit_log WHERE action = 'control.kill'").all() as { actor: string }[];
      expect(rows.map((r) => r.actor)).toEqual([`telegram:${OPERATOR}@127.0.0.1`]);
    } finally {
      db.close();
    }
  });

  it.runIf(runtimeWired)('the same from keel itself: keel run polls the stand-in and its own kill switch fires', { timeout: 90_000 }, async () => {
    const tg = await startTelegramStandIn({ maxPollS: 1 });
    closers.push(() => tg.close());
    const { url } = await startSim({ speed: 1, seed: 32 });
    const acct = await paperAccount(url, 'kill-wired');
    await acct.byHand();
    const keel = await startKeel({
      dataDir: acct.dataDir,
      env: { KEEL_API_URL: url, KEEL_TELEGRAM_BOT_TOKEN: tg.token, KEEL_TELEGRAM_CHAT_ID: OPERATOR, KEEL_TELEGRAM_API_ROOT: tg.apiRoot },
      name: 'keel run (telegram wired)',
    });
    await keel.child.waitForMsg('reconciled with the venue', 30_000);
    tg.inject(STRANGER, '/kill');
    const prompt = await ask(tg, OPERATOR, '/kill', (t) => t.includes('/confirm'));
    expect((await keel.status())['mode']).not.toBe('Emergency');
    await ask(tg, OPERATOR, `/confirm ${codeOf(prompt)}`, (t) => t.startsWith('kill:'));
    expect(tg.sentTo(STRANGER)).toEqual([]);
    await eventually(async () => ((await keel.status())['mode'] === 'Emergency' ? true : undefined), { timeoutMs: 10_000, what: 'Emergency' });
    expect(await venueOf(url, acct.user)).toEqual({ positions: [], openOrders: 0 });
    // The kill is in keel's log and its CRITICAL alert reached Telegram.
    await tg.waitForSent((m) => m.chatId === OPERATOR && /CRITICAL/.test(m.text) && /Emergency/.test(m.text), { what: 'Emergency alert', timeoutMs: 15_000 });
    expect(keel.child.stdout).not.toContain(tg.token);
    const db: BetterSqlite3.Database = openRetainedDatabase(path.join(acct.dataDir, 'keel.sqlite'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("SELECT actor, action FROM audit_log WHERE actor LIKE 'telegram:%' ORDER BY id").all() as { actor: string; action: string }[];
      expect(rows.filter((r) => r.action === 'control.kill')).toEqual([{ actor: `telegram:${OPERATOR}`, action: 'control.kill' }]);
      expect(rows).toContainEqual({ actor: `telegram:${STRANGER}`, action: 'telegram.refused' });
    } finally {
      db.close();
    }
  });
});
