#!/usr/bin/env bash
# Local consortium testnet: N hospital gateways on loopback, each running
# `healthgw serve --ledger comet` with its own CometBFT validator in
# process (plain local processes: no containers needed).
#
#   scripts/testnet.sh [up]   create the layout if needed, start every
#                             gateway, wait until all are ready, print the
#                             URLs and stay in the foreground; Ctrl-C stops
#                             them all (make testnet)
#   scripts/testnet.sh start  the same, but leave the gateways running in
#                             the background and return once all are ready
#   scripts/testnet.sh down   stop the gateways a `start` (or an `up` in
#                             another terminal) left running (make testnet-down)
#   scripts/testnet.sh status what runs, and each gateway's /readyz
#
# Consortium-wide identity and keys (a testnet shortcut, not production):
# one development patient IdP key, made once and copied into every
# member's data directory, so a patient token minted by any member's dev
# IdP (`healthgw token patient`, `healthgw demo`) works at every member;
# and one single-party DEVELOPMENT zero-knowledge setup (`healthgw zk
# setup --dev`), run once into $TESTNET_DIR/zk and used by every member
# (HEALTHGW_ZK_KEYS, no per-node setup), so the keys every member loads are
# the ones registered on the ledger. A production consortium uses a real
# patient IdP (--patient-issuer/--patient-jwks on every member) and keys
# from a multi-party ceremony (`healthgw zk ceremony`).
#
# Environment:
#   TESTNET_DIR     layout directory (default ./testnet); reused if it exists
#   VALIDATORS      number of hospitals for a new layout (default 4)
#   HTTP_PORT       gateway port of hospital-1 for a new layout (default
#                   8081; hospital-N +N-1)
#   P2P_PORT        CometBFT P2P port of hospital-1 for a new layout
#                   (default 26656; +10 each)
#   RPC_PORT        CometBFT RPC port of hospital-1 for a new layout
#                   (default 26657; +10 each)
#   TIMEOUT_COMMIT  CometBFT block interval for a new layout (default 1s)
#   READY_TIMEOUT   seconds to wait for every gateway to be ready (default 300)
#   HEALTHGW_BIN    binary to run (default: build bin/healthgw)
#   TESTNET_RESET=1 stop what runs and delete TESTNET_DIR first
set -euo pipefail

cd "$(dirname "$0")/.."
cmd=${1:-up}
dir=${TESTNET_DIR:-testnet}
validators=${VALIDATORS:-4}
http_port=${HTTP_PORT:-8081}
p2p_port=${P2P_PORT:-26656}
rpc_port=${RPC_PORT:-26657}
ready_timeout=${READY_TIMEOUT:-300}

say() { printf '[testnet] %s\n' "$*" >&2; }

members() {
	local m
	for m in "$dir"/hospital-*/; do
		m=${m%/}
		[[ -f $m/healthgw.env ]] && printf '%s\n' "$m"
	done | awk -F'hospital-' '{print $NF "\t" $0}' | sort -n | cut -f2-
}

base_url() { sed -n 's/^HEALTHGW_BASE_URL=//p' "$1/healthgw.env"; }

# ports prints member $1's listening addresses, one HOST:PORT a line: the
# gateway's (HEALTHGW_ADDR) and CometBFT's P2P and RPC listeners.
ports() {
	sed -n 's/^HEALTHGW_ADDR=//p' "$1/healthgw.env"
	sed -n 's/^laddr = "tcp:\/\/\([^"]*\)"$/\1/p' "$1/comet/config/config.toml"
}

