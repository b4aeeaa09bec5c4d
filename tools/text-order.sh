#!/usr/bin/env bash
# Regenerates cmd/skiff/text-order.txt, the order release builds link skiff's functions in
# (see tools/text-order.py for why). As root, with containerd & co installed (as for
# `skiff-bench --pods`):
#
#   cargo build --release -p skiff-bench
#   cargo rustc --release -p skiff --bin skiff -- -C save-temps -C strip=none \
#     --print link-args > /tmp/skiff-link-args.txt
#   sudo tools/text-order.sh /tmp/skiff-link-args.txt target/release/skiff-bench [OUT]
#
# The list must come from the build it is for: mangled names carry a hash of the profile and
# the features, so it is recorded from `cargo build --release -p skiff`'s own objects (`cargo
# rustc` with extra flags for the final crate keeps those hashes). The script relinks those
# objects with every function on a page of its own, runs the pod benchmark (server alone, an
# agent, server with its agent, pods coming and going, idle) with two copies of that binary —
# one for `skiff agent` processes, one for everything else — after dropping the page cache and
# with the disk's read-ahead at 0, so each copy's cached pages are exactly the functions its
# processes ran. The agent's functions come first, then the server's, so an agent's code is one
# contiguous run.
set -euo pipefail

usage="usage: text-order.sh LINK_ARGS SKIFF_BENCH [OUT]"
link_args=$(readlink -f "${1:?$usage}")
bench=$(readlink -f "${2:?$usage}")
here=$(cd "$(dirname "$0")" && pwd)
out=${3:-$here/../cmd/skiff/text-order.txt}
[ "$(id -u)" = 0 ] || { echo "text-order.sh: run as root (drops the page cache, runs pods)" >&2; exit 1; }

# A short path: containerd's sockets live under it (unix socket paths are limited to 108 bytes).
tmp=$(mktemp -d /tmp/sto.XXXXXX)
bin=$tmp/skiff-aligned
python3 "$here/text-order.py" relink --link-args "$link_args" --out "$bin" --align
cp "$bin" "$tmp/skiff-server"
cp "$bin" "$tmp/skiff-agent"
cat >"$tmp/skiff" <<EOF
#!/bin/sh
case "\$1" in
  agent) exec "$tmp/skiff-agent" "\$@" ;;
  *) exec "$tmp/skiff-server" "\$@" ;;
esac
EOF
chmod +x "$tmp/skiff"

# The block device under the copies: its queue's read-ahead, restored on exit.
dev=$(stat -c '%Hd:%Ld' "$tmp/skiff-agent")
queue=/sys/dev/block/$dev/queue
[ -d "$queue" ] || queue=/sys/dev/block/$dev/../queue
ra=$(cat "$queue/read_ahead_kb")
trap 'echo "$ra" >"$queue/read_ahead_kb"; rm -f "$tmp"/skiff-*' EXIT
echo 0 >"$queue/read_ahead_kb"
sync
echo 1 >/proc/sys/vm/drop_caches

mkdir -p "$tmp/run"
"$bench" --pods --pod-runs 3 --pod-batch 10 --idle 3 --skiff-bin "$tmp/skiff" --tmp-dir "$tmp/run" \
  --out "$tmp/bench.md"

python3 "$here/text-order.py" residency "$bin" "$tmp/skiff-agent" "$tmp/skiff-server"
python3 "$here/text-order.py" order --binary "$bin" --copy "agent=$tmp/skiff-agent" \
  --copy "server=$tmp/skiff-server" --out "$out"
rm -rf "$tmp"
