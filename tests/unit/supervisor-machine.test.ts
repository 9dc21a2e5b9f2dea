/**
 * The supervisor machine on a simulated clock: boot → running with every child under its
 * systemId; a failing child restarts after a doubling backoff; too many failures escalate;
 * STOP drains and finishes; a failed boot ends in `failed`.
 */
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { supervisorMachine, SupervisorEvents, CHILDREN, type ChildId } from '../../machines/supervisor.machine.ts';

function harness(opts: { failing?: string; failTimes?: number; bootFails?: boolean } = {}) {
  const starts: Record<string, number> = {};
  let drained = '';
  const child = fromPromise<void, { childId: ChildId }>(({ input }) => {
    starts[input.childId] = (starts[input.childId] ?? 0) + 1;
    if (input.childId === opts.failing && starts[input.childId]! <= (opts.failTimes ?? Infinity)) return Promise.reject(new Error(`${input.childId} broke`));
    return new Promise<void>(() => {});
  });
  const machine = supervisorMachine.provide({
    actors: {
      boot: fromPromise(async () => {
        if (opts.bootFails) throw new Error('migration failed');
        return { bootedAt: 1 };
      }),
      drain: fromPromise(async ({ input }: { input: { reason: string } }) => {
        drained = input.reason;
      }),
      marketFeed: child,
      strategy: child,
      risk: child,
      orderManager: child,
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, { clock, input: { config: { baseBackoffMs: 100, maxRestarts: 3, restartWindowMs: 10_000 } } });
  return { actor, clock, starts, drained: () => drained };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('supervisor machine', () => {
  it('boots, then runs every child with its systemId', async () => {
    const h = harness();
    h.actor.start();
    await flush();
    expect(h.actor.getSnapshot().matches('running')).toBe(true);
    for (const c of CHILDREN) {
      expect(h.starts[c]).toBe(1);
      expect(h.actor.system.get(c)).toBeDefined();
    }
  });

  it('restarts a failed child after a doubling backoff, leaving the others alone', async () => {
    const h = harness({ failing: 'strategy', failTimes: 2 });
    h.actor.start();
    await flush();
    expect(h.actor.getSnapshot().value).toMatchObject({ running: { strategy: 'backoff' } });
    h.clock.increment(99);
    await flush();
    expect(h.starts['strategy']).toBe(1);
    h.clock.increment(1);
    await flush();
    expect(h.starts['strategy']).toBe(2); // failed again → backoff 200 ms
    h.clock.increment(199);
    await flush();
    expect(h.starts['strategy']).toBe(2);
    h.clock.increment(1);
    await flush();
    expect(h.starts['strategy']).toBe(3);
    expect(h.actor.getSnapshot().value).toMatchObject({ running: { strategy: 'up', marketFeed: 'up' } });
    expect(h.starts['marketFeed']).toBe(1);
    expect(h.actor.getSnapshot().context.children.strategy.restarts).toBe(2);
  });

  it('escalates when a child keeps failing inside the window', async () => {
    const h = harness({ failing: 'orderManager' });
    h.actor.start();
    await flush();
    h.clock.increment(100);
    await flush();
    h.clock.increment(200);
    await flush();
    expect(h.actor.getSnapshot().value).toBe('escalated');
    expect(h.actor.getSnapshot().context.children.orderManager.lastError).toBe('orderManager broke');
  });

  it('forgets failures older than the window', async () => {
    const h = harness({ failing: 'risk', failTimes: 2 });
    h.actor.start();
    await flush();
    h.clock.increment(100);
    await flush(); // second failure
    h.clock.increment(200);
    await flush(); // restarted, healthy
    expect(h.actor.getSnapshot().context.children.risk.failures).toBe(2);
    h.clock.increment(10_000);
    await flush();
    expect(h.actor.getSnapshot().context.children.risk.failures).toBe(0);
  });

  it('drains on STOP and finishes', async () => {
    const h = harness();
    h.actor.start();
    await flush();
    h.actor.send({ type: SupervisorEvents.STOP, reason: 'SIGTERM' });
    await flush();
    expect(h.drained()).toBe('SIGTERM');
    expect(h.actor.getSnapshot().value).toBe('stopped');
    expect(h.actor.getSnapshot().status).toBe('done');
  });

  it('ends in failed when boot fails', async () => {
    const h = harness({ bootFails: true });
    h.actor.start();
    await flush();
    expect(h.actor.getSnapshot().value).toBe('failed');
    expect(h.actor.getSnapshot().context.bootError).toBe('migration failed');
  });
});
