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

# The cost of a thread per connection: tickstream against the floor, as
# ratios taken within each run (same machine state), then their median.
print()
print("| configuration | CPU µs/event ratio (tickstream/floor) | write µs per client-tick (floor) | wake-up µs per client-tick (difference) |")
print("|---|---|---|---|")
configs = sorted({label.split(" ", 1)[1] for label in runs if label.startswith("tickstream ") and "accept" not in label})
for config in configs:
    ts = [r for r in runs.get(f"tickstream {config}", []) if not r.get("failed")]
    fl = [r for r in runs.get(f"floor {config}", []) if not r.get("failed")]
    pairs = [(t, f) for t, f in zip(ts, fl) if t.get("server_cpu_us_per_event") and f.get("server_cpu_us_per_event")]
    if not pairs:
        continue
    ratio = statistics.median(t["server_cpu_us_per_event"] / f["server_cpu_us_per_event"] for t, f in pairs)
    events_per_tick = 3  # --symbols BTC,ETH,SOL
    write = statistics.median(f["server_cpu_us_per_event"] for _, f in pairs) * events_per_tick
    total = statistics.median(t["server_cpu_us_per_event"] for t, _ in pairs) * events_per_tick
    print(f"| {config} | {ratio:.2f} | {write:.1f} | {total - write:.1f} |")
