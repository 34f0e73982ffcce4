#!/usr/bin/env python3
"""Medians and ratios of bench/ab.sh runs.

    python3 bench/ab.py OUT REF [LABEL ...]

For each configuration: a row per server with the medians over runs, then
each server's ratio to REF taken within each run (the median, and the range
in brackets). For `throttled`, also each server's CPU per second throttled
over its CPU per second live (the issue-17 figure), within each run.
"""
import json
import statistics
import sys
from collections import defaultdict

rows = defaultdict(list)  # (label, config) -> [row per run, in order]
for line in open(sys.argv[1]):
    if line.startswith("{"):
        row = json.loads(line)
        label, _, config = row.get("label", "?").rpartition(" ")
        rows[(label, config)].append(row)
ref = sys.argv[2]
labels = sys.argv[3:] or sorted({label for label, _ in rows} - {ref})
KEYS = [("server_cpu_pct", "CPU %", 1), ("server_cpu_us_per_event", "CPU µs/event", 2),
        ("latency_p50_ms", "p50 ms", 1), ("latency_p99_ms", "p99 ms", 1),
        ("server_rss_per_client_kib", "RSS KiB/client", 2), ("disconnects", "disconnects", 0),
        ("connections_per_s", "connections/s", 0), ("server_cpu_us_per_connection", "CPU µs/conn", 1)]


def value(row, key):
    v = row.get(key)
    return v if isinstance(v, (int, float)) and not row.get("failed") else None


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio_text(pairs):
    ratios = [a / b for a, b in pairs if a is not None and b]
    if not ratios:
        return "–"
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


for config in sorted({c for _, c in rows}):
    keys = [k for k in KEYS if any(value(r, k[0]) is not None for (l, c), rs in rows.items() if c == config for r in rs)]
    print(f"\n### {config}\n")
    print("| server | runs | " + " | ".join(name for _, name, _ in keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for label in [ref] + labels:
        rs = rows.get((label, config), [])
        if not rs:
            continue
        cells = []
        for key, _, digits in keys:
            m = med(value(r, key) for r in rs)
            cells.append("–" if m is None else f"{m:,.{digits}f}")
        ok = sum(1 for r in rs if not r.get("failed"))
        print(f"| {label} | {ok}/{len(rs)} | " + " | ".join(cells) + " |")
    print(f"\n| ratio to {ref} | " + " | ".join(name for _, name, _ in keys) + " |")
    print("|---|" + "---|" * len(keys))
    for label in labels:
        mine, theirs = rows.get((label, config), []), rows.get((ref, config), [])
        cells = [ratio_text([(value(a, k), value(b, k)) for a, b in zip(mine, theirs)]) for k, _, _ in keys]
        print(f"| {label} / {ref} | " + " | ".join(cells) + " |")

if any(c == "throttled" for _, c in rows):
    print("\n### throttled CPU per second / live CPU per second, same server, same run\n")
    print("| server | ratio |\n|---|---|")
    for label in [ref] + labels:
        t, l = rows.get((label, "throttled"), []), rows.get((label, "live"), [])
        print(f"| {label} | {ratio_text([(value(a, 'server_cpu_pct'), value(b, 'server_cpu_pct')) for a, b in zip(t, l)])} |")
