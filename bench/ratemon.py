#!/usr/bin/env python3
"""How steadily `weir ratemon` samples, and what it costs.

For each sample rate (default 1 kHz and 10 kHz) and counter method
(netlink, sysfs), runs the release `weir ratemon` on `lo` for --seconds,
--runs times, and reports from its own records the achieved sample rate
and the lateness of samples behind their deadlines (p50, p99), and from
/proc/PID/stat its CPU time as a percentage of one core over the same
span. It also times a re-creation of the SICS original's schedule (read
the counter, then sleep one period) in Python, to show the drift absolute
deadlines remove, and, when a C compiler is there, the machine's floor: a
bare C loop of clock_nanosleep on the same absolute deadlines, reading
nothing — what any sampler that wakes once per sample costs here.

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


FLOOR_C = r"""
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
static long ns(struct timespec t) { return t.tv_sec * 1000000000L + t.tv_nsec; }
static int cmp(const void *a, const void *b) { long x = *(const long *)a, y = *(const long *)b; return x < y ? -1 : x > y; }
int main(int argc, char **argv) {
    long rate = atol(argv[1]), secs = atol(argv[2]), period = 1000000000L / rate, n = rate * secs;
    long *late = malloc(n * sizeof(long)), k = 0, taken = 0, missed = 0;
    struct timespec t, now;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long anchor = ns(t);
    for (;;) {
        long d = anchor + ++k * period;
        if (d - anchor >= secs * 1000000000L) break;
        t.tv_sec = d / 1000000000L; t.tv_nsec = d % 1000000000L;
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        late[taken++] = ns(now) - d;
        long behind = (ns(now) - anchor) / period;
        if (behind > k) { missed += behind - k; k = behind; }
    }
    qsort(late, taken, sizeof(long), cmp);
    struct timespec c;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c);
    printf("{\"achieved\": %f, \"p50_us\": %f, \"p99_us\": %f, \"missed\": %ld, \"cpu_pct\": %f}\n",
           (double)taken / secs, late[taken / 2] / 1e3, late[taken * 99 / 100] / 1e3, missed,
           100.0 * (c.tv_sec + c.tv_nsec / 1e9) / secs);
    return 0;
}
"""


def floor_program(tmp):
    """Compiles the floor loop; None without a C compiler."""
    src, exe = os.path.join(tmp, "floor.c"), os.path.join(tmp, "floor")
    with open(src, "w") as f:
        f.write(FLOOR_C)
    for cc in ("cc", "gcc", "clang"):
        try:
            subprocess.run([cc, "-O2", "-o", exe, src], check=True, capture_output=True)
            return exe
        except (OSError, subprocess.CalledProcessError):
            continue
    return None


def floor_run(exe, rate, seconds):
    out = subprocess.run([exe, str(rate), str(int(seconds))], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


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
    with tempfile.TemporaryDirectory() as tmp:
        floor = floor_program(tmp)
        for rate in [int(r) for r in args.rates.split(",")]:
            # Interleaved, so that the machine's mood touches every variant alike.
            runs = {m: [] for m in args.methods.split(",")}
            if floor:
                runs["floor: C clock_nanosleep loop"] = []
            for _ in range(args.runs):
                for method in runs:
                    if method.startswith("floor"):
                        runs[method].append(floor_run(floor, rate, args.seconds))
                    else:
                        runs[method].append(one_run(args.weir, rate, method, args.seconds, args.interval))
            for method, rs in runs.items():
                med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
                rows.append((rate, method, med, rs))
                print(f"{rate} Hz {method}: {json.dumps(rs)}", file=sys.stderr)
    print(f"weir ratemon on lo, {args.seconds:g} s per run, medians of {args.runs} runs\n")
    print("| requested | sampler | achieved | % of requested | lateness p50 | p99 | missed | CPU % of a core |")
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
