/**
 * The container files, checked without a container engine (scripts/test-container.sh builds and
 * runs the image for real; this runs in `npm test`): the Dockerfile's contract (base, non-root
 * user, volume, health check on /healthz, SIGTERM, command), that every file the runtime imports is
 * copied into the image and not excluded by .dockerignore, and that docker-compose.yml and the
 * Alertmanager configuration refer to files, services, ports and severities that exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/processes.ts';

const read = (f: string) => readFileSync(path.join(REPO_ROOT, f), 'utf8');
const dockerfile = read('Dockerfile');
/** Dockerfile instructions, continuation lines joined. */
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));
const ignored = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

function runtimeStage(): string[] {
  const at = instructions.findIndex((l) => /^FROM .* AS runtime$/i.test(l));
  return instructions.slice(at);
}

/** Top-level paths the runtime stage copies from the build context. */
function copiedFromContext(): string[] {
  return runtimeStage()
    .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
    .flatMap((l) => l.split(/\s+/).slice(1, -1).filter((w) => !w.startsWith('--')));
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

describe('Dockerfile', () => {
  it('is multi-stage on node:24-slim; the runtime stage runs as keel with /data, a /healthz check, SIGTERM and keel run', () => {
    expect(instructions).toContain('ARG NODE_IMAGE=node:24-slim');
    expect(instructions.filter((l) => l.startsWith('FROM ${NODE_IMAGE}'))).toEqual(['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE} AS runtime']);
    const rt = runtimeStage();
    expect(rt).toContain('USER keel');
    expect(rt).toContain('VOLUME ["/data"]');
    expect(rt).toContain('STOPSIGNAL SIGTERM');
    expect(rt).toContain('CMD ["node", "src/cli/main.ts", "run"]');
    expect(rt.find((l) => l.startsWith('ENV '))).toMatch(/KEEL_DATA_DIR=\/data .*KEEL_HTTP_ADDR=0\.0\.0\.0:9464/);
    expect(rt.find((l) => l.startsWith('HEALTHCHECK '))).toMatch(/\/healthz/);
    // No compiler in the runtime stage: dependencies come built from the build stage.
    expect(rt.some((l) => /apt-get install/.test(l))).toBe(false);
    expect(rt).toContain('COPY --from=build /app/node_modules ./node_modules');
  });

  it('copies every file the runtime imports, and .dockerignore excludes none of them', () => {
    const copied = copiedFromContext();
    for (const c of copied) expect(existsSync(path.join(REPO_ROOT, c)), c).toBe(true);
    const roots = new Set(copied.map((c) => c.split('/')[0]!));
    for (const c of copied) expect(ignored.some((i) => c === i || c.startsWith(`${i}/`)), `${c} is in .dockerignore`).toBe(false);
    const bad: string[] = [];
    let scanned = 0;
    for (const dir of ['src', 'supervisor', 'machines', 'migrations']) {
      for (const file of walk(path.join(REPO_ROOT, dir)).filter((f) => f.endsWith('.ts'))) {
        for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
          scanned++;
          const target = path.relative(REPO_ROOT, path.resolve(path.dirname(file), m[1]!));
          if (!roots.has(target.split(path.sep)[0]!) || !existsSync(path.join(REPO_ROOT, target))) bad.push(`${path.relative(REPO_ROOT, file)} → ${target}`);
        }
      }
    }
    expect(bad).toEqual([]);
    expect(scanned).toBeGreaterThan(100);
    // The data directory, keys and the git history never enter the build context.
    for (const secret of ['var', '.git', '.env', 'node_modules', 'secrets']) expect(ignored).toContain(secret);
  });

  it('the entrypoint and the in-container keel are executable shell scripts that read KEEL_API_TOKEN_FILE', () => {
    for (const f of ['docker/entrypoint.sh', 'docker/keel.sh']) {
      expect(statSync(path.join(REPO_ROOT, f)).mode & 0o111).not.toBe(0);
      expect(read(f)).toMatch(/^#!\/bin\/sh\n/);
      expect(read(f)).toContain('KEEL_API_TOKEN_FILE');
    }
  });
});

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  profiles?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service> };
  const s = compose.services;

  it('has keel, the watchdog, Prometheus, Alertmanager and Grafana; ports on the host loopback only', () => {
    expect(Object.keys(s).sort()).toEqual(['alertmanager', 'grafana', 'keel', 'prometheus', 'watchdog']);
    for (const [name, svc] of Object.entries(s)) for (const p of svc.ports ?? []) expect(p, name).toMatch(/^127\.0\.0\.1:/);
    expect(s['keel']!.environment!['KEEL_API_TOKEN']).toMatch(/^\$\{KEEL_API_TOKEN:\?/);
    expect(s['watchdog']!.command).toEqual(['node', 'src/cli/main.ts', 'watchdog']);
    expect(s['watchdog']!.image).toBe(s['keel']!.image);
  });

  it('mounts files that exist (operator secrets aside) where the configs expect them', () => {
    for (const [name, svc] of Object.entries(s)) {
      for (const v of svc.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (!src.startsWith('./') || src.startsWith('./secrets')) continue;
        expect(existsSync(path.join(REPO_ROOT, src)), `${name}: ${src}`).toBe(true);
      }
    }
    expect(s['prometheus']!.volumes).toContain('./grafana/prometheus:/etc/prometheus:ro');
    expect(s['alertmanager']!.volumes).toContain('./docker/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro');
    // The dashboard provider reads the path the dashboards are mounted at.
    const provider = parse(read('grafana/provisioning/dashboards/keel.yaml')) as { providers: { options: { path: string } }[] };
    expect(s['grafana']!.volumes).toContain(`./grafana/dashboards:${provider.providers[0]!.options.path}:ro`);
  });

  it('Prometheus scrapes the keel service on the image’s port and alerts to the alertmanager service', () => {
    const prom = parse(read('grafana/prometheus/prometheus.yml')) as { scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[]; alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] } };
    const job = prom.scrape_configs.find((j) => j.job_name === 'keel')!;
    expect(job.static_configs[0]!.targets).toEqual(['keel:9464']);
    expect(instructions).toContain('EXPOSE 9464');
    expect(prom.alerting.alertmanagers[0]!.static_configs[0]!.targets).toEqual(['alertmanager:9093']);
  });
});

describe('docker/alertmanager.yml', () => {
  const am = parse(read('docker/alertmanager.yml'), { merge: true }) as { route: { receiver: string; routes: { matchers: string[]; receiver: string }[] }; receivers: { name: string }[] };

  it('routes every severity the rules use to a receiver that exists', () => {
    const receivers = new Set(am.receivers.map((r) => r.name));
    expect(receivers.has(am.route.receiver)).toBe(true);
    for (const r of am.route.routes) expect(receivers.has(r.receiver), r.receiver).toBe(true);
    const rules = parse(read('grafana/prometheus/rules/keel.rules.yml')) as { groups: { rules: { labels?: { severity?: string } }[] }[] };
    const severities = new Set(rules.groups.flatMap((g) => g.rules.map((r) => r.labels?.severity)).filter((x): x is string => !!x));
    expect(severities.size).toBeGreaterThan(0);
    for (const sev of severities) expect(am.route.routes.some((r) => r.matchers.includes(`severity="${sev}"`)), sev).toBe(true);
  });
});
