/**
 * keel's metrics against the real Prometheus tooling (Debian's `prometheus` package: `promtool`
 * and `prometheus`):
 *  - `promtool check metrics` finds no problem in KeelMetrics' exposition (and does find one in a
 *    deliberately bad one, so the check can fail);
 *  - `promtool check config` / `test rules` pass on grafana/prometheus;
 *  - a real Prometheus on loopback scrapes a tiny HTTP server serving the exposition of a
 *    KeelMetrics fed by real sources (the resilient venue against the simulator, with its
 *    breaker opened and a 429 and a rejection provoked by the simulator's faults; the weight
 *    budget; the black-box recorder on a SQLite file), evaluates the alert rules file, and
 *    EVERY query of the dashboards and the rules returns data: each dashboard query as written
 *    (Grafana's variables substituted), each rule's expression evaluates cleanly, and every
 *    series a rule selects exists. The rules are healthy, and the alerts this state implies
 *    (Emergency, the info breaker, the dead-man switch) are the ones Prometheus raises.
 *
 * Without the binaries this file FAILS (install: apt-get install -y --no-install-recommends
 * prometheus), unless KEEL_SKIP_PROMETHEUS=1 says to skip it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { dec, roundPrice } from '../../src/domain/decimal.ts';
import type { Cloid, OrderIntent } from '../../src/domain/types.ts';
import { KeelMetrics } from '../../src/ops/metrics.ts';
import { BlackboxRecorder } from '../../src/store/blackbox-recorder.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { createHyperliquidVenue } from '../../src/venue/index.ts';
import { createResilientVenue, type ResilientVenue } from '../../src/venue/resilient-venue.ts';
import { WeightBudget } from '../../src/venue/weight-budget.ts';
import { cloidOf, startRig, type SdkRig } from '../helpers/sim.ts';
import { DASHBOARDS, ROOT, RULES, dashboardExprs, grafanaExpand, prometheusTooling, ruleSpecs, selectors, templateSelectors, freePort, waitFor } from '../helpers/prometheus.ts';

const RULE_TESTS = path.join(ROOT, 'grafana/prometheus/rules/keel.rules.test.yml');
const PROM_CONFIG = path.join(ROOT, 'grafana/prometheus/prometheus.yml');
const DATASOURCES = path.join(ROOT, 'grafana/provisioning/datasources/prometheus.yaml');


const missing = prometheusTooling();

// ---------------------------------------------------------------------------------------------
// Queries used by the dashboards and the rules
// ---------------------------------------------------------------------------------------------








// ---------------------------------------------------------------------------------------------
// Processes and servers
// ---------------------------------------------------------------------------------------------


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface PromResult {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

let promUrl = '';
async function query(q: string): Promise<{ status: string; error?: string; result: PromResult[] }> {
  const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
  const body = (await r.json()) as { status: string; error?: string; data?: { resultType: string; result: PromResult[] | [number, string] } };
  const result = body.data?.resultType === 'vector' ? (body.data.result as PromResult[]) : body.data?.resultType === 'scalar' ? [{ metric: {}, value: body.data.result as [number, string] }] : [];
  return { status: body.status, ...(body.error ? { error: body.error } : {}), result };
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

describe.skipIf(missing.length > 0)('metrics with the real Prometheus tooling', () => {
  let dir: string;
  let rig: SdkRig;
  let venue: ResilientVenue;
  let budget: WeightBudget;
  let store: Store;
  let box: BlackboxRecorder;
  let metrics: KeelMetrics;
  let server: http.Server;
  let prom: ChildProcess | undefined;
  let promLog = '';
  const coins = ['BTC', 'ETH'];
  let restingBuy: (n: number) => OrderIntent;

  const setFaults = async (body: Record<string, number>) => {
    const r = await fetch(`${rig.sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(body) });
    expect(r.status).toBe(200);
  };

  /** Everything a running keel reports, through the typed methods (a second call moves counters and histograms). */
  function exercise(round: number) {
    const now = Date.now();
    metrics.setMode('Normal');
    metrics.setMode('Degraded');
    metrics.setMode('Emergency');
    for (const a of ['marketFeed', 'strategy', 'risk', 'orderManager'] as const) metrics.actorUp(a, true);
    metrics.actorRestarted('strategy');
    metrics.feedMessage('ws', 'candles', now);
    metrics.feedMessage('ws', 'mids', now);
    metrics.feedMessage('rest', 'mids', now - 5_000);
    metrics.setFeedPath('ws');
    metrics.orderStatus('submitting');
    metrics.orderStatus('resting');
    metrics.orderStatus('filled');
    metrics.riskDenied('max_positions');
    metrics.observeTickToOrderMs(4 + round);
    metrics.observeOrderAckMs(80 + round);
    metrics.fill({ coin: 'BTC', side: 'buy' });
    metrics.setPositions([{ coin: 'BTC', szi: dec('0.01'), notionalUsd: dec('650') }]);
    metrics.setEquityUsd(dec('100250.5'));
    metrics.setDrawdownRatio(0.012);
    metrics.setDailyPnlUsd(dec('250.5'));
    metrics.reconciliationRun({ clean: false, counts: { resolveOrder: 1, applyFill: 1, adoptPosition: 0, adoptOrder: 0, cancelOrder: 0, protectPosition: 0, reportExternal: 0 }, pending: [] }, now);
    metrics.reconciliationRun({ clean: true, counts: { resolveOrder: 0, applyFill: 0, adoptPosition: 0, adoptOrder: 0, cancelOrder: 0, protectPosition: 0, reportExternal: 0 }, pending: [] }, now);
    for (let i = 0; i < 3; i++) {
      const kind = i === 0 ? 'decision' : 'input';
      box.record(kind, kind === 'decision' ? 'strategy.signal' : 'feed.candle', { round, i }, now);
      metrics.blackboxEvent(kind);
    }
    box.flush();
    metrics.dbError();
    metrics.setEventLoopDelayMs(12);
    metrics.setDeadmanExpiry(now + 10_000); // renewal "stalled": due in 10 s
    metrics.alertSent('telegram', 'critical');
    metrics.alertSent('email', 'critical');
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'keel-metrics-prom-'));
    metrics = new KeelMetrics({ coins, network: 'paper', version: 'test' });

    // Real sources: the resilient venue against the simulator, the budget, the black box.
    rig = await startRig('metrics-prometheus', { bookIntervalMs: 0 });
    rig.sim.step(1_000);
    budget = new WeightBudget({ perMinute: 1_000_000, initialFraction: 1, seed: 3, backoff: { baseMs: 20, maxMs: 40 } });
    const adapter = createHyperliquidVenue({ network: 'paper', apiUrl: rig.sim.url, wallet: rig.agent, account: rig.master.address, timeoutMs: 3_000, now: () => rig.sim.clock.now() });
    venue = createResilientVenue(adapter, {
      budget,
      now: () => rig.sim.clock.now(),
      breakers: { info: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 120_000, rollingWindowMs: 60_000 } },
    });
    metrics.attachVenue(venue);
    metrics.attachBudget(budget);
    store = await openStore({ path: path.join(dir, 'keel.sqlite') });
    box = new BlackboxRecorder(store.raw, { flushIntervalMs: 60_000 });
    metrics.attachBlackbox(box);

    const mid = (await venue.mids()).get('BTC')!;
    restingBuy = (n) => ({ cloid: cloidOf(n) as Cloid, coin: 'BTC', assetId: 0, side: 'buy', sz: dec('0.001'), px: roundPrice(mid.mul(0.95), 5, 'down'), reduceOnly: false, tif: 'Gtc', kind: 'entry', createdAt: rig.sim.clock.now() });
    await setFaults({ reject: 1 });
    const placed = await venue.place(restingBuy(0x51), { expiresAfter: rig.sim.clock.now() + 30_000 });
    expect(placed.kind).toBe('rejected');
    if (placed.kind === 'rejected') {
      metrics.orderStatus('rejected');
      metrics.orderRejected(placed.error);
    }
    await setFaults({ rateLimit: 1 });
    await venue.mids().catch(() => undefined);
    await setFaults({ http5xx: 1 });
    for (let i = 0; i < 6 && venue.breakerStates().info !== 'open'; i++) await venue.mids().catch(() => undefined);
    await setFaults({});
    expect(venue.breakerStates().info).toBe('open');
    expect(budget.stats().rateLimited).toBe(1);

    exercise(0);

    server = http.createServer((req, res) => {
      if (req.url !== '/metrics') {
        res.writeHead(404).end();
        return;
      }
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
        (e: Error) => res.writeHead(500).end(e.message),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const target = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [RULES],
      scrape_configs: [{ job_name: 'keel', scrape_interval: '1s', scrape_timeout: '900ms', static_configs: [{ targets: [target] }] }],
    };
    const configFile = path.join(dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(config)); // JSON is YAML
    prom = spawn('prometheus', [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prom.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    const logTail = () => `prometheus log:\n${promLog.slice(-3000)}`;
    await waitFor('Prometheus to be ready', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined), 15_000, logTail);
    await waitFor('a first scrape', async () => ((await query('up{job="keel"} == 1')).result.length === 1 ? true : undefined), 10_000, logTail);
    // Between scrapes, so rates, increases and histogram quantiles see movement; a second 429
    // (on the exchange endpoint: the info breaker is open) for the same reason.
    exercise(1);
    await setFaults({ rateLimit: 1 });
    await venue.place(restingBuy(0x52), { expiresAfter: rig.sim.clock.now() + 30_000 });
    await setFaults({});
    expect(budget.stats().rateLimited).toBe(2);
    await waitFor(
      'four scrapes',
      async () => {
        const r = await query('count_over_time(up{job="keel"}[1m])');
        return Number(r.result[0]?.value[1] ?? 0) >= 4 ? true : undefined;
      },
      10_000,
      logTail,
    );
  }, 40_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (prom.exitCode === null) prom.kill('SIGKILL');
    }
    await new Promise((r) => server?.close(r));
    metrics?.close();
    box?.close();
    store?.close();
    await venue?.close();
    budget?.close();
    await rig?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('promtool check metrics: no problems in the exposition (and it does flag a bad one)', async () => {
    const text = await metrics.metrics();
    expect(text).toContain('keel_mode{mode="Emergency"} 1');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: r.status, out: `${r.stdout}${r.stderr}` }).toEqual({ status: 0, out: '' });
    const bad = spawnSync('promtool', ['check', 'metrics'], { input: '# HELP keel_bad_total x\n# TYPE keel_bad_total gauge\nkeel_bad_total 1\n', encoding: 'utf8' });
    expect(bad.status).not.toBe(0);
    expect(`${bad.stdout}${bad.stderr}`).toMatch(/_total/);
  });

  it('promtool: the compose config and its rules load, and the rule unit tests pass', () => {
    const cfg = spawnSync('promtool', ['check', 'config', PROM_CONFIG], { encoding: 'utf8' });
    expect(cfg.status, `${cfg.stdout}${cfg.stderr}`).toBe(0);
    const t = spawnSync('promtool', ['test', 'rules', RULE_TESTS], { encoding: 'utf8' });
    expect(t.status, `${t.stdout}${t.stderr}`).toBe(0);
    expect(t.stdout).toContain('SUCCESS');
  });

  it('every dashboard query returns data from the scraped keel', async () => {
    const provisioned = parseYaml(readFileSync(DATASOURCES, 'utf8')) as { datasources: { uid: string; type: string }[] };
    const uids = new Set(provisioned.datasources.filter((d) => d.type === 'prometheus').map((d) => d.uid));
    let total = 0;
    for (const file of DASHBOARDS) {
      const json = JSON.parse(readFileSync(file, 'utf8')) as { panels: { id: number; targets?: { datasource?: { uid?: string } }[] }[]; templating?: { list?: { query?: unknown }[] } };
      const ids = json.panels.map((p) => p.id);
      expect(new Set(ids).size, `${file}: panel ids unique`).toBe(ids.length);
      for (const p of json.panels) for (const t of p.targets ?? []) expect(uids.has(t.datasource?.uid ?? ''), `${file} panel ${p.id}: datasource is the provisioned one`).toBe(true);
      const exprs = dashboardExprs(json);
      expect(exprs.length).toBeGreaterThan(40);
      const empty: string[] = [];
      for (const e of exprs) {
        const r = await query(grafanaExpand(e));
        expect(r.status, `${e}: ${r.error ?? ''}`).toBe('success');
        if (r.result.length === 0) empty.push(e);
      }
      expect(empty, 'dashboard queries without data').toEqual([]);
      for (const { selector, label } of templateSelectors(json)) {
        const r = await query(selector);
        expect(r.result.length, selector).toBeGreaterThan(0);
        for (const s of r.result) expect(s.metric[label], `${selector} has ${label}`).toBeTruthy();
      }
      total += exprs.length;
    }
    expect(total).toBeGreaterThan(0);
  });

  it('the dashboards show every keel metric family keel exposes', async () => {
    const text = await metrics.metrics();
    const families = [...text.matchAll(/^# TYPE (keel_\w+) /gm)].map((m) => m[1]!);
    const used = DASHBOARDS.flatMap((f) => dashboardExprs(JSON.parse(readFileSync(f, 'utf8'))))
      .flatMap(selectors)
      .map((s) => s.replace(/\{.*$/, '').replace(/_(bucket|sum|count)$/, ''));
    expect(families.filter((f) => !used.includes(f))).toEqual([]);
  });

  it('every rule expression evaluates, every series a rule selects exists, and every rule is healthy', async () => {
    const rules = ruleSpecs();
    expect(rules.length).toBeGreaterThan(10);
    const absentSeries: string[] = [];
    for (const rule of rules) {
      const r = await query(rule.expr);
      expect(r.status, `${rule.alert ?? rule.record}: ${r.error ?? ''}`).toBe('success');
      const sels = selectors(rule.expr);
      expect(sels.length, `${rule.alert}: selects something`).toBeGreaterThan(0);
      for (const s of sels) if ((await query(s)).result.length === 0) absentSeries.push(`${rule.alert ?? rule.record}: ${s}`);
    }
    expect(absentSeries, 'series selected by rules but not exposed').toEqual([]);

    // Prometheus itself loaded the file and evaluates each rule without error.
    const loaded = await waitFor(
      'every rule evaluated',
      async () => {
        const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.length === rules.length && all.every((x) => x.health !== 'unknown') ? all : undefined;
      },
      10_000,
    );
    expect(loaded.filter((x) => x.health !== 'ok').map((x) => `${x.name}: ${x.health} ${x.lastError ?? ''}`)).toEqual([]);
  });

  it('the alerts this state implies are the ones Prometheus raises', async () => {
    const alerts = await waitFor(
      'the alerts',
      async () => {
        const body = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: { labels: Record<string, string>; state: string }[] } };
        const a = body.data.alerts;
        // Rule groups evaluate on their own tickers: wait until each expected alert is there.
        const expected = ['KeelEmergency', 'KeelDeadmanExpiringSoon', 'KeelBreakerOpen', 'KeelDatabaseErrors', 'KeelRateLimited', 'KeelReconciliationDifferences'];
        return expected.every((n) => a.some((x) => x.labels.alertname === n)) ? a : undefined;
      },
      10_000,
    );
    const by = (name: string) => alerts.filter((a) => a.labels.alertname === name);
    expect(by('KeelEmergency')).toMatchObject([{ state: 'firing', labels: { mode: 'Emergency', severity: 'critical', job: 'keel' } }]);
    expect(by('KeelDeadmanExpiringSoon')).toMatchObject([{ state: 'firing', labels: { severity: 'critical' } }]);
    // The info breaker the simulator's 5xx opened: pending until its `for` elapses.
    expect(by('KeelBreakerOpen')).toMatchObject([{ state: 'pending', labels: { endpoint: 'info', state: 'open' } }]);
    expect(by('KeelExchangeBreakerOpen')).toEqual([]);
    expect(by('KeelDatabaseErrors')).toMatchObject([{ state: 'firing' }]);
    expect(by('KeelRateLimited')).toMatchObject([{ state: 'firing' }]);
    expect(by('KeelReconciliationDifferences')).toMatchObject([{ state: 'firing', labels: { result: 'dirty' } }]);
    // keel is up, its feed is fresh, its drawdown small: those stay quiet.
    for (const quiet of ['KeelDown', 'KeelAbsent', 'KeelActorDown', 'KeelFeedStale', 'KeelDrawdownHigh', 'KeelDrawdownCritical', 'KeelBlackboxDropping']) expect(by(quiet), quiet).toEqual([]);
  });
});
