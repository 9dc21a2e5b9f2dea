#!/usr/bin/env bash
# Runs a throwaway Prometheus on loopback that scrapes a running keel with keel's alert rules,
# for checking dashboards' queries and alerts by hand (the automated check is
# tests/integration/metrics-prometheus.test.ts).
#
#   scripts/prometheus-test.sh [keel host:port, default 127.0.0.1:9464] [prometheus port, default 9090]
#
# Needs Debian's prometheus package (apt-get install -y --no-install-recommends prometheus).
# Storage lives in a temp dir removed on exit; Ctrl-C stops it.
set -euo pipefail

target="${1:-127.0.0.1:9464}"
port="${2:-9090}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rules="$here/grafana/prometheus/rules/keel.rules.yml"

for bin in prometheus promtool; do
  command -v "$bin" >/dev/null || { echo "$bin not found: apt-get install -y --no-install-recommends prometheus" >&2; exit 1; }
done

dir="$(mktemp -d -t keel-prometheus-XXXXXX)"
trap 'rm -rf "$dir"' EXIT
cat >"$dir/prometheus.yml" <<YAML
global: { scrape_interval: 5s, evaluation_interval: 5s }
rule_files: ["$rules"]
scrape_configs:
  - job_name: keel
    static_configs: [{ targets: ["$target"] }]
YAML
promtool check config "$dir/prometheus.yml"
promtool test rules "$here/grafana/prometheus/rules/keel.rules.test.yml"
if command -v curl >/dev/null && curl -fsS "http://$target/metrics" -o "$dir/metrics.txt"; then
  promtool check metrics <"$dir/metrics.txt" && echo "promtool check metrics: OK ($target)"
else
  echo "warning: could not fetch http://$target/metrics (is keel running?)" >&2
fi
echo "Prometheus on http://127.0.0.1:$port scraping $target (Ctrl-C to stop)"
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" --web.listen-address="127.0.0.1:$port" --log.level=warn &
pid=$!
# Stopping this script stops its Prometheus too (then the EXIT trap removes the temp dir).
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' INT TERM
wait "$pid" || true
