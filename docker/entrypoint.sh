#!/bin/sh
# Starts the same CLI the tests exercise. The WebSocket token comes from a mounted file
# (/run/secrets/appserver_token) or, failing that, from $APPSERVER_WS_TOKEN written to a
# private file; without either, a non-loopback bind refuses to start (by design).
set -eu
TOKEN_FILE=/run/secrets/appserver_token
if [ ! -f "$TOKEN_FILE" ] && [ -n "${APPSERVER_WS_TOKEN:-}" ]; then
  TOKEN_FILE="$(mktemp)"
  chmod 600 "$TOKEN_FILE"
  printf '%s' "$APPSERVER_WS_TOKEN" > "$TOKEN_FILE"
fi
# The server's children (commands the agent runs) inherit its environment: keep the token out.
unset APPSERVER_WS_TOKEN
if [ "${1:-}" = "serve" ] && [ -f "$TOKEN_FILE" ]; then
  exec appserver "$@" --ws-token-file "$TOKEN_FILE"
fi
exec appserver "$@"
