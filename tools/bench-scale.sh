#!/usr/bin/env bash
# Issue 3 scale benchmark, against a release build of skiff on simulated (hollow) nodes:
#   small: time from `kubectl create deployment --replicas=N` until the Deployment reports N ready
#          replicas (100 pods on 3 nodes, 3,000 pods on 100 nodes);
#   big:   1,000 hollow nodes + 30,000 pods (10 namespaces x 3 Deployments x 1,000 replicas) with
#          a namespace-LIST/GET probe running, then the API latency SLIs from /metrics
#          (tools/slo-report.py) and the server's RSS.
# Usage: tools/bench-scale.sh [small|big|all] [SKIFF_BIN]   (loopback only; cleans up after itself)
# WRAP="cmd args" runs the server under a wrapper (e.g. heaptrack, env LD_PRELOAD=...).
set -euo pipefail
MODE=${1:-small}
BIN=${2:-target/release/skiff}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

now_ms() { date +%s%3N; }
rss_mib() { awk "/^$2:/{print int(\$2/1024)}" "/proc/$1/status"; }
cpu_s() { awk -v t="$(getconf CLK_TCK)" '{print int(($14 + $15) / t)}' "/proc/$1/stat"; }

# start_cluster NODES: server + hollow nodes; sets SPID, HPID, KUBECONFIG.
start_cluster() {
  local nodes=$1 port=$((20000 + RANDOM % 20000))
  DIR="$WORK/s-$nodes-$RANDOM"
  mkdir -p "$DIR"
  # shellcheck disable=SC2086
  ${WRAP:-} "$BIN" server --data-dir "$DIR" --https-listen-port "$port" --bind-address 127.0.0.1 \
    --write-kubeconfig "$DIR/kc" --disable-agent --config /nonexistent >"$DIR/server.log" 2>&1 &
  SPID=$!; PIDS+=("$SPID")
  for _ in $(seq 400); do [ -f "$DIR/kc" ] && break; sleep 0.05; done
  export KUBECONFIG="$DIR/kc" KUBECACHEDIR="$DIR/cache"
  local token; token=$("$BIN" token -d "$DIR")
  "$BIN" hollow --nodes "$nodes" --server "https://127.0.0.1:$port" --token "$token" \
    --name-prefix n- >"$DIR/hollow.log" 2>&1 &
  HPID=$!; PIDS+=("$HPID")
  local t0; t0=$(now_ms)
  for _ in $(seq 3000); do
    [ "$(kubectl get nodes --no-headers 2>/dev/null | grep -c ' Ready ')" -ge "$nodes" ] && break
    sleep 0.2
  done
  echo "  $nodes nodes Ready after $(($(now_ms) - t0)) ms" >&2
}

ready_of() { kubectl get deploy "$2" -n "$1" -o jsonpath='{.status.readyReplicas}' 2>/dev/null || true; }

run_small() { # NODES REPLICAS
  local nodes=$1 replicas=$2
  start_cluster "$nodes"
  local t0; t0=$(now_ms)
  kubectl create deployment "scale$replicas" --image=web:v1 --replicas="$replicas" >/dev/null
  until [ "$(ready_of default "scale$replicas")" = "$replicas" ]; do sleep 0.05; done
  local t1; t1=$(now_ms)
  echo "| $replicas pods on $nodes nodes | $((t1 - t0)) ms | $(rss_mib "$SPID" VmRSS) MiB |"
  kill "$SPID" "$HPID" 2>/dev/null || true
}

run_big() { # NODES NAMESPACES DEPLOYS_PER_NS REPLICAS
  local nodes=$1 nss=$2 per=$3 replicas=$4
  local total=$((nss * per * replicas))
  start_cluster "$nodes"
  local yaml="$DIR/load.yaml"
  : >"$yaml"
  for n in $(seq 0 $((nss - 1))); do
    printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: load-%s\n---\n' "$n" >>"$yaml"
    for d in $(seq 0 $((per - 1))); do
      cat >>"$yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web-$d
  namespace: load-$n
spec:
  replicas: $replicas
  selector:
    matchLabels: {app: web-$d}
  template:
    metadata:
      labels: {app: web-$d}
    spec:
      containers:
      - name: web
        image: web:v1
        resources:
          requests: {cpu: 10m, memory: 16Mi}
---
EOF
    done
  done
  # The probe: what a user does while the cluster is busy (LIST a namespace, GET one object).
  (
    i=0
    while true; do
      kubectl get --raw "/api/v1/namespaces/load-$((i % nss))/pods" >/dev/null 2>&1 || true
      kubectl get --raw "/apis/apps/v1/namespaces/load-$((i % nss))/deployments/web-0" >/dev/null 2>&1 || true
      i=$((i + 1)); sleep 1
    done
  ) &
  local probe=$!; PIDS+=("$probe")
  local t0; t0=$(now_ms)
  kubectl apply -f "$yaml" >/dev/null
  local ready=0 last=0
  while [ "$ready" -lt "$total" ]; do
    sleep 2
    ready=$(kubectl get deploy -A -o jsonpath='{range .items[*]}{.status.readyReplicas}{"\n"}{end}' 2>/dev/null |
      awk '{s+=$1} END {print s+0}')
    if [ $(( $(now_ms) - last )) -ge 15000 ]; then
      echo "  $(( ($(now_ms) - t0) / 1000 )) s: $ready/$total pods ready, server RSS $(rss_mib "$SPID" VmRSS) MiB" >&2
      last=$(now_ms)
    fi
  done
  local t1; t1=$(now_ms)
  sleep 10 # steady state: heartbeats and the probe only
  kill "$probe" 2>/dev/null || true
  echo "| $total pods on $nodes nodes | $((t1 - t0)) ms | RSS $(rss_mib "$SPID" VmRSS) MiB (peak $(rss_mib "$SPID" VmHWM) MiB), hollow $(rss_mib "$HPID" VmRSS) MiB | server $(cpu_s "$SPID") s, hollow $(cpu_s "$HPID") s |"
  echo
  kubectl get --raw /metrics >"$DIR/metrics.txt"
  [ -n "${METRICS_OUT:-}" ] && cp "$DIR/metrics.txt" "$METRICS_OUT"
  python3 "$HERE/slo-report.py" <"$DIR/metrics.txt"
  kill "$SPID" "$HPID" 2>/dev/null || true
}

case "$MODE" in
  small|all)
    echo "| case | create → all Ready | server RSS after |"
    echo "|---|---|---|"
    run_small 3 100
    run_small 100 3000
    ;;&
  big|all)
    echo "| case | create → all Ready | memory | CPU time |"
    echo "|---|---|---|---|"
    run_big "${NODES:-1000}" "${NAMESPACES:-10}" "${DEPLOYS:-3}" "${REPLICAS:-1000}"
    ;;
  small) ;;
  *) echo "usage: $0 [small|big|all] [SKIFF_BIN]" >&2; exit 2 ;;
esac
