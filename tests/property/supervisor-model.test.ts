/**
 * Model-based coverage of machines/supervisor.machine.ts (issue 4, acceptance 5).
 *
 * A seeded fast-check run on a SimulatedClock: boot succeeds or fails, children fail (reject) or
 * wrongly exit (resolve) at random, the clock advances across backoffs and the failure window,
 * ESCALATE and STOP arrive at any point, drain succeeds or fails. Inspection records every
 * transition taken and every state entered; every transition and state the machine defines must be
 * reached. After every command the supervisor's promises are checked against its header:
 * - in `running`, exactly the children whose region is `up` are alive, one instance each, under
 *   their systemId; outside `running` no child is alive (leaving the region aborted them);
 * - a child is restarted only after its backoff, which doubles with its failures in the window
 *   and is capped;
 * - it escalates exactly when a child's failures inside the window reach `maxRestarts`;
 * - drain runs once, only after STOP, with the STOP's reason.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { CHILDREN, supervisorMachine, SupervisorEvents, type ChildId, type SupervisorConfig } from '../../machines/supervisor.machine.ts';
import { CoverageRecorder } from '../fuzz/machine-coverage.ts';

const CONFIG: SupervisorConfig = { baseBackoffMs: 100, maxBackoffMs: 400, maxRestarts: 3, restartWindowMs: 3_000 };

type Cmd =
  | { readonly k: 'boot'; readonly ok: boolean }
  /** `focus`: the run's focus child, so that repeated failures of one child (escalation) are common. */
  | { readonly k: 'child'; readonly id: ChildId | 'focus'; readonly how: 'fail' | 'exit' }
  | { readonly k: 'advance'; readonly ms: number }
  /** The focus child fails again each time it comes back, until the supervisor escalates. */
  | { readonly k: 'crashLoop'; readonly how: 'fail' | 'exit' }
  | { readonly k: 'stop' }
  | { readonly k: 'escalate' }
  | { readonly k: 'drain'; readonly ok: boolean };

const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 2, arbitrary: fc.record({ k: fc.constant('boot' as const), ok: fc.boolean() }) },
  { weight: 20, arbitrary: fc.record({ k: fc.constant('child' as const), id: fc.constantFrom<ChildId | 'focus'>('focus', 'focus', 'focus', ...CHILDREN), how: fc.constantFrom('fail' as const, 'exit' as const) }) },
  { weight: 15, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(50, 100, 200, 400, 1_000, 3_000) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('crashLoop' as const), how: fc.constantFrom('fail' as const, 'exit' as const) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'stop' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'escalate' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('drain' as const), ok: fc.boolean() }) },
);

interface Handle<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

function controlled<T>(): { promise: Promise<T>; handle: Handle<T> } {
  let handle!: Handle<T>;
  const promise = new Promise<T>((resolve, reject) => (handle = { resolve, reject }));
  promise.catch(() => undefined);
  return { promise, handle };
}

const flush = async () => {
  for (let i = 0; i < 4; i++) await Promise.resolve();
};

/** The window model: failure times per child; a failure counts while `now - t < window`. */
class WindowModel {
  readonly #failures = new Map<ChildId, number[]>(CHILDREN.map((c) => [c, []]));
  inWindow(id: ChildId, now: number): number {
    return this.#failures.get(id)!.filter((t) => now - t < CONFIG.restartWindowMs).length;
  }
  record(id: ChildId, now: number): void {
    this.#failures.get(id)!.push(now);
  }
}

let escalations = 0;

