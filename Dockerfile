# syntax=docker/dockerfile:1
#
# keel: the trading runtime on Node.js 24 (slim), multi-stage.
#
#   docker build -t keel .
#   docker run --rm -e KEEL_API_TOKEN=$(openssl rand -hex 24) -v keel-data:/data -p 127.0.0.1:9464:9464 keel
#
# Paper mode by default (the embedded simulator, bundled market data). Live: KEEL_NETWORK,
# KEEL_ACCOUNT, KEEL_KEYSTORE + KEEL_KEYSTORE_PASSWORD_FILE (mount them read-only); see
# docker-compose.yml and RUNBOOK.md.
#
# Ops HTTP: keel binds 0.0.0.0:9464 inside the container so Prometheus can scrape /metrics across
# the compose network. keel refuses to bind off loopback without a bearer token, so the container
# needs KEEL_API_TOKEN (or KEEL_API_TOKEN_FILE, a Docker secret) and stops at once, with a message
# naming the variable, without one: the control endpoints are never open. Publish the port on the
# host's loopback only. The HEALTHCHECK calls /healthz from inside the container.
#
# NODE_IMAGE: any Node 24 image with the official layout (/usr/local/bin/node, headers in
# /usr/local/include/node). scripts/test-container.sh builds with a locally assembled one.
ARG NODE_IMAGE=node:24-slim

# ── build: production dependencies, the native SQLite addon compiled here ───────────────────
FROM ${NODE_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# better-sqlite3 builds against this image's own Node headers: node-gyp downloads nothing.
ENV npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
COPY scripts/build-native.mjs scripts/build-native.mjs
RUN npm ci --omit=dev \
 && node -e "new (require('better-sqlite3'))(':memory:').close()" \
 && npm cache clean --force

# ── runtime: no compiler, non-root, data on a volume ────────────────────────────────────────
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    KEEL_DATA_DIR=/data \
    KEEL_HTTP_ADDR=0.0.0.0:9464
RUN groupadd --system --gid 10001 keel \
 && useradd --system --uid 10001 --gid keel --home-dir /data --no-create-home --shell /usr/sbin/nologin keel \
 && mkdir -p /data \
 && chown keel:keel /data \
 && chmod 700 /data
WORKDIR /app
# Code and dependencies belong to root and are read-only for keel: only /data is writable.
COPY --from=build /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY bin ./bin
COPY machines ./machines
COPY migrations ./migrations
COPY supervisor ./supervisor
COPY src ./src
COPY data ./data
COPY --chmod=755 docker/entrypoint.sh /usr/local/bin/keel-entrypoint
COPY --chmod=755 docker/keel.sh /usr/local/bin/keel
USER keel
VOLUME ["/data"]
EXPOSE 9464
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.KEEL_HTTP_ADDR || ':9464').split(':').pop() + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# keel drains on SIGTERM (no new orders, in-flight ones resolved, state flushed) and exits 0;
# give it time (compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/keel-entrypoint"]
CMD ["node", "src/cli/main.ts", "run"]
