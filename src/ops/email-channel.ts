/**
 * The email alert channel: nodemailer's SMTP transport from `KEEL_SMTP_URL`
 * (`smtp://user:pass@host:587`, `smtps://…:465`; nodemailer's query options such as
 * `?requireTLS=true` apply), one plain-text message to every recipient.
 *
 * Invariants: connection, greeting and socket timeouts are bounded, so a dead server fails a
 * send instead of hanging it; nodemailer's own logger is off (it would print the SMTP dialogue);
 * the SMTP credentials never appear in an error this module throws (scrubbed).
 */
import { createTransport } from 'nodemailer';
import { scrub, type AlertChannel, type ChannelSendContext, type OutgoingMessage } from './alerts.ts';

export interface EmailChannelOptions {
  readonly smtpUrl: string;
  readonly from: string;
  readonly to: readonly string[];
  /** Bound on connect, greeting and each socket inactivity. Default 10 s. */
  readonly timeoutMs?: number;
}

/** The secrets inside an SMTP URL (user info), for log scrubbing. */
export function smtpSecrets(smtpUrl: string): string[] {
  try {
    const u = new URL(smtpUrl);
    return [u.password, decodeURIComponent(u.password), `${u.username}:${u.password}`].filter((s) => s.length >= 4);
  } catch {
    return [smtpUrl];
  }
}

/** The URL with its credentials replaced, fit for a log line. */
export function redactSmtpUrl(smtpUrl: string): string {
  try {
    const u = new URL(smtpUrl);
    if (u.password) u.password = 'redacted';
    return `${u.protocol}//${u.username ? `${u.username}:***@` : ''}${u.host}`;
  } catch {
    return '[unparseable smtp url]';
  }
}

export class EmailChannel implements AlertChannel {
  readonly name = 'email' as const;
  readonly #transport: ReturnType<typeof createTransport>;
  readonly #from: string;
  readonly #to: readonly string[];
  readonly #secrets: readonly string[];

  constructor(opts: EmailChannelOptions) {
    if (opts.to.length === 0) throw new Error('EmailChannel needs at least one recipient');
    const t = opts.timeoutMs ?? 10_000;
    this.#transport = createTransport({ url: opts.smtpUrl, connectionTimeout: t, greetingTimeout: t, socketTimeout: t, logger: false, debug: false });
    this.#from = opts.from;
    this.#to = [...opts.to];
    this.#secrets = smtpSecrets(opts.smtpUrl);
  }

  async send(msg: OutgoingMessage, ctx: ChannelSendContext): Promise<void> {
    if (ctx.signal.aborted) throw new Error('email: aborted before sending');
    try {
      await this.#transport.sendMail({
        from: this.#from,
        to: [...this.#to],
        subject: msg.subject,
        text: msg.text,
        headers: { 'X-Keel-Severity': msg.severity, 'X-Keel-Kind': msg.kind },
      });
    } catch (e) {
      const err = e as { message?: string; code?: string; responseCode?: number };
      throw new Error(scrub(`email: ${err.code ? `${err.code} ` : ''}${err.responseCode ? `${err.responseCode} ` : ''}${err.message ?? String(e)}`, this.#secrets));
    }
  }

  async close(): Promise<void> {
    this.#transport.close();
  }
}
