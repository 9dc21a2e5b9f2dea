/**
 * KeelMetrics: every series of issue 5 is exposed from construction and moves when its typed
 * method is called; label values stay inside their closed sets whatever strings come in; sources
 * read at scrape time (the real resilient venue's breakers, the real weight budget, a black-box
 * stats source) become gauges and monotonic counters without double counting.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { dec } from '../../src/domain/decimal.ts';
import { DENIAL_REASONS, MODES, ORDER_STATES, type DenialReason, type OrderState } from '../../src/domain/types.ts';
import {
  ALERT_CHANNELS,
  ALERT_SEVERITIES,
  BLACKBOX_EVENT_KINDS,
  BREAKER_ENDPOINTS,
  BREAKER_STATES,
  FEED_CHANNELS,
  FEED_PATHS,
  FEED_SOURCES,
  KeelMetrics,
  METRIC_ACTORS,
  RECONCILIATION_DIFFERENCE_KINDS,
  REJECTION_REASONS,
  rejectionReason,
  type BlackboxSource,
  type MetricActor,
} from '../../src/ops/metrics.ts';
import { CHILDREN } from '../../machines/supervisor.machine.ts';
import { ERR } from '../../src/sim/engine/exchange.ts';
import { BLACKBOX_KINDS } from '../../src/store/blackbox-codec.ts';
import { BREAKER_CLASSES } from '../../src/venue/breakers.ts';
import { createResilientVenue } from '../../src/venue/resilient-venue.ts';
import { VenueError, type VenuePort } from '../../src/venue/port.ts';
import { WeightBudget, type BudgetClock } from '../../src/venue/weight-budget.ts';

/** Every keel series of issue 5 (and the few this module adds), with its Prometheus type. */
const EXPECTED: Readonly<Record<string, 'gauge' | 'counter' | 'histogram'>> = {
  keel_info: 'gauge',
  keel_mode: 'gauge',
  keel_mode_transitions_total: 'counter',
  keel_actor_up: 'gauge',
  keel_actor_restarts_total: 'counter',
  keel_feed_messages_total: 'counter',
  keel_feed_age_seconds: 'gauge',
  keel_feed_source: 'gauge',
  keel_orders_total: 'counter',
  keel_order_rejections_total: 'counter',
  keel_risk_denials_total: 'counter',
  keel_tick_to_order_seconds: 'histogram',
  keel_order_ack_seconds: 'histogram',
  keel_fills_total: 'counter',
  keel_position_size: 'gauge',
  keel_position_notional_usd: 'gauge',
  keel_equity_usd: 'gauge',
  keel_drawdown_ratio: 'gauge',
  keel_daily_pnl_usd: 'gauge',
  keel_breaker_state: 'gauge',
  keel_breaker_window_calls: 'gauge',
  keel_breaker_transitions_total: 'counter',
  keel_request_weight_available: 'gauge',
  keel_request_weight_capacity: 'gauge',
  keel_rate_limited_total: 'counter',
  keel_reconciliation_runs_total: 'counter',
  keel_reconciliation_differences_total: 'counter',
  keel_reconciliation_last_run_timestamp_seconds: 'gauge',
  keel_blackbox_events_total: 'counter',
  keel_blackbox_write_seconds: 'histogram',
  keel_blackbox_dropped_total: 'counter',
  keel_blackbox_write_errors_total: 'counter',
  keel_blackbox_pending_events: 'gauge',
  keel_db_errors_total: 'counter',
  keel_event_loop_delay_seconds: 'gauge',
  keel_deadman_expiry_timestamp_seconds: 'gauge',
  keel_alerts_sent_total: 'counter',
};

type Labels = Record<string, string>;

