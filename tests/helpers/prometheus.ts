/**
 * Shared by the Prometheus tests: where the dashboards and rules are, whether the Debian
 * binaries are installed, and the PromQL each dashboard and rule uses.
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const RULES = path.join(ROOT, 'grafana/prometheus/rules/keel.rules.yml');
export const DASHBOARDS = [path.join(ROOT, 'grafana/dashboards/keel-overview.json')];
export const INSTALL = 'apt-get install -y --no-install-recommends prometheus';

export function onPath(bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    try {
      accessSync(path.join(dir, bin), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/**
 * The missing Prometheus binaries. When some are missing and KEEL_SKIP_PROMETHEUS is not 1, a
 * failing test says how to install them (CI installs them; a missing binary must not pass).
 */
export function prometheusTooling(): string[] {
  const missing = ['promtool', 'prometheus'].filter((b) => !onPath(b));
  if (missing.length > 0 && process.env.KEEL_SKIP_PROMETHEUS !== '1') {
    describe('Prometheus tooling', () => {
      it('is installed', () => {
        throw new Error(`${missing.join(' and ')} not found on PATH. Install Debian's Prometheus (${INSTALL}), or set KEEL_SKIP_PROMETHEUS=1 to skip these checks.`);
      });
    });
  }
  return missing;
}

/** Every `expr` in a dashboard (panels, nested rows, any depth). */
export function dashboardExprs(json: unknown): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k === 'expr' && typeof x === 'string') out.push(x);
        else walk(x);
      }
    }
  };
  walk(json);
  return out;
}

/** Grafana's variables as a dashboard over the last hour, "All" instances, would expand them. */
export function grafanaExpand(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', '1h')
    .replace(/\$\{?instance\}?/g, '.+');
}

/** The `label_values(selector, label)` queries of template variables. */
export function templateSelectors(json: { templating?: { list?: { query?: unknown; definition?: string }[] } }): { selector: string; label: string }[] {
  const out: { selector: string; label: string }[] = [];
  for (const v of json.templating?.list ?? []) {
    const q = typeof v.query === 'string' ? v.query : ((v.query as { query?: string } | undefined)?.query ?? v.definition ?? '');
    const m = /^label_values\((.+),\s*(\w+)\)$/.exec(q.trim());
    if (m) out.push({ selector: m[1]!, label: m[2]! });
  }
  return out;
}

export interface RuleSpec {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
}

export function ruleSpecs(): RuleSpec[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups: { rules: RuleSpec[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** The metric families keel, prom-client and Prometheus itself provide. */
const SELECTOR = /\b(keel_[a-z0-9_]+|process_[a-z0-9_]+|nodejs_[a-z0-9_]+|up)\b(\{[^}]*\})?/g;

/** Each instant-vector selector in an expression (`name{matchers}`), range and functions stripped. */
export function selectors(expr: string): string[] {
  return [...new Set([...expr.matchAll(SELECTOR)].map((m) => `${m[1]}${m[2] ?? ''}`))];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value (errors count as "not yet"); the last error and `log()` explain a timeout. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, log: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}\n${log()}`);
    await sleep(100);
  }
}
