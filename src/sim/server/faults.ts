/**
 * Fault injection for the simulator (POST /_sim/faults). Each class has a rate in [0, 1] and its
 * own seeded random stream; `{}` turns everything off. Decisions are drawn only when a class is on,
 * so a run with no faults consumes no randomness.
 *
 * Classes act at different places: HTTP handling (latency, dropConnection, lostResponse,
 * rateLimit, http5xx, outage), the WebSocket fan-out (wsDisconnect, wsStall, staleFeed,
 * duplicateFeed, reorderFeed, badTick, outage) and the engine (partialFill, reject).
 */
import { z } from 'zod';
import { Prng, deriveSeed } from './prng.ts';

export const FAULT_CLASSES = [
  'latency',
  'dropConnection',
  'lostResponse',
  'rateLimit',
  'http5xx',
  'wsDisconnect',
  'wsStall',
  'staleFeed',
  'duplicateFeed',
  'reorderFeed',
  'badTick',
  'partialFill',
  'reject',
  'outage',
] as const;
export type FaultClass = (typeof FAULT_CLASSES)[number];

const rate = z.number().min(0).max(1);
/** Body of POST /_sim/faults: every class optional; unknown keys are an error, not ignored. */
export const FaultSettingsSchema = z
  .object({
    ...Object.fromEntries(FAULT_CLASSES.map((c) => [c, rate.optional()])),
    /** Added latency in ms when the `latency` fault fires (default 300). */
    latencyMs: z.number().int().min(0).max(120_000).optional(),
    /** How long a stalled WebSocket stays silent, in ms (default 15000). */
    stallMs: z.number().int().min(0).max(600_000).optional(),
  })
  .strict();
export type FaultSettings = { [K in FaultClass]: number } & { latencyMs: number; stallMs: number };

/** Real rejection strings used by the `reject` fault (hyperliquid-api.md §2). */
const REJECTIONS = [
  'Insufficient margin to place order.',
  'Order price cannot be more than 80% away from the reference price',
  'Order could not immediately match against any resting orders.',
];

export class Faults {
  readonly #seed: number;
  #settings: FaultSettings;
  #streams = new Map<FaultClass, Prng>();

  constructor(seed: number) {
    this.#seed = seed;
    this.#settings = Faults.off();
  }

  static off(): FaultSettings {
    return { ...(Object.fromEntries(FAULT_CLASSES.map((c) => [c, 0])) as { [K in FaultClass]: number }), latencyMs: 300, stallMs: 15_000 };
  }

  get settings(): Readonly<FaultSettings> {
    return this.#settings;
  }

  /** Replaces the settings: classes not named are off. Streams restart, so a scenario replays. */
  set(input: z.infer<typeof FaultSettingsSchema>): void {
    const next = Faults.off();
    for (const [k, v] of Object.entries(input)) {
      if (v !== undefined) (next as Record<string, number>)[k] = v;
    }
    this.#settings = next;
    this.#streams.clear();
  }

  rate(c: FaultClass): number {
    return this.#settings[c];
  }

  /** Draws from the class's stream: true with the class's rate. */
  fires(c: FaultClass): boolean {
    const r = this.#settings[c];
    if (r <= 0) return false;
    if (r >= 1) return true;
    return this.#stream(c).chance(r);
  }

  /** A value in [0, 1) from the class's stream (for magnitudes: fill fractions, bad-tick factors). */
  draw(c: FaultClass): number {
    return this.#stream(c).next();
  }

  rejection(): string {
    return REJECTIONS[this.#stream('reject').int(0, REJECTIONS.length)]!;
  }

  #stream(c: FaultClass): Prng {
    let s = this.#streams.get(c);
    if (!s) {
      s = new Prng(deriveSeed(this.#seed, c));
      this.#streams.set(c, s);
    }
    return s;
  }
}
