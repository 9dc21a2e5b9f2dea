/**
 * A supervised child as XState sees it: a promise that settles only when the child fails (or,
 * wrongly, exits). `start` sets the child up and returns its cleanup; `fail` rejects the promise
 * from any later asynchronous error, which the supervisor turns into a restart with backoff.
 * Stopping the child (leaving its state) aborts the signal and runs the cleanup.
 */
import { fromPromise } from 'xstate';
import type { ChildId } from '../machines/supervisor.machine.ts';

export function longLived(start: (fail: (error: unknown) => void) => () => void) {
  return fromPromise<void, { childId: ChildId }>(
    ({ signal }) =>
      new Promise<void>((_resolve, reject) => {
        let cleanup: (() => void) | undefined;
        let settled = false;
        const finish = () => {
          if (cleanup) {
            const c = cleanup;
            cleanup = undefined;
            c();
          }
        };
        const fail = (e: unknown) => {
          if (settled) return;
          settled = true;
          finish();
          reject(e instanceof Error ? e : new Error(String(e)));
        };
        signal.addEventListener('abort', () => {
          settled = true;
          finish();
        });
        try {
          cleanup = start(fail);
        } catch (e) {
          fail(e);
        }
      }),
  );
}
