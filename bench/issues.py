#!/usr/bin/env python3
"""Medians and within-run ratios of bench/issues.sh runs, as Markdown tables.

    python3 bench/issues.py [target/bench/issues.jsonl] [--series S | --all]

By default only the newest series (one issues.sh invocation) is read. A
ratio is taken between two runs of the same series and repetition, then
the median of those ratios is printed with their range.
"""
import json
import statistics
import sys
from collections import defaultdict

args = [a for a in sys.argv[1:] if not a.startswith("--")]
path = args[0] if args else "target/bench/issues.jsonl"
rows = [json.loads(l) for l in open(path) if l.strip().startswith("{")]
if "--all" not in sys.argv:
    if "--series" in sys.argv:
        series = sys.argv[sys.argv.index("--series") + 1]
    else:
        series = max((r.get("series", "") for r in rows), default="")
    rows = [r for r in rows if r.get("series", "") == series]
    print(f"series {series}, commit {rows[0].get('commit', '?') if rows else '?'}")
    print()

by_label = defaultdict(list)
for r in rows:
    by_label[r.get("label", "?")].append(r)


def ok(label):
    return [r for r in by_label.get(label, []) if not r.get("failed")]


def num(r, key):
    v = r.get(key)
    return v if isinstance(v, (int, float)) else None


def med(rs, key):
    vs = [num(r, key) for r in rs if num(r, key) is not None]
    return statistics.median(vs) if vs else float("nan")


def fmt(x, spec):
    return "–" if x != x else format(x, spec)


LOAD = [
    "baseline 5000@1s",
    "tickstream 5000@1s",
    "tickstream+redis 5000@1s",
    "peer 5000@1s",
    "tickstream 1000@2ms",
    "peer 1000@2ms",
    "tickstream 1000 stdin1500",
    "peer 1000 stdin1500",
    "tickstream 5000 throttle1s@100ms",
    "peer 5000 throttle1s@100ms",
]

