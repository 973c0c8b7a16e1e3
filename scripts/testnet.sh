#!/usr/bin/env bash
# Local consortium testnet: N hospital gateways on loopback, each running
# `healthgw serve --ledger comet` with its own CometBFT validator in
# process. Creates the layout on first use (healthgw consortium init),
# starts every gateway, waits until each answers /healthz, prints the URLs
# and stays in the foreground; Ctrl-C stops them all.
#
# Environment:
#   TESTNET_DIR     layout directory (default ./testnet); reused if it exists
#   VALIDATORS      number of hospitals for a new layout (default 4)
#   HTTP_PORT       gateway port of hospital-1 (default 8081; hospital-N +N-1)
#   TIMEOUT_COMMIT  CometBFT block interval for a new layout (default 1s)
#   HEALTHGW_BIN    binary to run (default: build bin/healthgw)
#   TESTNET_RESET=1 delete TESTNET_DIR first
set -euo pipefail

cd "$(dirname "$0")/.."
dir=${TESTNET_DIR:-testnet}
validators=${VALIDATORS:-4}
http_port=${HTTP_PORT:-8081}
bin=${HEALTHGW_BIN:-}

if [[ -z $bin ]]; then
	echo "building bin/healthgw …" >&2
	CGO_ENABLED=0 go build -trimpath -o bin/healthgw ./cmd/healthgw
	bin=bin/healthgw
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

if [[ ${TESTNET_RESET:-} == 1 ]]; then
	rm -rf -- "$dir"
fi
if [[ ! -d $dir/hospital-1 ]]; then
	"$bin" consortium init --validators "$validators" --out "$dir" \
		--http-port "$http_port" --timeout-commit "${TIMEOUT_COMMIT:-1s}" >/dev/null
fi

pids=()
stop() {
	trap - INT TERM EXIT
	if ((${#pids[@]})); then
		echo "stopping ${#pids[@]} gateways …" >&2
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
}
trap stop INT TERM EXIT

members=()
for m in "$dir"/hospital-*/; do
	m=${m%/}
	[[ -f $m/healthgw.env ]] || continue
	members+=("$m")
	(
		set -a
		# shellcheck disable=SC1091
		. "$m/healthgw.env"
		set +a
		exec "$bin" serve
	) >"$m/gateway.log" 2>&1 &
	pids+=($!)
done
if ((${#members[@]} == 0)); then
	echo "no members in $dir" >&2
	exit 1
fi

# Wait for every gateway's /healthz (consensus needs more than 2/3 of the
# validators, so they must all be started before any can commit).
urls=()
for m in "${members[@]}"; do
	url=$(sed -n 's/^HEALTHGW_BASE_URL=//p' "$m/healthgw.env")
	urls+=("$url")
	for ((i = 0; ; i++)); do
		if curl -fsS -o /dev/null "$url/healthz" 2>/dev/null; then
			break
		fi
		if ((i >= 120)); then
			echo "$(basename "$m") did not come up; see $m/gateway.log" >&2
			exit 1
		fi
		for p in "${pids[@]}"; do
			if ! kill -0 "$p" 2>/dev/null; then
				echo "a gateway exited; see $dir/hospital-*/gateway.log" >&2
				exit 1
			fi
		done
		sleep 0.5
	done
done

# Then for every gateway's /readyz: each gateway registers its sealing key
# on the ledger when it first starts, and none is ready (none seals an
# entry) until all of them have.
for i in "${!members[@]}"; do
	for ((j = 0; ; j++)); do
		if curl -fsS -o /dev/null "${urls[$i]}/readyz" 2>/dev/null; then
			break
		fi
		if ((j >= 120)); then
			echo "$(basename "${members[$i]}") is not ready: $(curl -sS "${urls[$i]}/readyz" 2>&1); see ${members[$i]}/gateway.log" >&2
			exit 1
		fi
		sleep 0.5
	done
done

echo "consortium testnet: ${#members[@]} hospitals (layout in $dir)"
for i in "${!members[@]}"; do
	m=${members[$i]}
	rpc=$(sed -n 's/^laddr = "tcp:\/\/\(127.0.0.1:[0-9]*\)"$/\1/p' "$m/comet/config/config.toml" | head -1)
	printf '  %-12s %-24s cometbft rpc http://%s  log %s\n' "$(basename "$m")" "${urls[$i]}" "$rpc" "$m/gateway.log"
done
echo "Ctrl-C stops them all."
wait "${pids[@]}"
