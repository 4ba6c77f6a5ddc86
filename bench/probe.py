#!/usr/bin/env python3
"""How `weir probe`'s timings compare with curl's, and what a download costs.

Starts the release `weir perfd` on loopback, then for each size (default
1 MiB and 5 MiB) times --transfers downloads with `weir probe once --json`
and as many with `curl -w`, interleaved in blocks of --block so that both
see the same machine, each transfer on a new connection (`Connection:
close`; both tools then connect for every transfer). Reports per size:

- the medians of TTFB and TTLB by each tool, and the median of the paired
  differences |weir_i - curl_i| (the i-th transfer of each: same moment);
- CPU (user + system, from the children's rusage) per GiB downloaded, as
  measured and with each tool's cost of the same number of empty
  transfers (`/bulk/0`: process start, connects, requests) subtracted.

curl's TTFB is its time_starttransfer (first response byte: the header);
weir's is the first body byte (DESIGN's definition), which perfd sends right
after the header.

Usage: python3 bench/probe.py [--weir target/quick-release/weir]
       [--transfers 200] [--block 10] [--sizes 1048576,5242880] [--runs 3]
Prints a Markdown table; --runs repeats the whole comparison and reports
medians over the runs.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys

GIB = 1 << 30


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def start_perfd(weir):
    proc = subprocess.Popen(
        [weir, "perfd", "--listen", "127.0.0.1:0", "--no-echo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    # "weir perfd: http://127.0.0.1:PORT/bulk/BYTES and POST /echo"
    url = line.split()[2]
    return proc, url.rsplit("/bulk/", 1)[0]


def weir_block(weir, url, n):
    """n downloads in one `weir probe once` process: [(ttfb_s, ttlb_s)], cpu_s."""
    before = children_cpu()
    out = subprocess.run(
        [weir, "probe", "once", "--json", "--count", str(n), url],
        capture_output=True,
        text=True,
        check=False,
    )
    cpu = children_cpu() - before
    times = []
    for line in out.stdout.splitlines():
        j = json.loads(line)
        if not j.get("ok"):
            raise RuntimeError(f"weir probe failed: {line}")
        times.append((j.get("ttfb_us", 0) / 1e6, j["ttlb_us"] / 1e6))
    if len(times) != n:
        raise RuntimeError(f"weir probe: {len(times)} of {n} results; {out.stderr}")
    return times, cpu


def curl_block(curl, url, n):
    before = children_cpu()
    args = [curl, "-s", "-H", "Connection: close"]
    for _ in range(n):
        args += ["-o", "/dev/null", "-w", "%{time_starttransfer} %{time_total} %{http_code}\\n", url]
    out = subprocess.run(args, capture_output=True, text=True, check=False)
    cpu = children_cpu() - before
    times = []
    for line in out.stdout.splitlines():
        ttfb, ttlb, code = line.split()
        if code != "200":
            raise RuntimeError(f"curl: status {code}")
        times.append((float(ttfb), float(ttlb)))
    if len(times) != n:
        raise RuntimeError(f"curl: {len(times)} of {n} results; {out.stderr}")
    return times, cpu


def one_size(weir, curl, base, size, transfers, block):
    url = f"{base}/bulk/{size}"
    empty = f"{base}/bulk/0"
    w_times, c_times = [], []
    w_cpu = c_cpu = w_empty = c_empty = 0.0
    done = 0
    while done < transfers:
        n = min(block, transfers - done)
        t, cpu = weir_block(weir, url, n)
        w_times += t
        w_cpu += cpu
        t, cpu = curl_block(curl, url, n)
        c_times += t
        c_cpu += cpu
        _, cpu = weir_block(weir, empty, n)
        w_empty += cpu
        _, cpu = curl_block(curl, empty, n)
        c_empty += cpu
        done += n
    gib = transfers * size / GIB
    med = lambda xs: statistics.median(xs)
    return {
        "size": size,
        "weir_ttfb_ms": med([t[0] for t in w_times]) * 1e3,
        "curl_ttfb_ms": med([t[0] for t in c_times]) * 1e3,
        "weir_ttlb_ms": med([t[1] for t in w_times]) * 1e3,
        "curl_ttlb_ms": med([t[1] for t in c_times]) * 1e3,
        "paired_dttfb_ms": med([abs(a[0] - b[0]) for a, b in zip(w_times, c_times)]) * 1e3,
        "paired_dttlb_ms": med([abs(a[1] - b[1]) for a, b in zip(w_times, c_times)]) * 1e3,
        "weir_cpu_s_per_gib": w_cpu / gib,
        "curl_cpu_s_per_gib": c_cpu / gib,
        "weir_marginal_cpu_s_per_gib": max(w_cpu - w_empty, 0.0) / gib,
        "curl_marginal_cpu_s_per_gib": max(c_cpu - c_empty, 0.0) / gib,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weir", default=None)
    ap.add_argument("--curl", default=shutil.which("curl") or "curl")
    ap.add_argument("--transfers", type=int, default=200)
    ap.add_argument("--block", type=int, default=10)
    ap.add_argument("--sizes", default="1048576,5242880")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print every run's figures as JSON too")
    args = ap.parse_args()
    weir = args.weir
    if weir is None:
        target = os.environ.get("CARGO_TARGET_DIR", "target")
        for profile in ("release", "quick-release"):
            candidate = os.path.join(target, profile, "weir")
            if os.path.exists(candidate):
                weir = candidate
                break
    if weir is None or not os.path.exists(weir):
        sys.exit("no release weir binary: build it (cargo build --release -p weir) or pass --weir")
    if not shutil.which(args.curl):
        sys.exit("curl is not installed (apt-get install curl)")
    version = subprocess.run([args.curl, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    perfd, base = start_perfd(weir)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        runs = {s: [] for s in sizes}
        for _ in range(args.runs):
            for s in sizes:
                r = one_size(weir, args.curl, base, s, args.transfers, args.block)
                runs[s].append(r)
                if args.json:
                    print(json.dumps(r), file=sys.stderr)
    finally:
        perfd.terminate()
        perfd.wait()
    print(f"weir: {weir}; {version}; {args.transfers} transfers per tool and size, "
          f"blocks of {args.block}, {args.runs} run(s), medians over runs\n")
    print("| size | TTFB weir / curl (ms) | median paired ΔTTFB (ms) | TTLB weir / curl (ms) "
          "| median paired ΔTTLB (ms) | CPU s/GiB weir / curl | marginal CPU s/GiB weir / curl |")
    print("|---|---|---|---|---|---|---|")
    for s in sizes:
        m = {k: statistics.median(r[k] for r in runs[s]) for k in runs[s][0] if k != "size"}
        print(
            f"| {s >> 20} MiB | {m['weir_ttfb_ms']:.3f} / {m['curl_ttfb_ms']:.3f} "
            f"| {m['paired_dttfb_ms']:.3f} "
            f"| {m['weir_ttlb_ms']:.3f} / {m['curl_ttlb_ms']:.3f} "
            f"| {m['paired_dttlb_ms']:.3f} "
            f"| {m['weir_cpu_s_per_gib']:.3f} / {m['curl_cpu_s_per_gib']:.3f} "
            f"({m['weir_cpu_s_per_gib'] / max(m['curl_cpu_s_per_gib'], 1e-9):.2f}×) "
            f"| {m['weir_marginal_cpu_s_per_gib']:.3f} / {m['curl_marginal_cpu_s_per_gib']:.3f} "
            f"({m['weir_marginal_cpu_s_per_gib'] / max(m['curl_marginal_cpu_s_per_gib'], 1e-9):.2f}×) |"
        )


if __name__ == "__main__":
    main()
