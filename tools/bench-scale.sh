#!/usr/bin/env bash
# Issue 3 scale benchmark: time from `kubectl create deployment --replicas=N` until the
# Deployment reports N ready replicas, on simulated nodes, against a release build of skiff.
# Usage: tools/bench-scale.sh [SKIFF_BIN]   (loopback only; cleans up after itself)
set -euo pipefail
BIN=${1:-target/release/skiff}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

now_ms() { date +%s%3N; }

run_case() { # NODES REPLICAS
  local nodes=$1 replicas=$2 port=$((20000 + RANDOM % 20000))
  local dir="$WORK/s-$nodes-$replicas"
  mkdir -p "$dir"
  ${WRAP:-} "$BIN" server --data-dir "$dir" --https-listen-port "$port" --bind-address 127.0.0.1 \
    --write-kubeconfig "$dir/kc" --disable-agent --config /nonexistent >"$dir/server.log" 2>&1 &
  local spid=$!; PIDS+=("$spid")
  for _ in $(seq 200); do [ -f "$dir/kc" ] && break; sleep 0.05; done
  export KUBECONFIG="$dir/kc" KUBECACHEDIR="$dir/cache"
  local token; token=$("$BIN" token -d "$dir")
  "$BIN" hollow --nodes "$nodes" --server "https://127.0.0.1:$port" --token "$token" \
    --name-prefix n- >"$dir/hollow.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 600); do
    [ "$(kubectl get nodes --no-headers 2>/dev/null | grep -c ' Ready ')" -ge "$nodes" ] && break
    sleep 0.2
  done
  local t0; t0=$(now_ms)
  kubectl create deployment "scale$replicas" --image=web:v1 --replicas="$replicas" >/dev/null
  local ready=0
  while [ "${ready:-0}" -lt "$replicas" ]; do
    ready=$(kubectl get deploy "scale$replicas" -o jsonpath='{.status.readyReplicas}' 2>/dev/null || echo 0)
    sleep 0.05
  done
  local t1; t1=$(now_ms)
  local rss; rss=$(awk '/VmRSS/{print $2}' "/proc/$spid/status")
  echo "| $replicas pods on $nodes nodes | $((t1 - t0)) ms | $((rss / 1024)) MiB |"
  kill "$spid" 2>/dev/null || true
}

echo "| case | create → all Ready | server RSS after |"
echo "|---|---|---|"
run_case 3 100
run_case 100 3000
