#!/usr/bin/env bash
# Run mixopt as users run Prefect: a local Prefect server bound to 127.0.0.1, the `mixopt` process
# work pool, every deployment of prefect.yaml (`prefect deploy --all`) and a process worker.
# Ctrl-C stops the worker and the server.
#
#   make serve                                   # SQLite under $PREFECT_HOME (default ~/.prefect)
#   PREFECT_SERVER_API_PORT=4300 make serve      # another port (default 4200)
#   PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://postgres:secret@127.0.0.1:5432/prefect make serve
#
# Logs: $MIXOPT_SERVE_LOGS (default out/serve)/server.log; the worker logs to this terminal.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
if [[ -x "$VENV/bin/prefect" ]]; then PREFECT="$VENV/bin/prefect"; PY="$VENV/bin/python"; else PREFECT=prefect; PY=python3; fi
HOST=127.0.0.1
PORT=${PREFECT_SERVER_API_PORT:-4200}
LOGS=${MIXOPT_SERVE_LOGS:-out/serve}
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_API_URL="http://$HOST:$PORT/api"
mkdir -p "$LOGS"

# The server and the worker run in their own sessions, so Ctrl-C reaches only this script, which
# stops the worker first (it reports to the server while it shuts down), then the server.
server="" worker=""
stop() {  # SIGTERM, then SIGKILL after 20 s
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    [[ -n "$worker" ]] && stop "$worker"
    [[ -n "$server" ]] && stop "$server"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

db="SQLite"
[[ -n "${PREFECT_API_DATABASE_CONNECTION_URL:-}" ]] && db="${PREFECT_API_DATABASE_CONNECTION_URL%%://*}"
echo "starting the Prefect server on $HOST:$PORT ($db; log: $LOGS/server.log)"
setsid "$PREFECT" server start --host "$HOST" --port "$PORT" --analytics-off >"$LOGS/server.log" 2>&1 &
server=$!

"$PY" - "$PREFECT_API_URL/health" "$server" <<'PYEOF' || { tail -n 40 "$LOGS/server.log"; exit 1; }
import os, sys, time, urllib.request
url, pid = sys.argv[1], int(sys.argv[2])
for _ in range(240):
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("the Prefect server exited")
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(1)
sys.exit("the Prefect server did not answer within 4 minutes")
PYEOF

"$PREFECT" --no-prompt work-pool create mixopt --type process --overwrite
"$PREFECT" --no-prompt deploy --all
echo
echo "Prefect UI: http://$HOST:$PORT  (run a deployment from Deployments > mixture-search > Run)"
echo "starting a process worker on the 'mixopt' pool (Ctrl-C stops the worker and the server)"
setsid "$PREFECT" worker start --pool mixopt --type process --install-policy never &
worker=$!
wait "$worker"
