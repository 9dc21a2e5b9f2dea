/**
 * The Telegram alert channel: one alert message, sent with `sendMessage` to every configured
 * chat id.
 *
 * Invariants: a retry never sends the same message twice to a chat that already has it (the
 * chats reached are kept in the router's per-message `delivered` set); the send fails if any chat
 * was not reached, so the router retries only for those.
 */
import type { AlertChannel, ChannelSendContext, OutgoingMessage } from './alerts.ts';
import type { TelegramBotApi } from './telegram-bot-api.ts';

export class TelegramChannel implements AlertChannel {
  readonly name = 'telegram' as const;
  readonly #api: TelegramBotApi;
  readonly #chatIds: readonly string[];

  constructor(api: TelegramBotApi, chatIds: readonly string[]) {
    if (chatIds.length === 0) throw new Error('TelegramChannel needs at least one chat id');
    this.#api = api;
    this.#chatIds = [...chatIds];
  }

  async send(msg: OutgoingMessage, ctx: ChannelSendContext): Promise<void> {
    const text = `${msg.subject}\n\n${msg.text}`;
    let firstError: unknown;
    for (const chat of this.#chatIds) {
      if (ctx.delivered.has(chat)) continue;
      try {
        await this.#api.sendMessage(chat, text, ctx.signal);
        ctx.delivered.add(chat);
      } catch (e) {
        firstError ??= e;
      }
    }
    if (firstError !== undefined) throw firstError;
  }
}
