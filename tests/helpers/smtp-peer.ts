/**
 * A real SMTP server on loopback (the `smtp-server` package) that receives keel's alert emails:
 * envelope (MAIL FROM / RCPT TO), headers and the decoded text body of each message. Tests turn
 * refusal on (`refuse(true)`: 451 at MAIL FROM, as a server that is down for maintenance does)
 * and optionally require AUTH with a known user and password.
 *
 * Invariants: STARTTLS is not offered (the peer is plain loopback, so the client sends in clear
 * and needs no certificate); decoding covers what nodemailer emits for text messages (RFC 2047
 * encoded-word subjects, 7bit / quoted-printable / base64 bodies); `close()` ends every session.
 */
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import type { AddressInfo } from 'node:net';

export interface ReceivedMail {
  readonly mailFrom: string;
  readonly rcptTo: readonly string[];
  readonly headers: ReadonlyMap<string, string>;
  readonly subject: string;
  readonly text: string;
  readonly raw: string;
  /** The AUTH user of the session, if any. */
  readonly user: string | undefined;
}

export interface SmtpPeer {
  /** `smtp://127.0.0.1:<port>` (with `user:pass@` when auth was asked for). */
  readonly url: string;
  readonly port: number;
  readonly mails: ReceivedMail[];
  /** Every AUTH attempt's user and whether it passed. */
  readonly auths: { user: string; ok: boolean }[];
  refuse(on: boolean): void;
  /** How many MAIL FROM were refused. */
  readonly refusals: number;
  waitForMail(pred: (m: ReceivedMail) => boolean, opts?: { timeoutMs?: number; from?: number; what?: string }): Promise<ReceivedMail>;
  close(): Promise<void>;
}

function decodeWords(s: string): string {
  return s.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=(\s+(?==\?))?/g, (_all, _charset: string, enc: string, data: string) => {
    if (enc.toUpperCase() === 'B') return Buffer.from(data, 'base64').toString('utf8');
    const bytes = data.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  });
}

function decodeQuotedPrintable(s: string): string {
  const bytes = s.replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

export function parseMail(raw: string): { headers: Map<string, string>; subject: string; text: string } {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split >= 0 ? raw.slice(0, split) : raw;
  const body = split >= 0 ? raw.slice(split).replace(/^\r?\n\r?\n/, '') : '';
  const headers = new Map<string, string>();
  // Unfold continuation lines, then split name: value.
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers.set(line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim());
  }
  const cte = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const text = cte === 'quoted-printable' ? decodeQuotedPrintable(body) : cte === 'base64' ? Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8') : body;
  return { headers, subject: decodeWords(headers.get('subject') ?? ''), text: text.replace(/\r\n/g, '\n').replace(/\n$/, '') };
}

export async function startSmtpPeer(opts: { auth?: { user: string; pass: string } } = {}): Promise<SmtpPeer> {
  const mails: ReceivedMail[] = [];
  const auths: { user: string; ok: boolean }[] = [];
  const waiters = new Set<{ pred: (m: ReceivedMail) => boolean; from: number; resolve: (m: ReceivedMail) => void }>();
  let refusing = false;
  let refusals = 0;
  const options: SMTPServerOptions = {
    logger: false,
    disabledCommands: ['STARTTLS'],
    authOptional: !opts.auth,
    allowInsecureAuth: true,
    size: 1_000_000,
    onAuth(auth, _session, cb) {
      const ok = !!opts.auth && auth.username === opts.auth.user && auth.password === opts.auth.pass;
      auths.push({ user: auth.username ?? '', ok });
      if (ok) cb(null, { user: auth.username });
      else cb(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
    },
    onMailFrom(_address, _session, cb) {
      if (refusing) {
        refusals++;
        return cb(Object.assign(new Error('Service temporarily unavailable'), { responseCode: 451 }));
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const parsed = parseMail(raw);
        const mail: ReceivedMail = {
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          headers: parsed.headers,
          subject: parsed.subject,
          text: parsed.text,
          raw,
          user: typeof session.user === 'string' ? session.user : undefined,
        };
        mails.push(mail);
        const idx = mails.length - 1;
        for (const w of waiters) {
          if (idx >= w.from && w.pred(mail)) {
            waiters.delete(w);
            w.resolve(mail);
          }
        }
        cb();
      });
    },
  };
  const server = new SMTPServer(options);
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  const cred = opts.auth ? `${encodeURIComponent(opts.auth.user)}:${encodeURIComponent(opts.auth.pass)}@` : '';
  return {
    url: `smtp://${cred}127.0.0.1:${port}`,
    port,
    mails,
    auths,
    refuse(on) {
      refusing = on;
    },
    get refusals() {
      return refusals;
    },
    waitForMail(pred, o = {}) {
      const from = o.from ?? 0;
      const seen = mails.slice(from).find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise<ReceivedMail>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`smtp peer: ${o.what ?? 'mail'} not received within ${o.timeoutMs ?? 10_000} ms; received:\n${mails.map((m) => `  ${m.rcptTo.join(',')} | ${m.subject}`).join('\n')}`));
        }, o.timeoutMs ?? 10_000);
        const w = {
          pred,
          from,
          resolve: (m: ReceivedMail) => {
            clearTimeout(timer);
            resolve(m);
          },
        };
        waiters.add(w);
      });
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
