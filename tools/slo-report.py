#!/usr/bin/env python3
"""Reads a skiff (or kube-apiserver) /metrics dump on stdin and prints the API call latency
SLIs the upstream scalability SLOs are written against, as p50/p99 from
apiserver_request_duration_seconds (histogram_quantile-style linear interpolation):
mutating calls (POST/PUT/PATCH/DELETE/APPLY), GET of one object, LIST in one namespace, LIST
cluster-wide. WATCH and CONNECT are excluded, as upstream excludes them."""

import re
import sys
from collections import defaultdict

LINE = re.compile(r'^apiserver_request_duration_seconds_bucket\{(.*)\} (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

CLASSES = {
    "mutating (POST/PUT/PATCH/DELETE/APPLY)": lambda l: l["verb"] in ("POST", "PUT", "PATCH", "DELETE", "APPLY"),
    "GET one object": lambda l: l["verb"] == "GET" and l["scope"] == "resource",
    "LIST in a namespace": lambda l: l["verb"] == "LIST" and l["scope"] == "namespace",
    "LIST cluster-wide": lambda l: l["verb"] == "LIST" and l["scope"] == "cluster",
}
SLO = {
    "mutating (POST/PUT/PATCH/DELETE/APPLY)": 1.0,
    "GET one object": 1.0,
    "LIST in a namespace": 5.0,
    "LIST cluster-wide": 30.0,
}


def quantile(q, buckets):
    """buckets: sorted list of (le, cumulative count)."""
    total = buckets[-1][1]
    if total == 0:
        return None
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def main():
    sums = {name: defaultdict(float) for name in CLASSES}
    for line in sys.stdin:
        m = LINE.match(line.strip())
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(1)))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        for name, pred in CLASSES.items():
            if pred(labels):
                sums[name][le] += float(m.group(2))
    print("| API call class | requests | p50 | p99 | upstream SLO (p99) |")
    print("|---|---|---|---|---|")
    for name in CLASSES:
        b = sorted(sums[name].items())
        if not b:
            print(f"| {name} | 0 | - | - | {SLO[name]:g} s |")
            continue
        p50, p99 = quantile(0.5, b), quantile(0.99, b)
        print(f"| {name} | {int(b[-1][1])} | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms | {SLO[name]:g} s |")


if __name__ == "__main__":
    main()
