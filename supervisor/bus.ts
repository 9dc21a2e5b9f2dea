/**
 * The in-process message bus between the supervisor's children (market feed → strategy → risk →
 * order manager), in the spirit of a trading kernel's message bus: synchronous, typed, ordered.
 *
 * Invariant: a handler that throws never stops delivery to the others; the error goes to the
 * bus's `onError` (the wiring logs it and fails the subscribing child, which the supervisor
 * restarts).
 */
import type { Candle, Coin, Fill, Signal } from '../src/domain/types.ts';
import type { Decimal } from '../src/domain/decimal.ts';

export interface ApprovedOrder {
  readonly signal: Signal;
  readonly coin: Coin;
  readonly assetId: number;
  readonly side: 'buy' | 'sell';
  readonly sz: Decimal;
  readonly px: Decimal;
  readonly stopPx: Decimal;
  readonly takeProfitPx: Decimal;
}

export interface BusEvents {
  'candle.closed': Candle;
  'mids': ReadonlyMap<Coin, Decimal>;
  'signal': Signal;
  'order.approved': ApprovedOrder;
  'fills': { readonly fills: readonly Fill[]; readonly source: 'ws' | 'rest' | 'snapshot' };
  'orderUpdates': readonly { cloid?: string; oid: number; coin: Coin; status: string; sz: Decimal; origSz: Decimal; time: number }[];
  'feed.source': { readonly from: string; readonly to: string };
}

type Handler<T> = (payload: T) => void;

export class Bus {
  readonly #handlers = new Map<keyof BusEvents, Set<Handler<never>>>();
  readonly #onError: (topic: string, error: unknown) => void;

  constructor(onError: (topic: string, error: unknown) => void = () => {}) {
    this.#onError = onError;
  }

  on<K extends keyof BusEvents>(topic: K, handler: Handler<BusEvents[K]>): () => void {
    let set = this.#handlers.get(topic);
    if (!set) {
      set = new Set();
      this.#handlers.set(topic, set);
    }
    set.add(handler as Handler<never>);
    return () => set.delete(handler as Handler<never>);
  }

  publish<K extends keyof BusEvents>(topic: K, payload: BusEvents[K]): void {
    const set = this.#handlers.get(topic);
    if (!set) return;
    for (const h of [...set]) {
      try {
        (h as Handler<BusEvents[K]>)(payload);
      } catch (e) {
        this.#onError(topic, e);
      }
    }
  }
}
