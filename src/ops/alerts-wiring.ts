/**
 * Builds the operator surfaces from the configuration: the alert router with its Telegram and
 * email channels, and the Telegram command poller wired to the runtime's control handler.
 * Also the mapping from mode transitions to alerts, so the runtime raises them in one line.
 *
 * Invariants: a channel is on only when fully configured (Telegram: bot token and at least one
 * chat id; email: SMTP URL and at least one recipient); the bot token and SMTP credentials are
 * handed to the router and the poller as secrets to scrub, and are never logged here; with no
 * channel at all the router still accepts alerts (logged, counted as undeliverable).
 */
import type { KeelConfig } from '../config/config.ts';
import type { Logger } from './logger.ts';
import type { Mode } from '../domain/types.ts';
import { AlertRouter, type AlertChannel, type AlertInput, type AlertRouterOptions, type ChannelName, type Severity } from './alerts.ts';
import { EmailChannel, redactSmtpUrl, smtpSecrets } from './email-channel.ts';
import { TelegramBotApi } from './telegram-bot-api.ts';
import { TelegramChannel } from './telegram-channel.ts';
import { TelegramCommands, type ControlPort } from './telegram-commands.ts';

export interface OperatorAlerts {
  readonly router: AlertRouter;
  /** Present when Telegram is configured and a control port was given. */
  readonly commands: TelegramCommands | undefined;
  /** Stops the poller, drains the outboxes for up to `drainMs` (default 3 s), closes channels. */
  close(opts?: { drainMs?: number }): Promise<void>;
}

export interface OperatorAlertsDeps {
  readonly log: Logger;
  /** The runtime's status and control handler; without it, no Telegram commands. */
  readonly control?: ControlPort;
  readonly now?: () => number;
  /** For `KeelMetrics.alertSent`. */
  readonly onSent?: (channel: ChannelName, severity: Severity) => void;
  /** Router tuning (tests shorten the repeat and rate windows). */
  readonly router?: Partial<Omit<AlertRouterOptions, 'channels' | 'log' | 'now' | 'onSent' | 'secrets'>>;
  /** Telegram command tuning. */
  readonly commands?: { readonly pollTimeoutS?: number; readonly confirmTtlMs?: number; readonly newCode?: () => string };
}

/**
 * @example
 * const alerts = startOperatorAlerts(cfg, { log, control: { status, control: (action, by) => control({ action, by, params: {} }), audit }, onSent: (c, s) => metrics.alertSent(c, s) });
 * modeKeeper.onChange((e) => { const a = alertForModeChange(e); if (a) alerts.router.alert(a); });
 */
export function startOperatorAlerts(cfg: KeelConfig, deps: OperatorAlertsDeps): OperatorAlerts {
  const log = deps.log.child({ component: 'alerts' });
  const channels: AlertChannel[] = [];
  const secrets: string[] = [];
  let api: TelegramBotApi | undefined;
  const tg = cfg.telegram;
  if (tg.botToken && tg.chatIds.length > 0) {
    secrets.push(tg.botToken);
    api = new TelegramBotApi({ token: tg.botToken, apiRoot: tg.apiRoot });
    channels.push(new TelegramChannel(api, tg.chatIds));
  } else if (tg.botToken || tg.chatIds.length > 0) {
    log.warn({ botToken: tg.botToken ? 'set' : 'missing', chatIds: tg.chatIds.length }, 'telegram: needs both KEEL_TELEGRAM_BOT_TOKEN and KEEL_TELEGRAM_CHAT_ID; off');
  }
  const em = cfg.email;
  if (em.smtpUrl && em.to.length > 0) {
    secrets.push(...smtpSecrets(em.smtpUrl));
    channels.push(new EmailChannel({ smtpUrl: em.smtpUrl, from: em.from, to: em.to }));
  } else if (em.smtpUrl || em.to.length > 0) {
    log.warn({ smtp: em.smtpUrl ? 'set' : 'missing', recipients: em.to.length }, 'email alerts: need both KEEL_SMTP_URL and KEEL_ALERT_EMAIL_TO; off');
  }
  const router = new AlertRouter({
    label: `keel ${cfg.network}`,
    ...deps.router,
    channels,
    log,
    secrets,
    ...(deps.now ? { now: deps.now } : {}),
    ...(deps.onSent ? { onSent: deps.onSent } : {}),
  });
  let commands: TelegramCommands | undefined;
  if (api && deps.control) {
    commands = new TelegramCommands({
      api,
      allowedChatIds: tg.chatIds,
      control: deps.control,
      alerts: router,
      log: log.child({ component: 'telegram-commands' }),
      secrets,
      ...(deps.now ? { now: deps.now } : {}),
      ...deps.commands,
    });
    commands.start();
  }
  log.info(
    {
      channels: router.channels,
      telegram: api ? { apiRoot: api.apiRoot, chats: tg.chatIds.length, commands: commands !== undefined } : 'off',
      email: em.smtpUrl && em.to.length ? { smtp: redactSmtpUrl(em.smtpUrl), to: em.to.length } : 'off',
    },
    'operator alerts ready',
  );
  return {
    router,
    commands,
    async close(opts = {}) {
      await commands?.stop();
      await router.close({ drainMs: opts.drainMs ?? 3_000 });
    },
  };
}

const MODE_SEVERITY: Record<Mode, Severity> = { Normal: 'info', Degraded: 'warning', Critical: 'critical', Emergency: 'critical' };

/**
 * The alert for a mode transition (architecture.md: Degraded → WARNING, Critical and Emergency →
 * CRITICAL, back to Normal → INFO in the digest). One key per target mode, so a flapping mode
 * de-duplicates.
 */
export function alertForModeChange(e: { readonly from: Mode; readonly to: Mode; readonly reason: string; readonly at: number; readonly conditions?: readonly { readonly key: string }[] }): AlertInput {
  const conditions = (e.conditions ?? []).map((c) => c.key).join(', ');
  return {
    severity: MODE_SEVERITY[e.to] ?? 'warning',
    key: `mode.${e.to}`,
    title: `mode ${e.from} → ${e.to}: ${e.reason}`,
    detail: conditions ? `active conditions: ${conditions}` : '',
    at: e.at,
  };
}