# in_use succeeds if something accepts connections on HOST:PORT $1.
in_use() {
	local host=${1%:*} port=${1##*:}
	[[ $host == 0.0.0.0 || $host == "" ]] && host=127.0.0.1
	(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# alive succeeds if process $1 exists and has not exited (a gateway left
# by `start` is an orphan: until it is reaped it is a zombie).
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	case $(ps -o stat= -p "$1" 2>/dev/null) in Z*) return 1 ;; esac
}

# running prints the PID of member $1's gateway if it runs.
running() {
	local pid
	[[ -f $1/gateway.pid ]] || return 1
	pid=$(<"$1/gateway.pid")
	[[ -n $pid ]] && alive "$pid" && printf '%s\n' "$pid"
}

down() {
	local m pid pids=()
	[[ -d $dir ]] || { say "no testnet in $dir"; return 0; }
	while read -r m; do
		if pid=$(running "$m"); then
			say "stopping $(basename "$m") (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			pids+=("$pid")
		fi
	done < <(members)
	# Wait for each to exit (the gateways flush the ledger on SIGTERM).
	for pid in "${pids[@]}"; do
		for ((i = 0; i < 600; i++)); do
			alive "$pid" || break
			sleep 0.1
		done
		if alive "$pid"; then
			say "pid $pid did not stop in 60 s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	while read -r m; do rm -f "$m/gateway.pid"; done < <(members)
	say "stopped ${#pids[@]} gateways"
}

status() {
	local m url code
	while read -r m; do
		url=$(base_url "$m")
		code=$(curl -s -o /dev/null -w '%{http_code}' "$url/readyz" 2>/dev/null || true)
		if pid=$(running "$m"); then
			printf '  %-12s %-24s pid %-8s readyz %s\n' "$(basename "$m")" "$url" "$pid" "$code"
		else
			printf '  %-12s %-24s not running\n' "$(basename "$m")" "$url"
		fi
	done < <(members)
}

case $cmd in
down)
	down
	exit 0
	;;
status)
	status
	exit 0
	;;
up | start) ;;
*)
	echo "usage: $0 [up|start|down|status]" >&2
	exit 2
	;;
esac

bin=${HEALTHGW_BIN:-}
if [[ -z $bin ]]; then
	say "building bin/healthgw …"
	go build -o bin/healthgw ./cmd/healthgw
	bin=bin/healthgw
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

if [[ ${TESTNET_RESET:-} == 1 && -d $dir ]]; then
	down
	say "deleting $dir"
	rm -rf -- "$dir"
fi
while read -r m; do
	if pid=$(running "$m"); then
		say "$(basename "$m") already runs (pid $pid): run '$0 down' first"
		exit 1
	fi
done < <(members)

