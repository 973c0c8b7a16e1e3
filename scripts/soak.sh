#!/usr/bin/env bash
# Soak test: start a gateway as `make run` does (own data directory, its
# own port), run `healthgw bench` against it at a moderate rate, then stop
# the gateway. Usage: scripts/soak.sh [RATE] [DURATION] [ADDR]
# With SOAK_PROFILE=HOST:PORT (a loopback address) the gateway serves its
# runtime profiles there (--debug-addr) and heap profiles from before and
# after the run are saved beside the logs (go tool pprof -diff_base
# heap-before.pb.gz heap-after.pb.gz shows what grew).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-20}
duration=${2:-10m}
addr=${3:-127.0.0.1:18080}
dir=$(mktemp -d "${TMPDIR:-/tmp}/healthgw-soak-XXXXXX")
make build >/dev/null
profile=${SOAK_PROFILE:-}
./bin/healthgw serve --addr "$addr" --data "$dir/data" --zk-dev-setup=false --log-format json \
	${profile:+--debug-addr "$profile"} >"$dir/serve.out" 2>"$dir/serve.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	curl -fsS "http://$addr/readyz" >/dev/null 2>&1 && break
	sleep 0.2
done
echo "gateway pid $pid, data $dir (logs in $dir/serve.log)"
heap() { [ -z "$profile" ] || curl -fsS "http://$profile/debug/pprof/heap?gc=1" -o "$dir/heap-$1.pb.gz" || true; }
heap before
status=0
./bin/healthgw bench --url "http://$addr" --data "$dir/data" --rate "$rate" --duration "$duration" --pid "$pid" --progress 30s || status=$?
heap after
[ -z "$profile" ] || echo "heap profiles: $dir/heap-before.pb.gz $dir/heap-after.pb.gz"
echo
echo "gateway metrics after the run:"
curl -fsS "http://$addr/metrics" | grep -E '^healthgw_(ledger_entries|ledger_checkpoint|ledger_append_duration_seconds_(count|sum)|access_decisions_total|token_failures_total|rate_limited_total|record_bytes_total)' || true
exit "$status"
