/**
 * Fuzzing the venue's REST answers (issue 4, acceptance 6): 10,000 malformed inputs per response
 * schema of src/venue/hyperliquid-schemas.ts (mutated real samples and junk, seeded).
 *
 * For each: parsing never throws; a rejection is a zod error that `describeIssues` turns into a
 * non-empty, bounded message; an acceptance converts (the `to*` converter, as the adapter applies
 * it) into a domain value whose invariants hold (finite Decimals, positive sizes where required,
 * known enums, non-negative integer ids). The action answers (order, cancel, default) and the error
 * bodies `venueErrorOf` reads are fuzzed the same way.
 */
import fc from 'fast-check';
import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import {
  AllMidsSchema,
  CancelResponseSchema,
  CandleSnapshotSchema,
  ClearinghouseStateSchema,
  DefaultResponseSchema,
  FillsSchema,
  FrontendOpenOrdersSchema,
  MetaSchema,
  OrderResponseSchema,
  OrderStatusSchema,
  describeIssues,
  toAccountState,
  toCandle,
  toFill,
  toInstruments,
  toMids,
  toVenueOrder,
  toVenueOrderStatus,
  venueErrorOf,
} from '../../src/venue/hyperliquid-schemas.ts';
import { fuzzParams, malformedFrom } from './malformed.ts';
import * as S from './wire-samples.ts';

interface Target {
  readonly name: string;
  readonly schema: z.ZodType;
  readonly samples: readonly unknown[];
  /** Converts an accepted value as the adapter does and checks the domain invariants. */
  readonly accept: (data: never) => void;
}

const TARGETS: readonly Target[] = [
  { name: 'meta', schema: MetaSchema, samples: [S.META], accept: (d: z.output<typeof MetaSchema>) => toInstruments(d).forEach(S.checkInstrument) },
  {
    name: 'allMids',
    schema: AllMidsSchema,
    samples: [S.ALL_MIDS],
    accept: (d: z.output<typeof AllMidsSchema>) => {
      const m = toMids(d);
      if (m instanceof Map) for (const [coin, px] of m) (S.check(!coin.startsWith('@') && !coin.includes('/'), `spot key ${coin}`), S.expectPositive(px, `mid ${coin}`));
      else S.check(m.error.startsWith('bad mid for ') && m.error.length < 200, m.error);
    },
  },
  { name: 'candleSnapshot', schema: CandleSnapshotSchema, samples: [S.CANDLES], accept: (d: z.output<typeof CandleSnapshotSchema>) => d.forEach((c) => S.checkCandle(toCandle(c, true))) },
  { name: 'clearinghouseState', schema: ClearinghouseStateSchema, samples: [S.CLEARINGHOUSE], accept: (d: z.output<typeof ClearinghouseStateSchema>) => S.checkAccount(toAccountState(d)) },
  { name: 'frontendOpenOrders', schema: FrontendOpenOrdersSchema, samples: [S.OPEN_ORDERS], accept: (d: z.output<typeof FrontendOpenOrdersSchema>) => d.forEach((o) => S.checkVenueOrder(toVenueOrder(o))) },
  { name: 'orderStatus', schema: OrderStatusSchema, samples: [S.ORDER_STATUS, S.ORDER_STATUS_MISSING], accept: (d: z.output<typeof OrderStatusSchema>) => S.checkOrderStatus(toVenueOrderStatus(d)) },
  { name: 'userFillsByTime', schema: FillsSchema, samples: [S.FILLS], accept: (d: z.output<typeof FillsSchema>) => d.forEach((f) => S.checkFill(toFill(f))) },
  {
    name: 'order response',
    schema: OrderResponseSchema,
    samples: [S.ORDER_RESPONSE, S.ORDER_RESPONSE_FILLED, S.ORDER_RESPONSE_ERROR, S.ORDER_RESPONSE_WAITING],
    accept: (d: z.output<typeof OrderResponseSchema>) => {
      S.check(d.response.data.statuses.length > 0, 'statuses');
      for (const st of d.response.data.statuses) {
        S.check(['resting', 'filled', 'error', 'waiting'].includes(st.kind), st.kind);
        if (st.kind === 'resting') S.expectId(st.oid, 'oid');
        if (st.kind === 'filled') (S.expectId(st.oid, 'oid'), S.expectNonNegative(st.totalSz, 'totalSz'), S.expectNonNegative(st.avgPx, 'avgPx'));
        if (st.kind === 'error') S.check(typeof st.error === 'string', 'error');
      }
    },
  },
  {
    name: 'cancel response',
    schema: CancelResponseSchema,
    samples: [S.CANCEL_RESPONSE],
    accept: (d: z.output<typeof CancelResponseSchema>) => {
      for (const st of d.response.data.statuses) S.check(st === 'success' || typeof (st as { error: unknown }).error === 'string', 'cancel status');
    },
  },
  { name: 'default response', schema: DefaultResponseSchema, samples: [S.DEFAULT_RESPONSE], accept: (d: z.output<typeof DefaultResponseSchema>) => S.check(d.status === 'ok', 'status') },
];

describe('fuzz: venue REST responses (10,000 malformed inputs per schema)', () => {
  for (const t of TARGETS) {
    it(`${t.name}: never throws; an error value, or a domain value whose invariants hold`, () => {
      for (const s of t.samples) expect(t.schema.safeParse(s).success, `${t.name} sample parses`).toBe(true);
      let rejected = 0;
      fc.assert(
        fc.property(malformedFrom(...t.samples), (raw) => {
          const p = t.schema.safeParse(raw);
          if (p.success) {
            t.accept(p.data as never);
            return;
          }
          rejected++;
          const why = describeIssues(p.error);
          // The message is for a log line: present, and bounded whatever the input's size.
          S.check(why.length > 0 && why.length < 1_000, `issue text of ${why.length} chars`);
        }),
        fuzzParams(0x5eed + t.name.length),
      );
      // The generators mostly break the sample (mutations may leave it valid: extra keys are tolerated).
      expect(rejected).toBeGreaterThan(5_000);
    });
  }

  it('error bodies: venueErrorOf never throws and returns a string error or nothing', () => {
    fc.assert(
      fc.property(malformedFrom(S.ERROR_BODY, S.ORDER_RESPONSE_ERROR, S.CANCEL_RESPONSE), (raw) => {
        const v = venueErrorOf(raw);
        if (v !== undefined) S.check((v.scope === 'order' || v.scope === 'top') && typeof v.error === 'string', 'venue error');
      }),
      fuzzParams(0xe220),
    );
  });
});
