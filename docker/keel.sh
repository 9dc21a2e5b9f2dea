#!/bin/sh
# `keel` inside the container (`docker compose exec keel keel status`): the CLI with the same
# token resolution as the entrypoint, so operator commands reach the control API.
set -eu
if [ -z "${KEEL_API_TOKEN:-}" ] && [ -n "${KEEL_API_TOKEN_FILE:-}" ]; then
  KEEL_API_TOKEN=$(cat "$KEEL_API_TOKEN_FILE")
  export KEEL_API_TOKEN
fi
exec node /app/src/cli/main.ts "$@"
