#!/usr/bin/env python3
"""How steadily `weir ratemon` samples, and what it costs.

For each sample rate (default 1 kHz and 10 kHz) and counter method
(netlink, sysfs), runs the release `weir ratemon` on `lo` for --seconds,
--runs times, and reports from its own records the achieved sample rate
and the lateness of samples behind their deadlines (p50, p99), and from
/proc/PID/stat its CPU time as a percentage of one core over the same
span. It also times a re-creation of the SICS original's schedule (read
the counter, then sleep one period) in Python, to show the drift absolute
deadlines remove.

Usage: python3 bench/ratemon.py [--weir target/release/weir] [--seconds 30]
       [--runs 3] [--rates 1000,10000] [--methods netlink,sysfs]
Prints a Markdown table of medians over the runs.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 (1-based) of the whole line.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def records(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def wait_records(path, n, limit):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        r = records(path)
        if len(r) >= n:
            return r
        time.sleep(0.05)
    raise RuntimeError(f"{path}: fewer than {n} records after {limit} s")


def one_run(weir, rate, method, seconds, interval):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.jsonl")
        proc = subprocess.Popen(
            [weir, "ratemon", "-i", "lo", "-s", str(rate), "-e", str(interval),
             "-m", str(interval), "-k", "100000", "--counters", method,
             "--no-control", "-f", out],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # Skip the first interval (start-up), then time whole intervals.
            wait_records(out, 1, interval * 3 + 10)
            c0, t0 = cpu_seconds(proc.pid), time.monotonic()
            n = max(1, round(seconds / interval))
            recs = wait_records(out, 1 + n, seconds * 3 + 10)[1:1 + n]
            c1, t1 = cpu_seconds(proc.pid), time.monotonic()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {
        "achieved": statistics.median(r["achieved_sample_rate"] for r in recs),
        "p50_us": statistics.median(r["jitter_p50_us"] for r in recs),
        "p99_us": statistics.median(r["jitter_p99_us"] for r in recs),
        "missed": sum(r["missed_samples"] for r in recs),
        "cpu_pct": 100.0 * (c1 - c0) / (t1 - t0),
    }


def original_schedule(rate, seconds):
    """Read the counter, then sleep one period: the original's loop."""
    period = 1.0 / rate
    n = 0
    start = time.monotonic()
    with open("/sys/class/net/lo/statistics/tx_bytes") as f:
        while time.monotonic() - start < seconds:
            f.seek(0)
            f.read()
            n += 1
            time.sleep(period)
    return n / (time.monotonic() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weir", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "release", "weir"))
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--interval", type=float, default=5.0,
                   help="estimation and meter interval, seconds")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--rates", default="1000,10000")
    p.add_argument("--methods", default="netlink,sysfs")
    args = p.parse_args()
    if not os.access(args.weir, os.X_OK):
        sys.exit(f"{args.weir} is not an executable; cargo build --release -p weir")
    rows = []
    for rate in [int(r) for r in args.rates.split(",")]:
        for method in args.methods.split(","):
            runs = [one_run(args.weir, rate, method, args.seconds, args.interval)
                    for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            rows.append((rate, method, med, runs))
            print(f"{rate} Hz {method}: {json.dumps(runs)}", file=sys.stderr)
    print(f"weir ratemon on lo, {args.seconds:g} s per run, medians of {args.runs} runs\n")
    print("| requested | counters | achieved | % of requested | lateness p50 | p99 | missed | CPU % of a core |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for rate, method, m, _ in rows:
        print(f"| {rate} Hz | {method} | {m['achieved']:.1f} Hz | {100 * m['achieved'] / rate:.2f} % "
              f"| {m['p50_us']:.0f} µs | {m['p99_us']:.0f} µs | {m['missed']:.0f} | {m['cpu_pct']:.2f} |")
    print("\nThe original's schedule (read, then sleep one period; Python, 10 s):\n")
    print("| requested | achieved | % of requested |")
    print("|---:|---:|---:|")
    for rate in [int(r) for r in args.rates.split(",")]:
        got = original_schedule(rate, 10.0)
        print(f"| {rate} Hz | {got:.1f} Hz | {100 * got / rate:.1f} % |")


if __name__ == "__main__":
    main()
