#!/bin/bash
# Idle RSS of `skiff server` (its agent included) with and without the ingress proxy, alternated
# twice (issue 11's "the ingress proxy adds < 15 MB RSS idle").
# Usage (root): tools/ingress-rss.sh [SKIFF_BINARY] [WORK_DIR]. Each run: a network namespace with
# only loopback, `skiff server` with or without `--disable traefik`, VmRSS 25 s after start.
set -u
BIN=${1:-target/release/skiff}
OUT=${2:-/tmp/skiff-ingress-rss}
for i in 1 2; do
  for mode in with without; do
    ns=skiff-rss-$$
    ip netns add "$ns"
    ip netns exec "$ns" ip link set lo up
    d=$OUT/$mode-$i
    rm -rf "$d"
    mkdir -p "$d"
    extra=()
    [ "$mode" = without ] && extra=(--disable traefik)
    nsenter --net="/var/run/netns/$ns" "$BIN" server --data-dir "$d" --node-name m \
      --https-listen-port 6445 "${extra[@]}" >"$d/log" 2>&1 &
    pid=$!
    sleep 25
    rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    anon=$(awk '/RssAnon/{print $2}' "/proc/$pid/status")
    listening=$(grep -c "ingress listening" "$d/log")
    echo "$mode ingress, run $i: VmRSS $rss KiB, RssAnon $anon KiB, 'ingress listening' lines: $listening"
    kill -TERM "$pid"
    sleep 4
    kill -9 "$pid" 2>/dev/null
    pkill -f "containerd.*$d"
    sleep 1
    ip netns del "$ns"
  done
done
