/**
 * The I/O shell around the pure reconciliation (src/domain/reconciliation.ts): fetch the venue's
 * view, load ours, decide with `reconcile`, then carry the actions out. Runs at boot, periodically
 * while running, and on demand (`keel reconcile`, `keel ack`).
 *
 * Invariants (see the pure module for the decision's own): the venue is fetched BEFORE our state
 * is loaded, so an order sent just before the snapshot is never mistaken for a lost one; an
 * action on a cloid a live order actor owns is left to that actor (it resolves by cloid itself);
 * the operator's manual orders are reported, never touched; a dry run changes nothing.
 */
import { reconcile, cloidsToQuery, type LocalOrder, type LocalPosition, type ReconcileAction, type ReconcileReport } from '../src/domain/reconciliation.ts';
import type { Cloid, Coin, Position, VenueOrderStatus } from '../src/domain/types.ts';
import { ZERO, type Decimal } from '../src/domain/decimal.ts';
import type { Store } from '../src/store/index.ts';
import type { VenuePort } from '../src/venue/port.ts';
import type { Logger } from '../src/ops/logger.ts';
import type { OrderManager } from './order-manager.ts';

export interface ReconcileRun {
  readonly report: ReconcileReport;
  readonly applied: number;
  readonly skipped: number;
  readonly dryRun: boolean;
}

export async function runReconciliation(deps: {
  store: Store;
  venue: VenuePort;
  orderManager: OrderManager | undefined;
  log: Logger;
  now: () => number;
  phase: 'boot' | 'running';
  dryRun?: boolean;
  cancelEntries?: boolean;
}): Promise<ReconcileRun> {
  const { store, venue, log, now } = deps;
  const since = Math.max(0, (store.state.get('last_fill_time') ?? now() - 86_400_000) - 120_000);
  // 1. The venue first.
  const [openOrders, acct, fills, marks] = await Promise.all([venue.openOrders(), venue.accountState(), venue.fills(since), venue.mids()]);
  // 2. Then ours.
  const byCloid = new Map<Cloid, LocalOrder>();
  for (const o of store.orders.unresolved()) byCloid.set(o.cloid, o);
  for (const vo of openOrders) {
    if (vo.cloid && !byCloid.has(vo.cloid)) {
      const rec = store.orders.byCloid(vo.cloid);
      if (rec) byCloid.set(rec.cloid, rec);
    }
  }
  const positions = new Map<Coin, LocalPosition>(store.positions.all().map((p) => [p.coin, p]));
  const local = { orders: [...byCloid.values()], fills: store.fills.since(since).map((f) => ({ tid: f.tid, oid: f.oid })), positions };
  // 3. Status of what is unresolved, after `now`.
  const at = now();
  const statuses = new Map<Cloid, VenueOrderStatus>();
  for (const c of cloidsToQuery(local, openOrders)) {
    try {
      statuses.set(c, await venue.orderStatus(c));
    } catch (e) {
      log.warn({ cloid: c, err: (e as Error).message }, 'reconciliation: order status unavailable (stays pending)');
    }
  }
  const venuePositions = new Map<Coin, Decimal>(acct.positions.map((p) => [p.coin, p.szi]));
  const { actions, report } = reconcile(local, { openOrders, statuses, fills, positions: venuePositions, marks, now: at }, {
    prefix: store.orders.runtimePrefix,
    phase: deps.phase,
    ...(deps.cancelEntries ? { cancelEntries: true } : {}),
  });
  let applied = 0;
  let skipped = 0;
  if (!deps.dryRun) {
    for (const a of actions) {
      if (await apply(a, new Map(acct.positions.map((p) => [p.coin, p])), deps)) applied++;
      else skipped++;
    }
    store.state.set('last_reconciliation', { time: report.at, clean: report.clean, summary: report.summary });
  }
  const level = report.clean ? 'info' : 'warn';
  log[level]({ phase: deps.phase, clean: report.clean, counts: report.counts, pending: report.pending.length, applied, skipped, dryRun: !!deps.dryRun, lines: report.lines.slice(0, 20) }, `reconciliation: ${report.summary}`);
  return { report, applied, skipped, dryRun: !!deps.dryRun };
}

async function apply(a: ReconcileAction, venuePositions: ReadonlyMap<Coin, Position>, deps: { store: Store; venue: VenuePort; orderManager: OrderManager | undefined; log: Logger; now: () => number }): Promise<boolean> {
  const { store, venue, orderManager: om, log, now } = deps;
  switch (a.type) {
    case 'resolveOrder':
      if (om?.owns(a.cloid)) return false; // its actor resolves it by cloid
      store.orders.updateState(a.cloid, { state: a.state, filledSz: a.filledSz, ...(a.oid !== undefined ? { oid: a.oid } : {}), lastError: a.reason });
      log.warn({ cloid: a.cloid, state: a.state, reason: a.reason }, 'reconciliation: order resolved');
      return true;
    case 'applyFill':
      om?.onFills([a.fill]);
      return om !== undefined;
    case 'adoptPosition': {
      // The venue is the truth for what it holds.
      const row = store.positions.get(a.coin);
      const theirs = venuePositions.get(a.coin);
      if (a.to.isZero()) store.positions.remove(a.coin);
      else if (row) store.positions.upsert({ ...row, szi: a.to, ...(theirs ? { entryPx: theirs.entryPx } : {}) });
      else if (theirs) store.positions.upsert({ coin: a.coin, szi: a.to, entryPx: theirs.entryPx, entryFees: ZERO, stage: 'open', tpCloids: [] });
      log.error({ coin: a.coin, from: a.from.toFixed(), to: a.to.toFixed() }, 'reconciliation: position adopted from the venue');
      return true;
    }
    case 'adoptOrder':
      // The store cannot insert a row under an existing cloid yet: reported, left resting.
      log.error({ cloid: a.cloid, oid: a.venueOrder.oid, coin: a.venueOrder.coin, reason: a.reason }, 'reconciliation: an order of ours the database lost is resting on the venue (left in place)');
      return false;
    case 'cancelOrder': {
      const r = await venue.cancel(a.coin, a.cloid, { expiresAfter: now() + 5_000 });
      log.warn({ cloid: a.cloid, oid: a.oid, coin: a.coin, reason: a.reason, result: r.kind }, 'reconciliation: order cancelled');
      return r.kind === 'cancelled';
    }
    case 'protectPosition': {
      const p = venuePositions.get(a.coin);
      return p !== undefined && om?.ensureStop(p) !== undefined;
    }
    case 'reportExternal':
      log.warn({ oid: a.venueOrder.oid, coin: a.venueOrder.coin, side: a.venueOrder.side, sz: a.venueOrder.sz.toFixed(), px: a.venueOrder.px.toFixed() }, 'reconciliation: an order keel did not place (left alone)');
      return true;
  }
}
