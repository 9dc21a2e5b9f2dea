#!/bin/sh
# keel's container entrypoint. The ops HTTP server binds 0.0.0.0:9464 in the container (so
# Prometheus can scrape it over the compose network), and keel refuses to bind off loopback without
# a bearer token: the token comes from KEEL_API_TOKEN, or from the file KEEL_API_TOKEN_FILE names
# (a Docker secret). Then the command runs as PID 1's only child (compose `init: true`) or as PID 1,
# and receives SIGTERM directly: keel drains and exits 0.
set -eu
if [ -z "${KEEL_API_TOKEN:-}" ] && [ -n "${KEEL_API_TOKEN_FILE:-}" ]; then
  KEEL_API_TOKEN=$(cat "$KEEL_API_TOKEN_FILE")
  export KEEL_API_TOKEN
fi
exec "$@"
