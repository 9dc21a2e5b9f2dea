/**
 * Structured logs: pino JSON to stdout, secrets redacted by path wherever they appear.
 * Every order-related line carries its `cloid` (callers pass it as a field, never in the message).
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Field paths that may hold secrets, at any of the depths keel logs them. */
export const REDACT_PATHS = [
  'privateKey',
  '*.privateKey',
  'apiToken',
  '*.apiToken',
  'password',
  '*.password',
  'keystorePassword',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'wallet',
  '*.wallet',
  'signature',
  '*.signature',
  'config.privateKey',
  'config.apiToken',
  'botToken',
  '*.botToken',
  'smtpUrl',
  '*.smtpUrl',
];

export function createLogger(opts: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { name: opts.name ?? 'keel', pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.epochTime,
    },
    opts.destination,
  );
}
