/**
 * Alert delivery through real protocol peers on loopback: a real SMTP server (smtp-server,
 * with AUTH) receives the emails sent by nodemailer, and a Telegram Bot API stand-in receives
 * `sendMessage`. Built the way the runtime builds it: `startOperatorAlerts` over a `KeelConfig`
 * from KEEL_* variables, logs captured from a real pino logger.
 *
 * Checked: recipients, sender, subjects and severity routing (CRITICAL → both, WARNING →
 * Telegram, INFO → the email digest); repetition of an unacknowledged CRITICAL and its end at
 * ack; de-duplication and rate limiting on the wire; a failing channel (Telegram 500, SMTP 451)
 * neither blocks `alert()` nor the other channel, and its messages go out once it recovers; the
 * bot token and SMTP password never appear in a log line.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/ops/logger.ts';
import { startOperatorAlerts, type OperatorAlerts, type OperatorAlertsDeps } from '../../src/ops/alerts-wiring.ts';
import type { ChannelName, Severity } from '../../src/ops/alerts.ts';
import { startSmtpPeer, type SmtpPeer } from '../helpers/smtp-peer.ts';
import { startTelegramStandIn, type TelegramStandIn } from '../helpers/telegram-standin.ts';

const SMTP_USER = 'keel-alerts';
const SMTP_PASS = 'smtp-Pa55word-never-logged';

interface Site {
  readonly tg: TelegramStandIn;
  readonly smtp: SmtpPeer;
  readonly alerts: OperatorAlerts;
  readonly logText: () => string;
  readonly sentHook: [ChannelName, Severity][];
}

const open: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c();
});

async function site(opts: { router?: OperatorAlertsDeps['router']; env?: Record<string, string> } = {}): Promise<Site> {
  const tg = await startTelegramStandIn();
  const smtp = await startSmtpPeer({ auth: { user: SMTP_USER, pass: SMTP_PASS } });
  const url = new URL(smtp.url);
  const cfg = loadConfig({
    env: {
      KEEL_TELEGRAM_BOT_TOKEN: tg.token,
      KEEL_TELEGRAM_CHAT_ID: '1001,-2002',
      KEEL_TELEGRAM_API_ROOT: tg.apiRoot,
      KEEL_SMTP_URL: `smtp://${url.username}:${url.password}@127.0.0.1:${smtp.port}`,
      KEEL_ALERT_EMAIL_FROM: 'keel@desk.test',
      KEEL_ALERT_EMAIL_TO: 'oncall@desk.test, cto@desk.test',
      ...opts.env,
    },
  });
  let logged = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logged += chunk.toString('utf8');
      cb();
    },
  });
  const log = createLogger({ level: 'debug', destination: sink });
  const sentHook: [ChannelName, Severity][] = [];
  const alerts = startOperatorAlerts(cfg, {
    log,
    onSent: (c, s) => void sentHook.push([c, s]),
    router: { repeatMs: 300, dedupWindowMs: 60_000, rate: { burst: 20, refillMs: 50 }, retry: { baseMs: 100, maxMs: 400, attempts: 50 }, sendTimeoutMs: 3_000, ...opts.router },
  });
  open.push(async () => {
    await alerts.close({ drainMs: 0 });
    await tg.close();
    await smtp.close();
  });
  return { tg, smtp, alerts, logText: () => logged, sentHook };
}

describe('alerts over real SMTP and a Telegram Bot API stand-in', () => {
  it('routes by severity: CRITICAL to every chat and every recipient, WARNING to Telegram only, INFO in the email digest', { timeout: 20_000 }, async () => {
    const { tg, smtp, alerts, logText, sentHook } = await site({ router: { repeatMs: 600_000 } });
    alerts.router.alert({ severity: 'warning', key: 'feed.rest', title: 'feed fell back to REST polling', detail: 'ws closed 1006' });
    await tg.waitForSent((m) => m.chatId === '1001' && m.text.includes('feed fell back'), { what: 'warning to chat 1001' });
    await tg.waitForSent((m) => m.chatId === '-2002' && m.text.includes('feed fell back'), { what: 'warning to chat -2002' });

    alerts.router.alert({ severity: 'info', key: 'boot', title: 'keel started', detail: 'paper, 2 markets' });
    alerts.router.alert({ severity: 'info', key: 'recon', title: 'reconciliation clean' });
    alerts.router.alert({ severity: 'info', key: 'recon', title: 'reconciliation clean' });
    alerts.router.alert({ severity: 'critical', key: 'mode.Emergency', title: 'mode Normal → Emergency: kill switch', detail: 'by telegram:1001' });
    const crit = await smtp.waitForMail((m) => m.subject.includes('Emergency'), { what: 'critical email' });
    expect(crit.mailFrom).toBe('keel@desk.test');
    expect(crit.rcptTo).toEqual(['oncall@desk.test', 'cto@desk.test']);
    expect(crit.user).toBe(SMTP_USER);
    expect(crit.subject).toBe('[keel paper CRITICAL] mode Normal → Emergency: kill switch');
    expect(crit.headers.get('x-keel-severity')).toBe('critical');
    expect(crit.text).toContain('by telegram:1001');
    expect(crit.text).toContain('Repeated until acknowledged');
    for (const chat of ['1001', '-2002']) await tg.waitForSent((m) => m.chatId === chat && m.text.startsWith('[keel paper CRITICAL] mode Normal → Emergency'), { what: `critical to ${chat}` });

    // The warning never went by email; the info events wait for the digest.
    expect(smtp.mails.map((m) => m.subject)).toEqual(['[keel paper CRITICAL] mode Normal → Emergency: kill switch']);
    expect(alerts.router.flushDigest()).toBe(true);
    const digest = await smtp.waitForMail((m) => m.subject.includes('digest'), { what: 'digest email' });
    expect(digest.subject).toBe('[keel paper INFO] daily digest: 3 events');
    expect(digest.rcptTo).toEqual(['oncall@desk.test', 'cto@desk.test']);
    expect(digest.text).toMatch(/keel started: paper, 2 markets \[boot\]/);
    expect(digest.text).toMatch(/reconciliation clean \(x2, last [^)]+\) \[recon\]/);
    expect(tg.sent.some((m) => m.text.includes('digest'))).toBe(false);

    // The peer has the mail a moment before the client reads its 250: the hook follows.
    await expectEventually(() => sentHook.some(([c, s]) => c === 'email' && s === 'info'), 'onSent(email, info)');
    expect(sentHook).toEqual(expect.arrayContaining([['telegram', 'warning'], ['telegram', 'critical'], ['email', 'critical'], ['email', 'info']]));
    expect(logText()).toContain('operator alerts ready');
    expect(logText()).not.toContain(tg.token);
    expect(logText()).not.toContain(SMTP_PASS);
  });

  it('repeats an unacknowledged CRITICAL by email and Telegram until it is acknowledged', { timeout: 20_000 }, async () => {
    const { tg, smtp, alerts } = await site();
    alerts.router.alert({ severity: 'critical', key: 'breaker.order', title: 'order endpoint breaker open' });
    await smtp.waitForMail((m) => m.subject === '[keel paper CRITICAL] (repeat 2) order endpoint breaker open', { what: 'second repeat email' });
    await tg.waitForSent((m) => m.chatId === '1001' && m.text.includes('(repeat 2)'), { what: 'second repeat on Telegram' });
    expect(alerts.router.unacknowledged()).toEqual(['breaker.order']);
    expect(alerts.router.ack('breaker.order')).toBe(true);
    const repeatsAtAck = smtp.mails.filter((m) => m.subject.includes('(repeat')).length;
    // Well past several repeat periods, a fresh alert is the next mail: the repetition stopped
    // (one repeat may already have been on the wire when the ack came).
    await new Promise((r) => setTimeout(r, 1_200));
    alerts.router.alert({ severity: 'critical', key: 'marker', title: 'marker' });
    await smtp.waitForMail((m) => m.subject.endsWith('] marker'), { what: 'marker email' });
    expect(smtp.mails.filter((m) => m.subject.includes('(repeat') && m.subject.includes('breaker')).length).toBeLessThanOrEqual(repeatsAtAck + 1);
    alerts.router.ackAll();
  });

  it('de-duplicates on the wire and collapses a burst beyond the rate limit into one message', { timeout: 20_000 }, async () => {
    const { tg, alerts } = await site({ router: { rate: { burst: 2, refillMs: 60_000 } } });
    for (let i = 0; i < 5; i++) alerts.router.alert({ severity: 'warning', key: 'feed.stale', title: 'feed stale' });
    for (let i = 0; i < 6; i++) alerts.router.alert({ severity: 'warning', key: `breaker.${i}`, title: `breaker ${i} open` });
    const collapsed = await tg.waitForSent((m) => m.chatId === '1001' && m.text.includes('collapsed by rate limiting'), { what: 'collapsed message' });
    expect(collapsed.text).toContain('6 alerts');
    for (let i = 0; i < 6; i++) expect(collapsed.text).toContain(`breaker ${i} open`);
    const to1001 = tg.sentTo('1001');
    expect(to1001).toHaveLength(2);
    expect(to1001[0]!.text).toMatch(/^\[keel paper WARNING\] feed stale/);
    expect(alerts.router.stats()).toMatchObject({ deduplicated: 4 });
  });

  it('a failing Telegram (HTTP 500) does not block alert() nor email; Telegram gets it once it recovers', { timeout: 20_000 }, async () => {
    const { tg, smtp, alerts, logText } = await site({ router: { repeatMs: 600_000 } });
    tg.failSends(500);
    const before = tg.calls.length;
    alerts.router.alert({ severity: 'critical', key: 'db.write', title: 'database write errors' });
    // alert() only enqueued: nothing has reached either peer yet.
    expect(tg.calls.length).toBe(before);
    expect(smtp.mails).toHaveLength(0);
    await smtp.waitForMail((m) => m.subject.includes('database write errors'), { what: 'email while Telegram fails' });
    await expectEventually(() => (alerts.router.stats().channels.telegram?.retried ?? 0) >= 2, 'telegram retried');
    expect(tg.sent).toHaveLength(0);
    tg.failSends(0);
    await tg.waitForSent((m) => m.chatId === '1001' && m.text.includes('database write errors'), { what: 'telegram after recovery' });
    await tg.waitForSent((m) => m.chatId === '-2002' && m.text.includes('database write errors'), { what: 'second chat after recovery' });
    // Each chat got it once, even though the message was retried.
    expect(tg.sent.filter((m) => m.text.includes('database write errors')).map((m) => m.chatId).sort()).toEqual(['-2002', '1001']);
    expect(logText()).toContain('alert send failed; will retry');
    expect(logText()).not.toContain(tg.token);
  });

  it('an SMTP server refusing mail (451) does not block Telegram; the email goes out once it accepts again', { timeout: 20_000 }, async () => {
    const { tg, smtp, alerts, logText } = await site({ router: { repeatMs: 600_000 } });
    smtp.refuse(true);
    alerts.router.alert({ severity: 'critical', key: 'dd', title: 'drawdown 10 %' });
    await tg.waitForSent((m) => m.chatId === '1001' && m.text.includes('drawdown 10 %'), { what: 'telegram while SMTP refuses' });
    await expectEventually(() => smtp.refusals >= 2, 'SMTP refused twice');
    expect(alerts.router.stats().channels.email?.failing).toBeGreaterThanOrEqual(1);
    smtp.refuse(false);
    const mail = await smtp.waitForMail((m) => m.subject.includes('drawdown 10 %'), { what: 'email after SMTP recovers' });
    expect(mail.rcptTo).toEqual(['oncall@desk.test', 'cto@desk.test']);
    expect(logText()).toMatch(/451/);
    expect(logText()).not.toContain(SMTP_PASS);
  });

  it('a wrong SMTP password fails the email channel with the password nowhere in the logs', { timeout: 20_000 }, async () => {
    const wrong = 'Wr0ng-Secret-Pass';
    const tg = await startTelegramStandIn();
    const smtp = await startSmtpPeer({ auth: { user: SMTP_USER, pass: SMTP_PASS } });
    let logged = '';
    const log = createLogger({ destination: new Writable({ write: (c: Buffer, _e, cb) => ((logged += c.toString()), cb()) }) });
    const cfg = loadConfig({ env: { KEEL_TELEGRAM_BOT_TOKEN: tg.token, KEEL_TELEGRAM_CHAT_ID: '1001', KEEL_TELEGRAM_API_ROOT: tg.apiRoot, KEEL_SMTP_URL: `smtp://${SMTP_USER}:${wrong}@127.0.0.1:${smtp.port}`, KEEL_ALERT_EMAIL_TO: 'oncall@desk.test' } });
    const alerts = startOperatorAlerts(cfg, { log, router: { retry: { baseMs: 50, maxMs: 100, attempts: 3 } } });
    open.push(async () => {
      await alerts.close({ drainMs: 0 });
      await tg.close();
      await smtp.close();
    });
    alerts.router.alert({ severity: 'critical', key: 'x', title: 'auth test' });
    await tg.waitForSent((m) => m.text.includes('auth test'));
    await expectEventually(() => alerts.router.stats().channels.email?.failed === 1, 'email given up');
    expect(smtp.auths.length).toBeGreaterThanOrEqual(1);
    expect(smtp.auths.every((a) => a.user === SMTP_USER && !a.ok)).toBe(true);
    expect(smtp.mails).toHaveLength(0);
    expect(logged).toMatch(/alert send failed/);
    expect(logged).not.toContain(wrong);
    expect(logged).not.toContain(encodeURIComponent(wrong));
    alerts.router.ackAll();
  });
});

async function expectEventually(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
