#!/usr/bin/env python3
"""Medians of bench/matrix.sh runs: one table row per configuration.

    python3 bench/summarize.py target/bench/matrix.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
for line in open(sys.argv[1] if len(sys.argv) > 1 else "target/bench/matrix.jsonl"):
    line = line.strip()
    if line.startswith("{"):
        row = json.loads(line)
        runs[row.get("label", "?")].append(row)


def med(rows, key):
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    return statistics.median(values) if values else float("nan")


print("| configuration | runs | established | events/client min | p50 ms | p99 ms | p99.9 ms | max ms "
      "| CPU µs/event | RSS KiB/client | kernel KiB/client | threads | disconnects |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for label, rows in runs.items():
    if rows[0].get("mode") == "accept" or "accept" in label:
        continue
    ok = [r for r in rows if not r.get("failed")]
    print(f"| {label} | {len(ok)}/{len(rows)} | {med(ok, 'established'):,.0f} | {med(ok, 'events_per_client_min'):.0f} "
          f"| {med(ok, 'latency_p50_ms'):.1f} | {med(ok, 'latency_p99_ms'):.1f} | {med(ok, 'latency_p999_ms'):.1f} "
          f"| {med(ok, 'latency_max_ms'):.1f} | {med(ok, 'server_cpu_us_per_event'):.2f} "
          f"| {med(ok, 'server_rss_per_client_kib'):.2f} | {med(ok, 'kernel_mem_per_client_kib'):.1f} "
          f"| {med(ok, 'server_threads'):,.0f} | {med(ok, 'disconnects'):.0f} |")
print()
for label, rows in runs.items():
    if "accept" in label:
        ok = [r for r in rows if not r.get("failed")]
        keys = [k for k in ok[0] if "per_s" in k or "rate" in k] if ok else []
        print(f"{label}: runs {len(ok)}/{len(rows)}; " + ", ".join(f"{k} median {med(ok, k):,.0f}" for k in keys))
