/**
 * Fuzzing the control surface (issue 4, acceptance 6). Until keel's own control API exists, the
 * simulator's stands in: 10,000 malformed inputs each to the in-process edges (`handleInfo`,
 * `parseExchangeBody`, `authenticate`, the `/_sim/faults` body schema), then 500 over real HTTP to
 * a running simulator on loopback (`/_sim/faults`, `/_sim/accounts`, `/_sim/clock`, `/info`,
 * `/exchange`, JSON and not).
 *
 * For every input: nothing throws; the answer is the documented refusal (HTTP 422 "Failed to
 * deserialize…", a 400 with a reason, or `{status:"err"}`), or — for a read-only `/info` request that
 * happens to be valid — an answer; the server keeps serving; and the exchange's ground truth
 * (`/_sim/state`) is the same afterwards. `authenticate` never succeeds for these bodies, which is
 * what keeps its one side effect (recording a nonce) from happening.
 */
import fc from 'fast-check';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type Simulator } from '../../src/sim/server/simulator.ts';
import { DESERIALIZE_ERROR, handleInfo, parseInfoRequest, type InfoContext } from '../../src/sim/server/info.ts';
import { FaultSettingsSchema } from '../../src/sim/server/faults.ts';
import { AddressLimiter } from '../../src/sim/server/rate-limits.ts';
import { AgentRegistry, NonceTracker, authenticate, isHttpRefusal, parseExchangeBody } from '../../src/sim/auth/index.ts';
import { fuzzParams, junk, malformedFrom } from './malformed.ts';
import { check } from './wire-samples.ts';

const T0 = 1_700_000_000_000;
const USER = '0x1234567890abcdef1234567890abcdef12345678';
const CLOID = '0x1234567890abcdef1234567890abcdef';
const SIG = { r: `0x${'1f'.repeat(32)}`, s: `0x${'2e'.repeat(32)}`, v: 27 };

const INFO_SAMPLES = [
  { type: 'meta' },
  { type: 'allMids' },
  { type: 'clearinghouseState', user: USER },
  { type: 'frontendOpenOrders', user: USER },
  { type: 'orderStatus', user: USER, oid: CLOID },
  { type: 'userFillsByTime', user: USER, startTime: T0 - 60_000, aggregateByTime: false },
  { type: 'candleSnapshot', req: { coin: 'BTC', interval: '1m', startTime: T0 - 600_000, endTime: T0 } },
  { type: 'l2Book', coin: 'BTC', nSigFigs: 5, mantissa: null },
];

const EXCHANGE_SAMPLES = [
  { action: { type: 'order', orders: [{ a: 0, b: true, p: '65000', s: '0.001', r: false, t: { limit: { tif: 'Gtc' } }, c: CLOID }], grouping: 'na' }, nonce: T0, signature: SIG, vaultAddress: null, expiresAfter: T0 + 5_000 },
  { action: { type: 'cancelByCloid', cancels: [{ asset: 0, cloid: CLOID }] }, nonce: T0 + 1, signature: SIG },
  { action: { type: 'scheduleCancel', time: T0 + 60_000 }, nonce: T0 + 2, signature: SIG },
  { action: { type: 'approveAgent', hyperliquidChain: 'Testnet', signatureChainId: '0x66eee', agentAddress: USER, agentName: 'keel', nonce: T0 + 3 }, nonce: T0 + 3, signature: SIG },
];

// Mirrors of the simulator's own control-body schemas (simulator.ts keeps them private): the
// generators below must produce only bodies the simulator refuses.
const FundBody = z.object({ address: z.string().regex(/^0x[0-9a-fA-F]{40}$/), usdc: z.union([z.number().positive().finite(), z.string().regex(/^\d+(\.\d+)?$/)]) }).strict();
const ClockBody = z.union([
  z.object({ speed: z.number().positive().max(100_000) }).strict(),
  z.object({ step: z.number().int().positive().max(7 * 86_400_000) }).strict(),
  z.object({ mode: z.enum(['wall', 'manual']) }).strict(),
]);

let sim: Simulator;
let infoCtx: InfoContext;

beforeAll(async () => {
  sim = await startSimulator({ clock: 'manual', startTime: T0, seed: 11, ipWeightPerMinute: 100_000_000 });
  sim.fund(USER, 10_000);
  infoCtx = { exchange: sim.exchange, market: sim.market, addressLimits: new AddressLimiter(), agents: new AgentRegistry(), now: () => sim.clock.now() };
});
afterAll(async () => {
  await sim?.close();
});

const truth = () => JSON.stringify(sim.exchange.groundTruth());