# Every port a member listens on must be free: a gateway that cannot bind
# exits, and the readiness checks below would otherwise be answered by
# whatever holds the port (another testnet, in another TESTNET_DIR).
check_ports() {
	local busy=() line
	while read -r line; do
		in_use "${line#* }" && busy+=("$line")
	done
	((${#busy[@]} == 0)) && return 0
	say "ports in use; nothing started:"
	for line in "${busy[@]}"; do say "  $line"; done
	say "stop what listens there (another testnet: TESTNET_DIR=<its dir> $0 down), or use a new layout on other ports (TESTNET_DIR, HTTP_PORT, P2P_PORT, RPC_PORT)"
	exit 1
}
if [[ -d $dir/hospital-1 ]]; then
	check_ports < <(while read -r m; do ports "$m" | sed "s|^|$(basename "$m") |"; done < <(members))
else
	check_ports < <(for ((i = 0; i < validators; i++)); do
		printf 'hospital-%d 127.0.0.1:%d\n' $((i + 1)) $((http_port + i)) $((i + 1)) $((p2p_port + 10 * i)) $((i + 1)) $((rpc_port + 10 * i))
	done)
fi

if [[ ! -d $dir/hospital-1 ]]; then
	say "creating a $validators-hospital consortium in $dir …"
	"$bin" consortium init --validators "$validators" --out "$dir" \
		--http-port "$http_port" --p2p-port "$p2p_port" --rpc-port "$rpc_port" \
		--timeout-commit "${TIMEOUT_COMMIT:-1s}" >/dev/null
	abs=$(cd "$dir" && pwd)
	# One development patient IdP for the consortium: hospital-1's,
	# copied to every member before any first start.
	first=$dir/hospital-1
	"$bin" token patient --create --data "$first/data" --id testnet-probe --url "$(base_url "$first")" >/dev/null
	while read -r m; do
		[[ $m == "$first" ]] && continue
		mkdir -p "$m/data/keys"
		cp "$first/data/keys/dev-idp.jwk" "$m/data/keys/dev-idp.jwk"
		chmod 0600 "$m/data/keys/dev-idp.jwk"
	done < <(members)
	say "shared development patient IdP: $first/data/keys/dev-idp.jwk, copied to every member"
	# One development ZK setup for the consortium.
	say "running the shared single-party DEVELOPMENT zero-knowledge setup into $dir/zk (a few minutes on a small machine) …"
	"$bin" zk setup --dev --keys "$abs/zk" >"$dir/zk-setup.log" 2>&1 || {
		say "zk setup failed; see $dir/zk-setup.log"
		exit 1
	}
	while read -r m; do
		printf '# the consortium'"'"'s shared DEVELOPMENT zero-knowledge keys (scripts/testnet.sh)\nHEALTHGW_ZK_KEYS=%s\nHEALTHGW_ZK_DEV_SETUP=false\n' "$abs/zk" >>"$m/healthgw.env"
	done < <(members)
fi

ms=()
while read -r m; do ms+=("$m"); done < <(members)
if ((${#ms[@]} == 0)); then
	say "no members in $dir"
	exit 1
fi

pids=()
stop() {
	trap - INT TERM EXIT
	if ((${#pids[@]})); then
		say "stopping ${#pids[@]} gateways …"
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
		for m in "${ms[@]}"; do rm -f "$m/gateway.pid"; done
	fi
}
trap stop INT TERM EXIT

for m in "${ms[@]}"; do
	(
		set -a
		# shellcheck disable=SC1091
		. "$m/healthgw.env"
		set +a
		exec "$bin" serve
	) >>"$m/gateway.log" 2>&1 &
	pids+=($!)
	echo $! >"$m/gateway.pid"
	say "started $(basename "$m") (pid $!), log $m/gateway.log"
done

# Every gateway must be started before any can commit (consensus needs more
# than 2/3 of the validators); each registers its sealing key on the ledger
# at first start, and none is ready (seals an entry) until all have.
say "waiting for ${#ms[@]} gateways to be ready (/readyz; up to ${ready_timeout}s) …"
deadline=$((SECONDS + ready_timeout))
ready=() # ready[i]=1 once member i answers /readyz 200
nready=0
last=""
while ((nready < ${#ms[@]})); do
	for i in "${!ms[@]}"; do
		m=${ms[$i]}
		[[ -n ${ready[$i]:-} ]] && continue
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			say "$(basename "$m") exited; the end of $m/gateway.log:"
			tail -n 20 "$m/gateway.log" >&2
			exit 1
		fi
		# Ready only if it is still ours that runs once /readyz answers.
		if curl -fsS -o /dev/null "$(base_url "$m")/readyz" 2>/dev/null && kill -0 "${pids[$i]}" 2>/dev/null; then
			ready[$i]=1
			nready=$((nready + 1))
			say "$(basename "$m") is ready ($nready/${#ms[@]})"
		fi
	done
	((nready == ${#ms[@]})) && break
	if ((SECONDS >= deadline)); then
		for i in "${!ms[@]}"; do
			m=${ms[$i]}
			[[ -n ${ready[$i]:-} ]] && continue
			say "$(basename "$m") is not ready: $(curl -sS "$(base_url "$m")/readyz" 2>&1 | head -c 400); see $m/gateway.log"
		done
		exit 1
	fi
	# Progress every 10 s: what the first gateway not ready says.
	for i in "${!ms[@]}"; do
		m=${ms[$i]}
		[[ -n ${ready[$i]:-} ]] && continue
		now=$(curl -sS "$(base_url "$m")/readyz" 2>/dev/null | head -c 200 || true)
		if ((SECONDS % 10 == 0)) && [[ "$now" != "$last" || $((SECONDS % 30)) == 0 ]]; then
			say "  $(basename "$m"): ${now:-not answering yet}"
			last=$now
		fi
		break
	done
	sleep 1
done

echo "consortium testnet: ${#ms[@]} hospitals (layout in $dir)"
for m in "${ms[@]}"; do
	rpc=$(sed -n 's/^laddr = "tcp:\/\/\(127.0.0.1:[0-9]*\)"$/\1/p' "$m/comet/config/config.toml" | head -1)
	printf '  %-12s %-24s cometbft rpc http://%s  log %s\n' "$(basename "$m")" "$(base_url "$m")" "$rpc" "$m/gateway.log"
done
example=${ms[${#ms[@]} - 1]}
echo "try, at any member (here $(basename "$example")):"
echo "  bin/healthgw demo --url $(base_url "$example") --comet-home $example/comet --data $example/data"
echo "the cross-hospital walkthrough: deploy/consortium/README.md"
if [[ $cmd == start ]]; then
	trap - INT TERM EXIT
	echo "running in the background; stop them with: $0 down   (make testnet-down)"
	exit 0
fi
echo "Ctrl-C stops them all."
wait "${pids[@]}"
