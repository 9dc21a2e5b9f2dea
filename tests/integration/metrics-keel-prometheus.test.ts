/**
 * Issue 5, acceptance 1, literally: a real Prometheus scrapes a running `keel run` (the embedded
 * simulator, paper trading at a fast replay speed) and every query of the Grafana dashboards and
 * of the alert rules returns data.
 *
 *  - `promtool check metrics` finds no problem in keel's own `/metrics` body;
 *  - each dashboard expression, Grafana's variables substituted as a dashboard over the last hour
 *    with "All" instances would, returns a non-empty result. The only exceptions are listed in
 *    KNOWN_EMPTY with the reason; for each, the series it reads must still exist;
 *  - each template variable's `label_values(...)` selector finds series carrying that label;
 *  - each alert rule's expression evaluates cleanly and every series it selects exists. An alert
 *    expression is a condition (`… == 1`, `… > 0.05`): on a healthy keel it is empty by design, so
 *    "returns data" is asserted on the series each rule reads, which is what an empty alert
 *    expression silently depends on; and Prometheus itself reports every rule healthy.
 *
 * tests/integration/metrics-prometheus.test.ts does the same against a KeelMetrics fed in-process
 * (with faults provoked so the alerts fire); this one proves the wiring of the real runtime.
 *
 * Without the binaries this file FAILS (install: apt-get install -y --no-install-recommends
 * prometheus), unless KEEL_SKIP_PROMETHEUS=1 says to skip it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killAll, removeTempDirs, startKeel, tempDir, type KeelProcess } from '../helpers/processes.ts';
import { DASHBOARDS, RULES, dashboardExprs, grafanaExpand, prometheusTooling, ruleSpecs, selectors, templateSelectors, freePort, waitFor } from '../helpers/prometheus.ts';



const missing = prometheusTooling();

// ---------------------------------------------------------------------------------------------
// Queries used by the dashboards and the rules (as in metrics-prometheus.test.ts)
// ---------------------------------------------------------------------------------------------








/**
 * Dashboard expressions allowed to be empty from this running keel, each with why. Not a filter on
 * failures: the series each one reads must still be scraped, and the reason is checked below.
 */
const KNOWN_EMPTY: Readonly<Record<string, { readonly reads: string; readonly why: string }>> = {};

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


interface PromResult {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

let promUrl = '';
async function query(q: string): Promise<{ status: string; error?: string; result: PromResult[] }> {
  const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(5_000) });
  const body = (await r.json()) as { status: string; error?: string; data?: { resultType: string; result: PromResult[] | [number, string] } };
  const result = body.data?.resultType === 'vector' ? (body.data.result as PromResult[]) : body.data?.resultType === 'scalar' ? [{ metric: {}, value: body.data.result as [number, string] }] : [];
  return { status: body.status, ...(body.error ? { error: body.error } : {}), result };
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

