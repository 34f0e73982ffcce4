#!/usr/bin/env python3
"""What a replica pays for what the Redis stream holds (issue 15).

    bench/redis_load.py [--runs N] BIN [BIN ...]

For each server binary (e.g. target/release/tickstream and an older build
from a `git worktree`), RUNS times, interleaved:

- wide: a fresh redis-server holding 1,000 entries of 280 small fields
  (symbol, price and 139 more pairs); the replica's start-up time (spawn
  to /healthz 200) and its feed thread's CPU time (from
  /proc/PID/task/TID/stat of the thread named tickstream-feed);
- oversized: a replica that is up, then 400 entries whose price is 1 MiB
  added, then one valid entry; its RSS growth once the valid entry is
  served (or after 30 s, if it never is).

Prints one line per run and the medians per binary. Starts every process
it needs on free loopback ports and stops them by PID.
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resp(commands):
    out = bytearray()
    for args in commands:
        out += b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
    return bytes(out)


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tickstream-bench-redis-")
        for _ in range(5):
            self.port = free_port()
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", self.dir],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(50):
                if self.cli("PING") == "PONG":
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
            self.stop()
        sys.exit("redis-server did not start")

    def cli(self, *args):
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                             capture_output=True, text=True)
        return out.stdout.strip()

    def pipe(self, commands):
        subprocess.run(["redis-cli", "-p", str(self.port), "--pipe"],
                       input=resp(commands), stdout=subprocess.DEVNULL, check=True)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def xadd(n, price, more=()):
    return ["XADD", "tickstream:prices", f"{n}-0", "symbol", "BTC", "price", price, *more]


def start_replica(binary, redis):
    proc = subprocess.Popen(
        [binary, "--addr", "127.0.0.1:0", "--feed", "redis",
         "--redis", f"redis://127.0.0.1:{redis.port}", "--quiet"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()
    addr = first.rsplit("http://", 1)[1].strip().rstrip("/")
    # Keep reading stderr so the server never blocks on it.
    import threading
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, addr


def healthy(addr):
    try:
        with urllib.request.urlopen(f"http://{addr}/healthz", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def feed_cpu_s(pid):
    for tid in os.listdir(f"/proc/{pid}/task"):
        stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name.startswith("tickstream-feed"):
            fields = stat[stat.rindex(")") + 2:].split()
            return (int(fields[11]) + int(fields[12])) / CLK_TCK
    return float("nan")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wide(binary, deadline_s=60):
    redis = Redis()
    try:
        more = [x for n in range(139) for x in (f"f{n}", f"v{n}")]
        redis.pipe([xadd(n, n, more) for n in range(1, 1001)])
        started = time.monotonic()
        proc, addr = start_replica(binary, redis)
        try:
            while not healthy(addr) and time.monotonic() - started < deadline_s:
                time.sleep(0.01)
            up = time.monotonic() - started
            return {"startup_s": up if healthy(addr) else None, "feed_cpu_s": feed_cpu_s(proc.pid)}
        finally:
            stop(proc)
    finally:
        redis.stop()


def served(addr, last_id):
    req = urllib.request.Request(f"http://{addr}/prices", headers={"Last-Event-ID": last_id})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            for line in r:
                if line.startswith(b"id: 401-0"):
                    return True
    except Exception:
        return False
    return False


def oversized(binary, deadline_s=30):
    redis = Redis()
    try:
        proc, addr = start_replica(binary, redis)
        try:
            while not healthy(addr):
                time.sleep(0.01)
            before = rss_kib(proc.pid)
            big = "1." + "0" * (1024 * 1024 - 2)  # finite: valid but for its length
            redis.pipe([xadd(n, big) for n in range(1, 401)])
            redis.pipe([xadd(401, "1.5")])
            started = time.monotonic()
            ok = False
            while time.monotonic() - started < deadline_s and not (ok := served(addr, "400-0")):
                time.sleep(0.1)
            return {"rss_growth_kib": rss_kib(proc.pid) - before, "valid_entry_served": ok}
        finally:
            stop(proc)
    finally:
        redis.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()
    results = {b: [] for b in args.binaries}
    for run in range(args.runs):
        for binary in args.binaries:
            row = {**wide(binary), **oversized(binary)}
            results[binary].append(row)
            print(f"run {run + 1} {binary}: {row}", flush=True)
    print("\nmedians:")
    for binary, rows in results.items():
        med = {}
        for key in rows[0]:
            values = [r[key] for r in rows if isinstance(r[key], (int, float)) and r[key] is not None
                      and not isinstance(r[key], bool)]
            med[key] = statistics.median(values) if values else None
        served_all = all(r["valid_entry_served"] for r in rows)
        print(f"{binary}: startup {med['startup_s']} s, feed CPU {med['feed_cpu_s']} s, "
              f"RSS growth {med['rss_growth_kib']} KiB, valid entry served in every run: {served_all}")


if __name__ == "__main__":
    main()