/** One sample's value from the text exposition (what Prometheus reads), or undefined when absent. */
async function sample(m: KeelMetrics, name: string, labels: Labels = {}): Promise<number | undefined> {
  const text = await m.metrics();
  for (const line of text.split('\n')) {
    const r = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!r || r[1] !== name) continue;
    const got = Object.fromEntries([...(r[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.keys(labels).length === Object.keys(got).length && Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(r[3]);
  }
  return undefined;
}

/** All keel series lines (name + labels), for counting and label checks. */
async function keelSeries(m: KeelMetrics): Promise<{ name: string; labels: Labels }[]> {
  const text = await m.metrics();
  return text
    .split('\n')
    .filter((l) => l.startsWith('keel_'))
    .map((l) => {
      const r = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(l)!;
      return { name: r[1]!, labels: Object.fromEntries([...(r[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!])) };
    });
}

function fresh(now: { t: number } = { t: 1_700_000_000_000 }): KeelMetrics {
  return new KeelMetrics({ coins: ['BTC', 'ETH'], network: 'testnet', version: '0.1.0', now: () => now.t, defaultMetrics: false });
}

describe('exposition', () => {
  it('exposes every issue-5 series with HELP and TYPE from construction, on its own registry', async () => {
    const m = fresh();
    const text = await m.metrics();
    for (const [name, type] of Object.entries(EXPECTED)) {
      expect(text, name).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
      expect(text, name).toContain(`# TYPE ${name} ${type}\n`);
    }
    const families = [...text.matchAll(/^# TYPE (keel_\w+) /gm)].map((r) => r[1]);
    expect(new Set(families)).toEqual(new Set(Object.keys(EXPECTED)));
    expect(m.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    // A second instance is independent (no global registry collisions).
    const other = fresh();
    other.dbError();
    expect(await sample(m, 'keel_db_errors_total')).toBe(0);
    expect(await sample(other, 'keel_db_errors_total')).toBe(1);
  });

  it('includes the process defaults without the _total-suffixed gauges promtool rejects', async () => {
    const m = new KeelMetrics({ coins: ['BTC'] });
    const text = await m.metrics();
    expect(text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(text).toContain('# TYPE nodejs_eventloop_lag_p99_seconds gauge');
    expect(text).toContain('# TYPE nodejs_active_handles gauge');
    expect(text).not.toMatch(/^# TYPE \w+_total (gauge|untyped)/m);
  });

  it('pre-initialises every bounded label set, so nothing is missing before it first happens', async () => {
    const m = fresh();
    for (const mode of MODES) expect(await sample(m, 'keel_mode', { mode })).toBe(0);
    for (const from of MODES) for (const to of MODES) expect(await sample(m, 'keel_mode_transitions_total', { from, to })).toBe(from === to ? undefined : 0);
    for (const actor of [...METRIC_ACTORS, 'other']) expect(await sample(m, 'keel_actor_up', { actor })).toBe(0);
    for (const source of FEED_SOURCES) for (const channel of [...FEED_CHANNELS, 'other']) expect(await sample(m, 'keel_feed_messages_total', { source, channel })).toBe(0);
    expect(await sample(m, 'keel_feed_source', { source: 'none' })).toBe(1);
    for (const status of ORDER_STATES) expect(await sample(m, 'keel_orders_total', { status })).toBe(0);
    for (const reason of REJECTION_REASONS) expect(await sample(m, 'keel_order_rejections_total', { reason })).toBe(0);
    for (const reason of DENIAL_REASONS) expect(await sample(m, 'keel_risk_denials_total', { reason })).toBe(0);
    for (const coin of ['BTC', 'ETH', 'other']) {
      expect(await sample(m, 'keel_fills_total', { coin, side: 'sell' })).toBe(0);
      expect(await sample(m, 'keel_position_size', { coin })).toBe(0);
    }
    for (const endpoint of BREAKER_ENDPOINTS) for (const state of BREAKER_STATES) expect(await sample(m, 'keel_breaker_state', { endpoint, state })).toBe(state === 'closed' ? 1 : 0);
    for (const kind of RECONCILIATION_DIFFERENCE_KINDS) expect(await sample(m, 'keel_reconciliation_differences_total', { kind })).toBe(0);
    for (const kind of BLACKBOX_EVENT_KINDS) expect(await sample(m, 'keel_blackbox_events_total', { kind })).toBe(0);
    for (const channel of ALERT_CHANNELS) for (const severity of ALERT_SEVERITIES) expect(await sample(m, 'keel_alerts_sent_total', { channel, severity })).toBe(0);
    expect(await sample(m, 'keel_info', { version: '0.1.0', network: 'testnet' })).toBe(1);
  });
});

describe('typed setters', () => {
  it('mode: one gauge per mode; a change counts one transition; the first setting and a repeat count none', async () => {
    const m = fresh();
    m.setMode('Emergency'); // a restored boot
    m.setMode('Emergency');
    expect(await sample(m, 'keel_mode', { mode: 'Emergency' })).toBe(1);
    m.setMode('Critical');
    m.setMode('Normal');
    for (const mode of MODES) expect(await sample(m, 'keel_mode', { mode })).toBe(mode === 'Normal' ? 1 : 0);
    expect(await sample(m, 'keel_mode_transitions_total', { from: 'Emergency', to: 'Critical' })).toBe(1);
    expect(await sample(m, 'keel_mode_transitions_total', { from: 'Critical', to: 'Normal' })).toBe(1);
    const total = (await keelSeries(m)).filter((s) => s.name === 'keel_mode_transitions_total');
    expect(total).toHaveLength(12);
  });

  it('actors, feed counts, the age of each path on the injected clock, and the active path', async () => {
    const now = { t: 1_000_000 };
    const m = fresh(now);
    m.actorUp('risk', true);
    m.actorUp('strategy', true);
    m.actorUp('strategy', false);
    m.actorRestarted('strategy');
    expect(await sample(m, 'keel_actor_up', { actor: 'risk' })).toBe(1);
    expect(await sample(m, 'keel_actor_up', { actor: 'strategy' })).toBe(0);
    expect(await sample(m, 'keel_actor_restarts_total', { actor: 'strategy' })).toBe(1);

    now.t += 7_000; // nothing received yet: the age runs from construction
    expect(await sample(m, 'keel_feed_age_seconds', { source: 'ws' })).toBe(7);
    m.feedMessage('ws', 'candles', now.t - 500);
    m.feedMessage('ws', 'mids', now.t - 2_000); // an older stamp does not make the path younger... or older
    m.feedMessage('rest', 'mids', now.t - 3_000);
    expect(await sample(m, 'keel_feed_age_seconds', { source: 'ws' })).toBe(0.5);
    expect(await sample(m, 'keel_feed_age_seconds', { source: 'rest' })).toBe(3);
    now.t += 1_500;
    expect(await sample(m, 'keel_feed_age_seconds', { source: 'ws' })).toBe(2);
    expect(await sample(m, 'keel_feed_messages_total', { source: 'ws', channel: 'candles' })).toBe(1);
    expect(await sample(m, 'keel_feed_messages_total', { source: 'ws', channel: 'mids' })).toBe(1);

    m.setFeedPath('rest');
    for (const source of FEED_PATHS) expect(await sample(m, 'keel_feed_source', { source })).toBe(source === 'rest' ? 1 : 0);
  });

  it('orders, rejections by bounded reason, denials, latencies in seconds, fills', async () => {
    const m = fresh();
    m.orderStatus('submitting');
    m.orderStatus('resting');
    m.orderStatus('resting');
    m.orderRejected('order 0: Order must have minimum value of $10.');
    m.orderRejected('circuit open: exchange');
    m.orderRejected('something new the venue says');
    m.riskDenied('leverage');
    m.observeTickToOrderMs(12);
    m.observeTickToOrderMs(Number.NaN); // dropped
    m.observeOrderAckMs(250);
    m.observeOrderAckMs(-1); // dropped
    m.fill({ coin: 'BTC', side: 'buy' });
    m.fill({ coin: 'DOGE', side: 'sell' });
    expect(await sample(m, 'keel_orders_total', { status: 'resting' })).toBe(2);
    expect(await sample(m, 'keel_orders_total', { status: 'submitting' })).toBe(1);
    expect(await sample(m, 'keel_order_rejections_total', { reason: 'min_notional' })).toBe(1);
    expect(await sample(m, 'keel_order_rejections_total', { reason: 'circuit_open' })).toBe(1);
    expect(await sample(m, 'keel_order_rejections_total', { reason: 'other' })).toBe(1);
    expect(await sample(m, 'keel_risk_denials_total', { reason: 'leverage' })).toBe(1);
    expect(await sample(m, 'keel_tick_to_order_seconds_count')).toBe(1);
    expect(await sample(m, 'keel_tick_to_order_seconds_sum')).toBeCloseTo(0.012, 9);
    expect(await sample(m, 'keel_tick_to_order_seconds_bucket', { le: '0.01' })).toBe(0);
    expect(await sample(m, 'keel_tick_to_order_seconds_bucket', { le: '0.025' })).toBe(1);
    expect(await sample(m, 'keel_order_ack_seconds_count')).toBe(1);
    expect(await sample(m, 'keel_order_ack_seconds_sum')).toBe(0.25);
    expect(await sample(m, 'keel_fills_total', { coin: 'BTC', side: 'buy' })).toBe(1);
    expect(await sample(m, 'keel_fills_total', { coin: 'other', side: 'sell' })).toBe(1);
  });

  it('positions: Decimals converted, absent configured coins set flat, unconfigured ones summed under other', async () => {
    const m = fresh();
    m.setPositions([
      { coin: 'BTC', szi: dec('0.015'), notionalUsd: dec('900.5') },
      { coin: 'ETH', szi: dec('-2'), notionalUsd: dec('-6000') },
    ]);
    expect(await sample(m, 'keel_position_size', { coin: 'ETH' })).toBe(-2);
    expect(await sample(m, 'keel_position_notional_usd', { coin: 'ETH' })).toBe(6000);
    m.setPositions([
      { coin: 'BTC', szi: dec('0.02'), notionalUsd: 1200 },
      { coin: 'SOL', szi: 3, notionalUsd: 450 },
      { coin: 'XRP', szi: -10, notionalUsd: 50 },
    ]);
    expect(await sample(m, 'keel_position_size', { coin: 'BTC' })).toBe(0.02);
    expect(await sample(m, 'keel_position_size', { coin: 'ETH' })).toBe(0);
    expect(await sample(m, 'keel_position_notional_usd', { coin: 'ETH' })).toBe(0);
    expect(await sample(m, 'keel_position_size', { coin: 'other' })).toBe(-7);
    expect(await sample(m, 'keel_position_notional_usd', { coin: 'other' })).toBe(500);
  });

  it('account gauges; a non-finite value keeps the last good one', async () => {
    const m = fresh();
    m.setEquityUsd(dec('100123.45'));
    m.setDrawdownRatio(0.042);
    m.setDailyPnlUsd(dec('-321.5'));
    m.setEquityUsd(Number.POSITIVE_INFINITY);
    expect(await sample(m, 'keel_equity_usd')).toBe(100123.45);
    expect(await sample(m, 'keel_drawdown_ratio')).toBe(0.042);
    expect(await sample(m, 'keel_daily_pnl_usd')).toBe(-321.5);
  });

  it('reconciliation: runs by result, differences by kind (pending included), last run time', async () => {
    const now = { t: 1_700_000_123_000 };
    const m = fresh(now);
    const counts = { resolveOrder: 0, applyFill: 2, adoptPosition: 0, adoptOrder: 0, cancelOrder: 0, protectPosition: 0, reportExternal: 1 };
    m.reconciliationRun({ clean: true, counts, pending: [] });
    m.reconciliationRun({ clean: false, counts: { ...counts, cancelOrder: 3 }, pending: [{ cloid: '0x1', state: 'unknown', why: 'not yet' }] }, 1_700_000_200_000);
    m.reconciliationFailed();
    expect(await sample(m, 'keel_reconciliation_runs_total', { result: 'clean' })).toBe(1);
    expect(await sample(m, 'keel_reconciliation_runs_total', { result: 'dirty' })).toBe(1);
    expect(await sample(m, 'keel_reconciliation_runs_total', { result: 'error' })).toBe(1);
    expect(await sample(m, 'keel_reconciliation_differences_total', { kind: 'applyFill' })).toBe(4);
    expect(await sample(m, 'keel_reconciliation_differences_total', { kind: 'cancelOrder' })).toBe(3);
    expect(await sample(m, 'keel_reconciliation_differences_total', { kind: 'reportExternal' })).toBe(2);
    expect(await sample(m, 'keel_reconciliation_differences_total', { kind: 'pending' })).toBe(1);
    expect(await sample(m, 'keel_reconciliation_last_run_timestamp_seconds')).toBe(1_700_000_123);
  });

  it('health: database errors, event-loop delay, dead-man expiry, alerts, black-box events', async () => {
    const m = fresh();
    m.dbError();
    m.dbError();
    m.setEventLoopDelayMs(35);
    m.setDeadmanExpiry(1_700_000_060_000);
    expect(await sample(m, 'keel_deadman_expiry_timestamp_seconds')).toBe(1_700_000_060);
    m.setDeadmanExpiry(undefined);
    m.alertSent('telegram', 'critical');
    m.alertSent('email', 'critical');
    m.blackboxEvent('decision');
    expect(await sample(m, 'keel_db_errors_total')).toBe(2);
    expect(await sample(m, 'keel_event_loop_delay_seconds')).toBe(0.035);
    expect(await sample(m, 'keel_deadman_expiry_timestamp_seconds')).toBe(0);
    expect(await sample(m, 'keel_alerts_sent_total', { channel: 'telegram', severity: 'critical' })).toBe(1);
    expect(await sample(m, 'keel_alerts_sent_total', { channel: 'email', severity: 'critical' })).toBe(1);
    expect(await sample(m, 'keel_blackbox_events_total', { kind: 'decision' })).toBe(1);
  });
});

describe('bounded labels', () => {
  it('the closed sets here agree with the modules they mirror', () => {
    for (const c of CHILDREN) expect(METRIC_ACTORS).toContain(c);
    expect([...BREAKER_ENDPOINTS]).toEqual([...BREAKER_CLASSES]);
    expect([...BLACKBOX_EVENT_KINDS]).toEqual([...BLACKBOX_KINDS]);
  });

  it('maps the venue refusals keel knows to their reasons, and nothing else to a new label', () => {
    const cases: [string, string][] = [
      [ERR.tick, 'tick_size'],
      ['order 0: Order must have minimum value of $10.', 'min_notional'],
      [ERR.margin, 'margin'],
      ['Insufficient margin to place order. asset=3', 'margin'],
      [ERR.reduceOnly, 'reduce_only'],
      ['Post only order would have immediately matched, bbo was 100@101.', 'post_only'],
      [ERR.iocNoMatch, 'ioc_no_match'],
      [ERR.noLiquidity, 'no_liquidity'],
      [ERR.priceBand, 'price_band'],
      ['Order price too far from oracle', 'price_band'],
      [ERR.tpsl, 'invalid_tpsl'],
      [ERR.cloid, 'duplicate_cloid'],
      [ERR.parentFailed, 'parent_failed'],
      [ERR.invalidAsset, 'invalid_order'],
      [ERR.invalidSize, 'invalid_order'],
      [ERR.zeroSize, 'invalid_order'],
      ['Order has invalid price.', 'invalid_order'],
      ['L1 error: User or API Wallet 0xabc does not exist.', 'signer'],
      ['Invalid nonce: duplicate nonce 1741107452532', 'nonce'],
      ['Action already expired', 'expired'],
      ['not sent: expired while waiting for request weight', 'expired'],
      ['not sent: weight budget: wait for 1 abandoned (budget closed)', 'not_sent'],
      ['circuit open: exchange', 'circuit_open'],
      ['rate_limited: 429', 'rate_limited'],
      ['', 'other'],
      ['the venue invented a new refusal', 'other'],
    ];
    for (const [error, reason] of cases) expect(rejectionReason(error), error).toBe(reason);
    // Every placement refusal the simulator can produce has its own reason.
    for (const e of [ERR.invalidAsset, ERR.zeroSize, ERR.invalidSize, ERR.tick, ERR.minValue, ERR.margin, ERR.reduceOnly, ERR.iocNoMatch, ERR.noLiquidity, ERR.priceBand, ERR.tpsl, ERR.cloid, ERR.parentFailed]) {
      expect(rejectionReason(e), e).not.toBe('other');
    }
  });

  it('whatever strings reach the typed methods, the set of series never grows and every label stays in its closed set', async () => {
    const m = fresh();
    const before = await keelSeries(m);
    const key = (s: { name: string; labels: Labels }) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;
    const known = new Set(before.map(key));
    const anyString = fc.oneof(fc.string(), fc.constantFrom('BTC', 'ETH', 'Normal', 'risk', 'ws', 'rest', 'buy', 'leverage', 'telegram', 'critical', 'input', 'open'));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 13 }), anyString, anyString), { maxLength: 40 }), async (calls) => {
        for (const [op, a, b] of calls) {
          // The casts stand for a caller that bypassed the types (a parsed-but-unchecked value).
          switch (op) {
            case 0: m.setMode(a as never); break;
            case 1: m.actorUp(a as MetricActor, true); break;
            case 2: m.actorRestarted(a as MetricActor); break;
            case 3: m.feedMessage(a as never, b as never, 1); break;
            case 4: m.setFeedPath(a as never); break;
            case 5: m.orderStatus(a as OrderState); break;
            case 6: m.orderRejected(a); break;
            case 7: m.riskDenied(a as DenialReason); break;
            case 8: m.fill({ coin: a, side: b as never }); break;
            case 9: m.setPositions([{ coin: a, szi: 1, notionalUsd: 2 }]); break;
            case 10: m.blackboxEvent(a as never); break;
            case 11: m.alertSent(a as never, b as never); break;
            case 12: m.fill({ coin: a, side: 'buy' }); break;
            default: m.orderRejected(`${a} ${b}`);
          }
        }
        const after = await keelSeries(m);
        expect(after.length).toBe(before.length);
        for (const s of after) expect(known.has(key(s)), key(s)).toBe(true);
      }),
      { seed: 5, numRuns: 60 },
    );
  });
});

describe('sources read at scrape time', () => {
  /** A venue whose info endpoint is down; nothing else is used. */
  function downInner(): VenuePort {
    const unused = () => {
      throw new Error('not used in this test');
    };
    return {
      network: 'paper',
      url: 'http://127.0.0.1:1',
      account: '0x0000000000000000000000000000000000000001',
      mids: () => Promise.reject(new VenueError('transport', 'connect ECONNREFUSED')),
      instruments: unused,
      candles: unused,
      accountState: unused,
      openOrders: unused,
      orderStatus: unused,
      fills: unused,
      place: unused,
      cancel: unused,
      scheduleCancel: unused,
      updateLeverage: unused,
      subscribeMarket: unused,
      subscribeUser: unused,
      onConnectionState: () => () => {},
      close: () => Promise.resolve(),
    } as VenuePort;
  }

  it("breakers: the resilient venue's states, opossum's window counts and each transition", async () => {
    const budget = new WeightBudget({ perMinute: 1_000_000, initialFraction: 1 });
    const venue = createResilientVenue(downInner(), { budget, breakers: { info: { volumeThreshold: 2, resetTimeoutMs: 60_000 } } });
    const m = fresh();
    const detach = m.attachVenue(venue);
    for (let i = 0; i < 4 && venue.breakerStates().info !== 'open'; i++) await venue.mids().catch(() => undefined);
    expect(venue.breakerStates().info).toBe('open');
    expect(await sample(m, 'keel_breaker_state', { endpoint: 'info', state: 'open' })).toBe(1);
    expect(await sample(m, 'keel_breaker_state', { endpoint: 'info', state: 'closed' })).toBe(0);
    expect(await sample(m, 'keel_breaker_state', { endpoint: 'exchange', state: 'closed' })).toBe(1);
    expect(await sample(m, 'keel_breaker_transitions_total', { endpoint: 'info', to: 'open' })).toBe(1);
    const stats = venue.breakerStats().info;
    expect(stats.failures).toBeGreaterThanOrEqual(2);
    expect(await sample(m, 'keel_breaker_window_calls', { endpoint: 'info', event: 'failures' })).toBe(stats.failures);
    expect(await sample(m, 'keel_breaker_window_calls', { endpoint: 'info', event: 'fires' })).toBe(stats.fires);
    detach();
    await venue.close();
    budget.close();
  });

  it('weight budget: available and capacity as gauges, 429s as a counter that never double counts', async () => {
    const clock: BudgetClock = { now: () => 0, setTimeout: () => 0, clearTimeout: () => {} };
    const budget = new WeightBudget({ clock, perMinute: 1200, margin: 0.1, initialFraction: 1 });
    budget.onRateLimited(); // before attaching: not ours to count
    const m = fresh();
    m.attachBudget(budget);
    budget.charge(100);
    expect(await sample(m, 'keel_request_weight_available')).toBeLessThanOrEqual(0);
    expect(await sample(m, 'keel_request_weight_capacity')).toBe(1080);
    expect(await sample(m, 'keel_rate_limited_total')).toBe(0);
    budget.onRateLimited();
    budget.onRateLimited();
    expect(await sample(m, 'keel_rate_limited_total')).toBe(2);
    expect(await sample(m, 'keel_rate_limited_total')).toBe(2);
    m.close();
    budget.onRateLimited();
    expect(await sample(m, 'keel_rate_limited_total')).toBe(2);
    budget.close();
  });

  it('black box: drops and failed flushes by delta, the backlog, flush latency per flush; a throwing source keeps the last values', async () => {
    let s = { dropped: 5, flushes: 10, flushErrors: 1, totalFlushMs: 40, lastFlushMs: 4, pending: 0 };
    let broken = false;
    const source: BlackboxSource = {
      stats: () => {
        if (broken) throw new Error('closed');
        return s;
      },
    };
    const m = fresh();
    m.attachBlackbox(source);
    expect(await sample(m, 'keel_blackbox_dropped_total')).toBe(0);
    expect(await sample(m, 'keel_blackbox_write_seconds_count')).toBe(0);
    s = { dropped: 7, flushes: 11, flushErrors: 1, totalFlushMs: 42.5, lastFlushMs: 2.5, pending: 3 };
    expect(await sample(m, 'keel_blackbox_dropped_total')).toBe(2);
    expect(await sample(m, 'keel_blackbox_write_seconds_count')).toBe(1);
    expect(await sample(m, 'keel_blackbox_write_seconds_bucket', { le: '0.0025' })).toBe(1);
    expect(await sample(m, 'keel_blackbox_pending_events')).toBe(3);
    s = { dropped: 7, flushes: 15, flushErrors: 3, totalFlushMs: 82.5, lastFlushMs: 1, pending: 0 };
    expect(await sample(m, 'keel_blackbox_write_seconds_count')).toBe(5);
    expect(await sample(m, 'keel_blackbox_write_seconds_sum')).toBeCloseTo(0.0825 - 0.04, 9);
    expect(await sample(m, 'keel_blackbox_write_seconds_bucket', { le: '0.01' })).toBe(5); // 4 flushes of 10 ms each (mean), 1 of 2.5
    expect(await sample(m, 'keel_blackbox_write_seconds_bucket', { le: '0.005' })).toBe(1);
    expect(await sample(m, 'keel_blackbox_write_errors_total')).toBe(2);
    broken = true;
    expect(await sample(m, 'keel_blackbox_write_errors_total')).toBe(2);
  });
});
