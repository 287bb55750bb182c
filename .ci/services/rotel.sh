#!/usr/bin/env bash
# rotel (PyPI `rotel` 0.0.1a15 = Rust "rotel-agent" 0.0.1-alpha10) as a local OTLP collector.
# Not in Debian: the binary is taken out of the PyPI wheel (no pip install into any Python env).
#
#   rotel.sh start DIR PORT     # OTLP/HTTP on 127.0.0.1:PORT (/v1/logs, /v1/metrics, /v1/traces),
#                               # OTLP/gRPC on 127.0.0.1:$GRPC_PORT (default PORT+1)
#   rotel.sh stop  DIR
#   rotel.sh kill  DIR          # SIGKILL, as a crash: whatever it still buffered is lost
#
# Received telemetry is printed (debug exporter, "detailed") to DIR/log; the real exporter is
# `blackhole` unless ROTEL_EXPORT_ARGS is given (e.g. "--exporter otlp --otlp-exporter-endpoint ...",
# or "--exporter kafka --kafka-exporter-brokers 127.0.0.1:PORT --kafka-exporter-format json", which
# writes each export request to the topics otlp_traces / otlp_logs / otlp_metrics; see tansu.sh).
# There is no file exporter; DIR/log is the sink to grep in tests.
# A restart on the same DIR and PORT (after stop or kill) takes the same ports again.
# Env: READY_TIMEOUT (default 30 s), GRPC_PORT, ROTEL_TOOLS (binary cache, default ${XDG_CACHE_HOME:-$HOME/.cache}/observe-services).
set -euo pipefail

VER=0.0.1a15
TOOLS=${ROTEL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/observe-services}
BIN=$TOOLS/rotel-$VER/rotel-agent
die() { echo "rotel.sh: ERROR: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

ensure_bin() {
  [ -x "$BIN" ] && return 0
  mkdir -p "$TOOLS"
  local tmp; tmp=$(mktemp -d "$TOOLS/.dl.XXXXXX")
  python3 -m pip download --no-deps --only-binary=:all: -d "$tmp" "rotel==$VER" >"$tmp/pip.log" 2>&1 \
    || { cat "$tmp/pip.log" >&2; die "pip download rotel==$VER failed"; }
  mkdir -p "$(dirname "$BIN")"
  python3 - "$tmp" "$BIN" <<'EOF'
import glob, sys, zipfile, os
whl = glob.glob(os.path.join(sys.argv[1], "rotel-*.whl"))[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("rotel/rotel-agent"))
os.chmod(sys.argv[2], 0o755)
EOF
  rm -rf "$tmp"
  [ -x "$BIN" ] || die "rotel-agent not extracted"
}

alive() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

# port_in_use PORT [tcp|udp]: true if something is already bound/listening on PORT (reads /proc/net, no ss/netstat needed)
port_in_use() {
  local hex proto=${2:-tcp} st f
  hex=$(printf ':%04X' "$1"); [ "$proto" = tcp ] && st=0A || st=07
  for f in "/proc/net/$proto" "/proc/net/${proto}6"; do
    [ -r "$f" ] && awk -v p="$hex" -v s="$st" 'NR>1 && substr($2, length($2)-4)==p && $4==s {f=1} END{exit !f}' "$f" && return 0
  done
  return 1
}

start() {
  local dir=${1:?usage: start DIR PORT} port=${2:?usage: start DIR PORT}
  local gport=${GRPC_PORT:-$((port + 1))}
  ensure_bin
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  alive "$dir" && die "already running with pid $(cat "$dir/pid")"
  port_in_use "$port" tcp && die "port $port is already in use"
  port_in_use "$gport" tcp && die "grpc port $gport is already in use"
  local t0; t0=$(now_ms)
  # shellcheck disable=SC2086
  NO_COLOR=1 setsid "$BIN" start \
    --otlp-http-endpoint "127.0.0.1:$port" --otlp-grpc-endpoint "127.0.0.1:$gport" \
    --pid-file "$dir/rotel.pid" --log-file "$dir/rotel-daemon.log" \
    --debug-log logs --debug-log metrics --debug-log traces --debug-log-verbosity detailed \
    ${ROTEL_EXPORT_ARGS:---exporter blackhole} \
    >>"$dir/log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" > "$dir/pid"
  local deadline=$(( $(date +%s) + ${READY_TIMEOUT:-30} ))
  until port_in_use "$port" tcp && port_in_use "$gport" tcp; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -20 "$dir/log" >&2; rm -f "$dir/pid"; die "rotel-agent exited during startup"
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      tail -20 "$dir/log" >&2; kill -KILL "$pid" 2>/dev/null || true; rm -f "$dir/pid"
      die "not ready after ${READY_TIMEOUT:-30}s"
    fi
    sleep 0.1
  done
  echo "rotel ready pid=$pid otlp_http=http://127.0.0.1:$port otlp_grpc=127.0.0.1:$gport startup_ms=$(( $(now_ms) - t0 )) rss_kb=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")"
}

# Ends the agent in DIR with SIGNAL (TERM: a stop; KILL: a crash) and waits
# for it; an agent still there after 15 s gets SIGKILL.
end() {
  local dir=$1 sig=$2 what=$3 done=$4
  [ -f "$dir/pid" ] || { echo "rotel.sh: no pid file in $dir, nothing to $what"; return 0; }
  local pid; pid=$(cat "$dir/pid")
  if kill -0 "$pid" 2>/dev/null; then
    grep -qa rotel-agent "/proc/$pid/cmdline" || die "pid $pid is not rotel-agent; refusing to kill"
    kill -"$sig" "$pid"
    local _i; for _i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then echo "rotel.sh: SIG$sig timeout, sending SIGKILL" >&2; kill -KILL "$pid"; fi
  fi
  rm -f "$dir/pid"
  echo "rotel $done pid=$pid"
}

stop() { end "${1:?usage: stop DIR}" TERM stop stopped; }

kill_now() { end "${1:?usage: kill DIR}" KILL kill killed; }

case "${1:-}" in
  start) shift; start "$@" ;;
  stop)  shift; stop "$@" ;;
  kill)  shift; kill_now "$@" ;;
  *) echo "usage: $0 start DIR PORT | stop DIR | kill DIR" >&2; exit 2 ;;
esac