describe('fuzz: control requests (10,000 per in-process edge, 500 over HTTP)', () => {
  it('handleInfo: a 422 or a read-only answer; the exchange is unchanged', () => {
    const before = truth();
    let refused = 0;
    fc.assert(
      fc.property(malformedFrom(...INFO_SAMPLES), (raw) => {
        const r = handleInfo(infoCtx, raw);
        if (r.kind === 'http') {
          refused++;
          check(r.status === 422 && r.text === DESERIALIZE_ERROR, `unexpected refusal ${r.status} ${r.text}`);
        } else check(parseInfoRequest(raw) !== undefined, 'answered a request it cannot parse');
      }),
      fuzzParams(0x1f0),
    );
    expect(refused).toBeGreaterThan(5_000);
    expect(truth()).toBe(before);
  });

  it('parseExchangeBody: a body or the 422, never a throw', () => {
    let refused = 0;
    fc.assert(
      fc.property(malformedFrom(...EXCHANGE_SAMPLES), (raw) => {
        const b = parseExchangeBody(raw);
        if (isHttpRefusal(b)) {
          refused++;
          check(b.status === 422, `status ${b.status}`);
        } else check(typeof b.nonce === 'number' && typeof b.action === 'object', 'body shape');
      }),
      fuzzParams(0xe8b),
    );
    expect(refused).toBeGreaterThan(3_000);
  });

  it('authenticate: always a refusal (422 or err), so no nonce is ever recorded', () => {
    const nonces = new NonceTracker();
    const agents = new AgentRegistry();
    let http = 0;
    let err = 0;
    fc.assert(
      fc.property(malformedFrom(...EXCHANGE_SAMPLES), (raw) => {
        const r = authenticate(raw, { now: T0, chain: 'Testnet', accountExists: (a) => sim.exchange.hasAccount(a), agents, nonces });
        check(!r.ok, 'a malformed body authenticated');
        if (r.ok) return;
        if (r.kind === 'http') (http++, check(r.status === 422, `status ${r.status}`));
        else (err++, check(typeof r.message === 'string' && r.message.length > 0 && r.message.length < 500, `message ${r.message}`));
      }),
      fuzzParams(0xa07),
    );
    expect(http).toBeGreaterThan(1_000);
    // Bodies that keep their shape reach signature recovery and fail there or at the signer.
    expect(err).toBeGreaterThan(100);
    expect(nonces.stored(USER)).toEqual([]);
  });

  it('/_sim/faults body schema: refuses every generated invalid body', () => {
    const samples = [{ latency: 0.1, latencyMs: 100 }, { reject: 0.5 }, { outage: 1, stallMs: 1000 }];
    let refused = 0;
    fc.assert(
      fc.property(malformedFrom(...samples), (raw) => {
        if (!FaultSettingsSchema.safeParse(raw).success) refused++;
      }),
      fuzzParams(0xfa1),
    );
    expect(refused).toBeGreaterThan(5_000);
  });

  it('over HTTP: 500 malformed requests are refused, the server keeps serving, /_sim/state is unchanged', async () => {
    const state = async () => {
      const r = await fetch(`${sim.url}/_sim/state`);
      expect(r.status).toBe(200);
      return r.text();
    };
    const before = await state();
    const asText = (v: unknown) => JSON.stringify(v) ?? 'null';
    const reqArb = fc.oneof(
      fc.record({ path: fc.constant('/_sim/faults'), body: malformedFrom({ latency: 0.1 }, { reject: 0.2, latencyMs: 10 }).map(asText).filter((t) => !FaultSettingsSchema.safeParse(JSON.parse(t)).success) }),
      fc.record({ path: fc.constant('/_sim/accounts'), body: malformedFrom({ address: USER, usdc: 100 }).map(asText).filter((t) => !FundBody.safeParse(JSON.parse(t)).success) }),
      fc.record({ path: fc.constant('/_sim/clock'), body: malformedFrom({ step: 100 }, { speed: 2 }, { mode: 'manual' }).map(asText).filter((t) => !ClockBody.safeParse(JSON.parse(t)).success) }),
      fc.record({ path: fc.constant('/info'), body: malformedFrom(...INFO_SAMPLES).map(asText) }),
      fc.record({ path: fc.constant('/exchange'), body: malformedFrom(...EXCHANGE_SAMPLES).map(asText) }),
      fc.record({ path: fc.constantFrom('/_sim/faults', '/_sim/accounts', '/_sim/clock', '/info', '/exchange'), body: fc.oneof(fc.string({ minLength: 1, maxLength: 50 }), junk.map((j) => `${asText(j)}}`)) }),
    );
    const reqs = fc.sample(reqArb, { numRuns: 500, seed: 0x477 });
    for (const [i, { path, body }] of reqs.entries()) {
      const res = await fetch(`${sim.url}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json' } });
      const text = await res.text();
      const where = `#${i} POST ${path} ${body.slice(0, 120)} → ${res.status} ${text.slice(0, 120)}`;
      if (path === '/info' && res.status === 200) {
        // A read-only request that happens to be valid is answered.
        let parsed: unknown;
        try {
          parsed = JSON.parse(body);
        } catch {
          parsed = undefined;
        }
        expect(parseInfoRequest(parsed), where).toBeDefined();
      } else if (path === '/exchange' && res.status === 200) {
        expect(JSON.parse(text).status, where).toBe('err');
      } else {
        expect(res.status >= 400 && res.status < 500, where).toBe(true);
      }
    }
    expect(await state()).toBe(before);
  });
});