async function run(cov: CoverageRecorder, focus: ChildId, cmds: readonly Cmd[]): Promise<void> {
  let boot: Handle<{ bootedAt: number }> | undefined;
  let drain: Handle<void> | undefined;
  const drains: string[] = [];
  const alive = new Map<ChildId, { n: number; handle: Handle<void>; startedAt: number }>();
  const starts: Record<ChildId, number[]> = { marketFeed: [], strategy: [], risk: [], orderManager: [] };
  const clock = new SimulatedClock();
  clock.set(0);
  const child = fromPromise<void, { childId: ChildId }>(({ input, signal }) => {
    const id = input.childId;
    expect(alive.has(id), `${id} started twice`).toBe(false);
    const c = controlled<void>();
    alive.set(id, { n: starts[id].length, handle: c.handle, startedAt: clock.now() });
    starts[id].push(clock.now());
    const gone = () => {
      if (alive.get(id)?.handle === c.handle) alive.delete(id);
    };
    signal.addEventListener('abort', gone);
    c.promise.then(gone, gone);
    return c.promise;
  });
  const machine = supervisorMachine.provide({
    actors: {
      boot: fromPromise(() => {
        const c = controlled<{ bootedAt: number }>();
        boot = c.handle;
        return c.promise;
      }),
      drain: fromPromise(({ input }: { input: { reason: string } }) => {
        drains.push(input.reason);
        const c = controlled<void>();
        drain = c.handle;
        return c.promise;
      }),
      marketFeed: child,
      strategy: child,
      risk: child,
      orderManager: child,
    },
  });
  const actor = createActor(machine, { clock, input: { config: CONFIG }, inspect: cov.inspect });
  actor.start();
  await flush();

  const win = new WindowModel();
  let lastStop: string | undefined;
  let stopCount = 0;
  /** When each child in backoff may come back (the model's backoff). */
  const dueAt = new Map<ChildId, number>();

  const check = (where: string) => {
    const snap = actor.getSnapshot();
    const running = snap.matches('running');
    for (const id of CHILDREN) {
      const up = running && snap.matches({ running: { [id]: 'up' } } as never);
      expect(alive.has(id), `${where}: ${id} alive=${alive.has(id)} but up=${up}`).toBe(up);
      if (up) expect(actor.system.get(id), `${where}: ${id} has no systemId`).toBeDefined();
      const failures = snap.context.children[id].failures;
      expect(failures, `${where}: ${id} failures`).toBeLessThanOrEqual(CONFIG.maxRestarts);
    }
    if (snap.matches('stopping') || snap.matches('stopped')) {
      expect(drains.length, `${where}: drains`).toBe(1);
      expect(drains[0]).toBe(lastStop);
    } else expect(drains.length, `${where}: drain before stop`).toBe(0);
  };

  const failChild = async (where: string, id: ChildId, how: 'fail' | 'exit') => {
    const a = alive.get(id)!;
    const escalates = win.inWindow(id, clock.now()) + 1 >= CONFIG.maxRestarts;
    win.record(id, clock.now());
    const failuresNow = win.inWindow(id, clock.now());
    how === 'fail' ? a.handle.reject(new Error(`${id} broke`)) : a.handle.resolve();
    await flush();
    const snap = actor.getSnapshot();
    if (escalates) {
      expect(snap.matches('escalated'), `${where}: should escalate`).toBe(true);
      escalations++;
      dueAt.clear();
    } else {
      expect(snap.matches({ running: { [id]: 'backoff' } } as never), `${where}: should back off`).toBe(true);
      dueAt.set(id, clock.now() + Math.min(CONFIG.maxBackoffMs, CONFIG.baseBackoffMs * 2 ** Math.max(0, failuresNow - 1)));
    }
  };

  for (const [i, c] of cmds.entries()) {
    const where = `#${i} ${JSON.stringify(c)}`;
    const before = actor.getSnapshot();
    if (before.status !== 'active') break;
    switch (c.k) {
      case 'boot':
        if (boot) {
          c.ok ? boot.resolve({ bootedAt: clock.now() }) : boot.reject(new Error('migration failed'));
          boot = undefined;
        }
        break;
      case 'crashLoop':
        for (let n = 0; n <= CONFIG.maxRestarts && alive.has(focus); n++) {
          await failChild(where, focus, c.how);
          const due = dueAt.get(focus);
          if (due === undefined) break;
          clock.increment(due - clock.now());
          await flush();
          expect(alive.has(focus), `${where}: ${focus} back at its due time`).toBe(true);
          dueAt.delete(focus);
        }
        break;
      case 'child': {
        const id = c.id === 'focus' ? focus : c.id;
        if (alive.has(id)) await failChild(where, id, c.how);
        break;
      }
      case 'advance': {
        // Step in small increments so each restart is observed at its due time.
        for (let t = 0; t < c.ms; t += 50) {
          clock.increment(50);
          await flush();
          for (const [id, due] of [...dueAt]) {
            if (!actor.getSnapshot().matches('running')) {
              dueAt.clear();
              break;
            }
            const up = actor.getSnapshot().matches({ running: { [id]: 'up' } } as never);
            expect(up, `${where}: ${id} at ${clock.now()} due ${due}`).toBe(clock.now() >= due);
            if (up) dueAt.delete(id);
          }
        }
        break;
      }
      case 'stop':
        if (!before.matches('stopping')) {
          lastStop = `stop ${++stopCount}`;
          dueAt.clear();
        }
        actor.send({ type: SupervisorEvents.STOP, reason: lastStop ?? 'stop' });
        break;
      case 'escalate':
        if (before.matches('running')) dueAt.clear();
        actor.send({ type: SupervisorEvents.ESCALATE, reason: 'operator' });
        break;
      case 'drain':
        if (drain) {
          c.ok ? drain.resolve() : drain.reject(new Error('drain failed'));
          drain = undefined;
        }
        break;
    }
    await flush();
    check(where);
  }
  actor.stop();
}

describe('supervisor machine: model-based coverage', () => {
  it('a seeded model run takes every transition and enters every state, keeping the restart rules', async () => {
    const cov = new CoverageRecorder();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...CHILDREN), fc.array(cmdArb, { minLength: 1, maxLength: 40 }), async (focus, cmds) => {
        await run(cov, focus, [{ k: 'boot', ok: true }, ...cmds]);
      }),
      { numRuns: 300, seed: 20_250_402 },
    );
    // Boot failures and STOP while booting need runs that do not start with a good boot.
    await fc.assert(
      fc.asyncProperty(fc.array(cmdArb, { minLength: 1, maxLength: 10 }), async (cmds) => {
        await run(cov, 'risk', cmds);
      }),
      { numRuns: 100, seed: 20_250_403 },
    );
    // The escalation rule was exercised, not only the backoff one.
    expect(escalations).toBeGreaterThan(20);
    expect(cov.missingStates(supervisorMachine)).toEqual([]);
    expect(cov.missingTransitions(supervisorMachine)).toEqual([]);
  });
});