describe.skipIf(missing.length > 0)('a real Prometheus scraping a running keel', () => {
  let keel: KeelProcess;
  let prom: ChildProcess | undefined;
  let promLog = '';
  const logs = () => `${keel?.child.tail(10) ?? ''}\nprometheus log:\n${promLog.slice(-3000)}`;

  beforeAll(async () => {
    const dir = tempDir('metrics-keel-prom');
    keel = await startKeel({ dataDir: path.join(dir, 'data'), env: { KEEL_PAPER_SPEED: '240' } });
    await waitFor('keel ready (/readyz 200)', async () => ((await fetch(`${keel.opsUrl}/readyz`, { signal: AbortSignal.timeout(2_000) })).status === 200 ? true : undefined), 20_000, logs);

    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const config = {
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [RULES],
      scrape_configs: [{ job_name: 'keel', scrape_interval: '1s', scrape_timeout: '900ms', static_configs: [{ targets: [new URL(keel.opsUrl).host] }] }],
    };
    const configFile = path.join(dir, 'prometheus.yml');
    writeFileSync(configFile, JSON.stringify(config)); // JSON is YAML
    prom = spawn('prometheus', [`--config.file=${configFile}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    prom.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prom.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    await waitFor('Prometheus to be ready', async () => ((await fetch(`${promUrl}/-/ready`)).ok ? true : undefined), 15_000, logs);
    await waitFor('a first scrape of keel', async () => ((await query('up{job="keel"} == 1')).result.length === 1 ? true : undefined), 10_000, logs);
    // Rates, increases and quantiles over 1m need at least two samples with movement: a few scrapes.
    await waitFor(
      'five scrapes',
      async () => {
        const r = await query('count_over_time(up{job="keel"}[1m])');
        return Number(r.result[0]?.value[1] ?? 0) >= 5 ? true : undefined;
      },
      15_000,
      logs,
    );
  }, 60_000);

  afterAll(async () => {
    if (prom && prom.exitCode === null) {
      const exited = new Promise((r) => prom!.once('exit', r));
      prom.kill('SIGTERM');
      await Promise.race([exited, sleep(5_000)]);
      if (prom.exitCode === null) prom.kill('SIGKILL');
    }
    await killAll();
    removeTempDirs();
  });

  it("promtool check metrics: no problems in keel's own /metrics", async () => {
    const r = await fetch(`${keel.opsUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    expect(r.status).toBe(200);
    const text = await r.text();
    expect(text).toMatch(/^keel_mode\{mode="Normal"[^}]*\} 1$/m);
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect({ status: check.status, out: `${check.stdout}${check.stderr}` }).toEqual({ status: 0, out: '' });
  });

  it('the dead-man switch is armed, so its expiry panel has data', async () => {
    const dm = (await keel.status())['deadMan'] as { expiry?: number } | undefined;
    expect(dm?.expiry, 'deadMan.expiry in /status').toEqual(expect.any(Number));
  });

  it('every dashboard query returns data from the scraped keel', async () => {
    let total = 0;
    for (const file of DASHBOARDS) {
      const json = JSON.parse(readFileSync(file, 'utf8')) as { templating?: { list?: { query?: unknown }[] } };
      const exprs = dashboardExprs(json);
      expect(exprs.length).toBeGreaterThan(40);
      const failed: string[] = [];
      const empty: string[] = [];
      for (const e of exprs) {
        const r = await query(grafanaExpand(e));
        if (r.status !== 'success') failed.push(`${e}: ${r.error ?? r.status}`);
        else if (r.result.length === 0) empty.push(e);
      }
      expect(failed, 'dashboard queries that do not evaluate').toEqual([]);
      expect(
        empty.filter((e) => !(e in KNOWN_EMPTY)),
        'dashboard queries without data',
      ).toEqual([]);
      for (const e of empty) {
        const known = KNOWN_EMPTY[e]!;
        expect((await query(known.reads)).result.length, `${e} is known empty (${known.why}), but the series it reads must be scraped`).toBeGreaterThan(0);
      }
      for (const { selector, label } of templateSelectors(json)) {
        const r = await query(selector);
        expect(r.result.length, selector).toBeGreaterThan(0);
        for (const s of r.result) expect(s.metric[label], `${selector} has ${label}`).toBeTruthy();
      }
      total += exprs.length;
    }
    expect(total).toBeGreaterThan(0);
  });

  it('every rule expression evaluates, every series a rule selects exists, and every rule is healthy', async () => {
    const rules = ruleSpecs();
    expect(rules.length).toBeGreaterThan(10);
    const failed: string[] = [];
    const absentSeries: string[] = [];
    for (const rule of rules) {
      const name = rule.alert ?? rule.record ?? '?';
      const r = await query(rule.expr);
      if (r.status !== 'success') failed.push(`${name}: ${r.error ?? r.status}`);
      const sels = selectors(rule.expr);
      expect(sels.length, `${name}: selects something`).toBeGreaterThan(0);
      for (const s of sels) if ((await query(s)).result.length === 0) absentSeries.push(`${name}: ${s}`);
    }
    expect(failed, 'rule expressions that do not evaluate').toEqual([]);
    expect(absentSeries, 'series selected by rules but not exposed by keel').toEqual([]);

    const loaded = await waitFor(
      'every rule evaluated',
      async () => {
        const body = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.length === rules.length && all.every((x) => x.health !== 'unknown') ? all : undefined;
      },
      10_000,
      logs,
    );
    expect(loaded.filter((x) => x.health !== 'ok').map((x) => `${x.name}: ${x.health} ${x.lastError ?? ''}`)).toEqual([]);
  });
});
