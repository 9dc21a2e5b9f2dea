/**
 * The simulator's exchange clock. `wall` follows the machine's clock; `manual` is frozen and moves
 * only when stepped (POST /_sim/clock {"step": ms}), which makes a whole run deterministic.
 * Switching to manual freezes at the current wall time, so client nonces (Date.now()) stay valid.
 */
import type { SimClock } from '../types.ts';

export class ExchangeClock implements SimClock {
  #mode: 'wall' | 'manual';
  #frozen: number;
  #offset = 0;
  readonly #wall: () => number;

  constructor(mode: 'wall' | 'manual' = 'wall', wall: () => number = Date.now, start?: number) {
    this.#mode = mode;
    this.#wall = wall;
    this.#frozen = start ?? wall();
  }

  get mode(): 'wall' | 'manual' {
    return this.#mode;
  }

  now(): number {
    return this.#mode === 'wall' ? this.#wall() + this.#offset : this.#frozen;
  }

  /** Freezes the clock (if it was running) and moves it forward by `ms`. */
  step(ms: number): number {
    if (this.#mode === 'wall') {
      this.#frozen = this.#wall() + this.#offset;
      this.#mode = 'manual';
    }
    this.#frozen += ms;
    return this.#frozen;
  }

  /** Back to wall time; never moves time backwards for the exchange's records. */
  resume(): void {
    if (this.#mode === 'manual') this.#offset = Math.max(this.#offset, this.#frozen - this.#wall());
    this.#mode = 'wall';
  }
}