print("| configuration | runs | connected | events/s | events per client min (median) | p50 ms | p99 ms "
      "| server CPU µs/event | server CPU % of a core | RSS KiB/client | disconnects | generator CPU % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for label in LOAD + sorted(l for l in by_label if l not in LOAD and "events_per_s" in by_label[l][0]):
    rs = ok(label)
    if label not in by_label:
        continue
    print(f"| {label} | {len(rs)}/{len(by_label[label])} | {fmt(med(rs, 'established'), ',.0f')} "
          f"| {fmt(med(rs, 'events_per_s'), ',.0f')} | {fmt(med(rs, 'events_per_client_min'), '.0f')} "
          f"({fmt(med(rs, 'events_per_client_median'), '.0f')}) "
          f"| {fmt(med(rs, 'latency_p50_ms'), '.1f')} | {fmt(med(rs, 'latency_p99_ms'), '.1f')} "
          f"| {fmt(med(rs, 'server_cpu_us_per_event'), '.2f')} | {fmt(med(rs, 'server_cpu_pct'), '.0f')} "
          f"| {fmt(med(rs, 'server_rss_per_client_kib'), '.2f')} | {fmt(med(rs, 'disconnects'), '.0f')} "
          f"| {fmt(med(rs, 'generator_cpu_pct'), '.0f')} |")

# Anything that would make a figure suspect, per configuration.
print()
for label in LOAD:
    for r in ok(label):
        issues = []
        for key in ("id_gaps", "id_duplicates", "malformed_events", "connect_failures", "disconnects"):
            if num(r, key):
                issues.append(f"{key}={r[key]}")
        if num(r, "disconnects") and r.get("disconnect_reasons"):
            issues.append(f"({r['disconnect_reasons']})")
        if issues:
            print(f"- {label}, rep {r.get('rep')}: " + ", ".join(issues))
    for r in by_label.get(label, []):
        if r.get("failed"):
            print(f"- {label}, rep {r.get('rep')}: FAILED (see issues.log)")


def ratios(num_label, den_label, key):
    den = {r.get("rep"): r for r in ok(den_label)}
    out = []
    for r in ok(num_label):
        d = den.get(r.get("rep"))
        if d and num(r, key) and num(d, key):
            out.append(r[key] / d[key])
    return out


def ratio_cell(vs):
    if not vs:
        return "–"
    return f"{statistics.median(vs):.2f} ({min(vs):.2f}–{max(vs):.2f}, n={len(vs)})"


print()
print("| ratio, within each repetition | CPU µs/event | p99 | RSS KiB/client |")
print("|---|---|---|---|")
PAIRS = [
    ("current / baseline, 5,000 @ 1 s", "tickstream 5000@1s", "baseline 5000@1s"),
    ("redis / sim, 5,000 @ 1 s", "tickstream+redis 5000@1s", "tickstream 5000@1s"),
    ("tickstream / peer, 5,000 @ 1 s", "tickstream 5000@1s", "peer 5000@1s"),
    ("tickstream / peer, 1,000 @ 2 ms", "tickstream 1000@2ms", "peer 1000@2ms"),
    ("tickstream / peer, 1,000 stdin 1,500/s", "tickstream 1000 stdin1500", "peer 1000 stdin1500"),
    ("tickstream / peer, 5,000 throttle=1s @ 100 ms", "tickstream 5000 throttle1s@100ms",
     "peer 5000 throttle1s@100ms"),
]
for name, a, b in PAIRS:
    print(f"| {name} | {ratio_cell(ratios(a, b, 'server_cpu_us_per_event'))} "
          f"| {ratio_cell(ratios(a, b, 'latency_p99_ms'))} "
          f"| {ratio_cell(ratios(a, b, 'server_rss_per_client_kib'))} |")

red = ok("tickstream+redis 5000@1s")
if red:
    pct = [100 * r["redis_cpu_s"] / r["redis_wall_s"] for r in red if num(r, "redis_wall_s")]
    print()
    print(f"redis-server over the redis runs: CPU {fmt(med(red, 'redis_cpu_s'), '.2f')} s in "
          f"{fmt(med(red, 'redis_wall_s'), '.1f')} s (median {fmt(statistics.median(pct), '.2f')} % of a core; "
          f"runs {', '.join(f'{p:.2f}' for p in pct)}); publisher CPU {fmt(med(red, 'publisher_cpu_s'), '.2f')} s; "
          f"entries added {fmt(med(red, 'redis_entries'), '.0f')}")

pub = ok("publish stdin 100000")
if by_label.get("publish stdin 100000"):
    print()
    print(f"publisher, 100,000 stdin lines: runs {len(pub)}/{len(by_label['publish stdin 100000'])}; "
          f"median {fmt(med(pub, 'entries_per_s'), ',.0f')} entries/s "
          f"({', '.join(format(r['entries_per_s'], ',.0f') for r in pub)}); "
          f"seconds {fmt(med(pub, 'seconds'), '.2f')}; XLEN {sorted({r['xlen'] for r in pub})}; "
          f"exit {sorted({r['exit'] for r in pub})}; redis CPU {fmt(med(pub, 'redis_cpu_s'), '.2f')} s, "
          f"publisher CPU {fmt(med(pub, 'publisher_cpu_s'), '.2f')} s")

readers = sorted({r["replicas"] for r in rows if str(r.get("label", "")).startswith("redis readers")
                  and "replicas" in r})
if readers:
    print()
    print("| replicas reading (publisher at 1,500 entries/s) | entries/s | redis-server CPU % of a core "
          "| per replica over none, % of a core | replicas' CPU % of a core (all) |")
    print("|---|---|---|---|---|")
    base = med(ok("redis readers 0"), "redis_cpu_pct")
    for k in readers:
        rs = ok(f"redis readers {k}")
        pct = med(rs, "redis_cpu_pct")
        per = (pct - base) / k if k else float("nan")
        rep_pct = statistics.median(100 * r["replicas_cpu_s"] / r["seconds"] for r in rs) if rs else float("nan")
        print(f"| {k} | {fmt(med(rs, 'entries_per_s'), ',.0f')} | {fmt(pct, '.1f')} | {fmt(per, '.2f')} "
              f"| {fmt(rep_pct, '.1f')} |")
