/**
 * The operating mode at run time: hosts the pure mode machine (machines/mode.machine.ts), turns
 * what the runtime observes into its health facts, and carries out each transition: persisted
 * (store.modes), logged, handed to listeners (risk gate, order manager, black box, alerts).
 *
 * Invariants: every fact is stamped with the injected clock; a transition is persisted before its
 * listeners act on it; the restored mode comes from the database (the truth), never a snapshot.
 */
import { createActor, type Actor } from 'xstate';
import { modeMachine, modeOf, activeConditions, ModeEmitted, ModeEvents, parseModeConfig, type ModeAckRefused, type ModeChanged, type ModeEvent } from '../machines/mode.machine.ts';
import type { Mode } from '../src/domain/types.ts';
import type { Store } from '../src/store/index.ts';
import type { Logger } from '../src/ops/logger.ts';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type HealthFact = DistributiveOmit<ModeEvent, 'at'>;

export class ModeKeeper {
  readonly #actor: Actor<typeof modeMachine>;
  readonly #now: () => number;
  readonly #changed = new Set<(e: ModeChanged) => void>();
  #lastAckRefusal: ModeAckRefused | undefined;

  constructor(opts: { store: Store; log: Logger; now: () => number; config?: unknown }) {
    const { store, log, now } = opts;
    this.#now = now;
    const parsed = parseModeConfig(opts.config ?? {});
    if (!parsed.ok) throw new Error(`mode config: ${parsed.error}`);
    const restored = store.modes.current();
    this.#actor = createActor(modeMachine, { input: { config: parsed.config, now: now(), ...(restored ? { restored } : {}) } });
    this.#actor.on(ModeEmitted.CHANGED, (e: ModeChanged) => {
      store.modes.append({ time: e.at, from: e.from, to: e.to, reason: e.reason });
      const level = e.to === 'Normal' ? 'info' : e.to === 'Degraded' ? 'warn' : 'error';
      log[level]({ from: e.from, to: e.to, reason: e.reason, conditions: e.conditions.map((c) => c.key) }, `mode ${e.from} → ${e.to}`);
      for (const l of this.#changed) l(e);
    });
    this.#actor.on(ModeEmitted.ACK_REFUSED, (e: ModeAckRefused) => {
      this.#lastAckRefusal = e;
      log.warn({ by: e.by, mode: e.mode, reason: e.reason }, 'acknowledgement refused');
    });
    this.#actor.start();
    if (restored && restored !== 'Normal') log.warn({ mode: restored }, 'mode restored from the database');
  }

  get mode(): Mode {
    return modeOf(this.#actor.getSnapshot());
  }

  conditions(): readonly { key: string }[] {
    return activeConditions(this.#actor.getSnapshot());
  }

  onChange(listener: (e: ModeChanged) => void): () => void {
    this.#changed.add(listener);
    return () => this.#changed.delete(listener);
  }

  fact(f: HealthFact): void {
    this.#actor.send({ ...f, at: this.#now() } as ModeEvent);
  }

  kill(by: string): void {
    this.fact({ type: ModeEvents.KILL, by });
  }

  /** The operator's acknowledgement; refused unless the reconciliation was clean. */
  ack(by: string, reconciliationClean: boolean): { ok: true; mode: Mode } | { ok: false; reason: string; mode: Mode } {
    this.#lastAckRefusal = undefined;
    this.fact({ type: ModeEvents.ACK, by, reconciliationClean });
    const refused = this.#lastAckRefusal as ModeAckRefused | undefined;
    return refused ? { ok: false, reason: refused.reason, mode: this.mode } : { ok: true, mode: this.mode };
  }

  stop(): void {
    this.#actor.stop();
  }
}

export { ModeEvents };
