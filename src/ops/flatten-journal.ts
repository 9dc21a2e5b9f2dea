/**
 * The store side of a flatten: every close is committed as an intent (write before act) and
 * marked submitting, and the venue's answer is recorded on it. Shared by the runtime's kill
 * switch, `keel flatten` and the independent watchdog, so all three leave the same trail.
 * An unknown answer stays unknown: it is resolved later by cloid, never assumed.
 */
import type { OrderIntent, PlaceResult } from '../domain/types.ts';
import type { Store } from '../store/index.ts';
import type { NewFlattenIntent } from './flatten.ts';

export function flattenJournal(store: Store, now: () => number) {
  return {
    commitIntent(i: NewFlattenIntent): OrderIntent {
      const intent = store.orders.commitIntent(i);
      store.orders.updateState(intent.cloid, { state: 'submitting', submittedAt: now() });
      return intent;
    },
    onResult(intent: OrderIntent, r: PlaceResult): void {
      const t = now();
      switch (r.kind) {
        case 'filled':
          store.orders.updateState(intent.cloid, { state: 'filled', oid: r.oid, filledSz: r.totalSz, avgPx: r.avgPx, updatedAt: t });
          return;
        case 'rejected':
          store.orders.updateState(intent.cloid, { state: 'rejected', lastError: r.error, updatedAt: t });
          return;
        case 'unknown':
          store.orders.updateState(intent.cloid, { state: 'unknown', lastError: r.cause, updatedAt: t });
          return;
        case 'resting':
        case 'waiting':
          store.orders.updateState(intent.cloid, { state: 'resting', ...(r.oid !== undefined ? { oid: r.oid } : {}), updatedAt: t });
          return;
      }
    },
  };
}
