#!/usr/bin/env python3
"""weir agent vs Debian's prometheus-node-exporter: CPU per collection and RSS.

Both run side by side on this machine for the same wall-clock window:
  * the agent (the agent-only `weir-agent` binary, or `weir agent` with
    --agent-binary weir) with all host inputs at a 10 s interval,
    delivering to a weir server on loopback (the server's own cost is not
    counted, as a Prometheus server's would not be);
  * prometheus-node-exporter with its default collectors, scraped over
    HTTP every 10 s by this script (the scrape's cost on the exporter side
    is what is counted).
CPU is the run time of the process's threads from /proc/PID/task/*/schedstat
(utime+stime from /proc/PID/stat, in 10 ms ticks, if a thread exited); RSS is sampled every second from
/proc/PID/status (VmRSS), and VmHWM is the peak. Run by bench/peers/agent.sh.
"""

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")

AGENT_CONFIG = """
[agent]
interval = "{interval}s"
flush_interval = "{interval}s"
state_dir = "{state}"
[[outputs.weir]]
urls = ["{url}"]
database = "bench"
{inputs}
"""

ALL_INPUTS = "cpu,mem,swap,system,kernel,processes,disk,diskio,net,netstat,nstat"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; after the command they
    # are at index 11 and 12.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_run_ns(pid):
    """Nanoseconds each live thread of `pid` has run (schedstat): a finer
    clock than utime + stime, whose 10 ms ticks are ~7 % of a run's CPU."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[tid] = int(f.read().split()[0])
        except OSError:
            pass
    return out


def cpu_since(pid, start_ticks, start_threads):
    """CPU seconds since the start: from schedstat when every thread alive
    at the start still is (a thread that exited took its count with it),
    else from utime + stime."""
    now = thread_run_ns(pid)
    if now and set(start_threads) <= set(now):
        return sum(ns - start_threads.get(tid, 0) for tid, ns in now.items()) / 1e9, "schedstat"
    return cpu_seconds(pid) - start_ticks, "utime+stime"


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_for_line(proc, pattern, timeout=60):
    """Reads proc's stdout until a line matches; returns the match."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(pattern, line)
        if m:
            return m
    raise SystemExit(f"agent.py: no line matching {pattern!r} from {proc.args[0]}")


class Sampler(threading.Thread):
    """Samples VmRSS of some processes every second."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.rss = {name: [] for name in pids}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(1.0):
            for name, pid in self.pids.items():
                try:
                    self.rss[name].append(status_kib(pid, "VmRSS"))
                except OSError:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir", required=True, help="the weir binary")
    ap.add_argument("--agent-binary", choices=["weir-agent", "weir"], default="weir-agent",
                    help="run the agent as the agent-only `weir-agent` binary (default) or as `weir agent`")
    ap.add_argument("--weir-agent", help="the weir-agent binary (default: beside --weir)")
    ap.add_argument("--node-exporter", default=shutil.which("prometheus-node-exporter"))
    ap.add_argument("--interval", type=int, default=10, help="seconds between collections")
    ap.add_argument("--duration", type=int, default=300, help="measured seconds, after a warm-up of two intervals")
    ap.add_argument("--out", help="write the figures as JSON here")
    ap.add_argument("--agent-inputs", default=ALL_INPUTS, help="comma-separated inputs of the agent (default: every host input)")
    ap.add_argument("--exporter-flag", action="append", default=[], help="an extra flag for node_exporter, e.g. --collector.tcpstat (repeatable)")
    args = ap.parse_args()
    if not args.node_exporter:
        raise SystemExit("agent.py: prometheus-node-exporter not found (bash bench/peers/install.sh prometheus-node-exporter)")

    tmp = tempfile.mkdtemp(prefix="weir-agent-bench-")
    procs = []
    try:
        server = subprocess.Popen(
            [args.weir, "server", "--no-auth", "--listen", "127.0.0.1:0", "--data-dir", f"{tmp}/data"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(server)
        url = wait_for_line(server, r"weir server listening on (\S+)").group(1)
        config = f"{tmp}/agent.toml"
        with open(config, "w") as f:
            inputs = "\n".join(f"[[inputs.{name}]]" for name in args.agent_inputs.split(",") if name)
            f.write(AGENT_CONFIG.format(interval=args.interval, state=f"{tmp}/state", url=url, inputs=inputs))
        if args.agent_binary == "weir":
            agent_cmd = [args.weir, "agent"]
        else:
            agent_cmd = [args.weir_agent or os.path.join(os.path.dirname(os.path.abspath(args.weir)), "weir-agent")]
        agent = subprocess.Popen([*agent_cmd, "--config", config],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(agent)
        wait_for_line(agent, r"weir agent running")
        port = free_port()
        exporter = subprocess.Popen([args.node_exporter, f"--web.listen-address=127.0.0.1:{port}", *args.exporter_flag],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(exporter)
        scrape_url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(100):
            try:
                urllib.request.urlopen(scrape_url, timeout=5).read()
                break
            except OSError:
                time.sleep(0.1)

        samples_per_scrape = []

        def scrape():
            body = urllib.request.urlopen(scrape_url, timeout=args.interval).read().decode()
            samples_per_scrape.append(sum(1 for l in body.splitlines() if l and not l.startswith("#")))

        # Warm-up: two collections each, so first-time costs (page faults,
        # the agent's first rates) are outside the window.
        next_tick = time.time()
        for _ in range(2):
            scrape()
            next_tick += args.interval
            time.sleep(max(0.0, next_tick - time.time()))
        pids = {"weir agent": agent.pid, "node_exporter": exporter.pid}
        start_cpu = {name: (cpu_seconds(pid), thread_run_ns(pid)) for name, pid in pids.items()}
        sampler = Sampler(pids)
        sampler.start()
        collections = 0
        started = time.time()
        while time.time() - started < args.duration:
            scrape()
            collections += 1
            next_tick += args.interval
            time.sleep(max(0.0, next_tick - time.time()))
        sampler.stop.set()
        sampler.join()
        elapsed = time.time() - started
        result = {"agent_command": " ".join(agent_cmd), "interval_s": args.interval, "duration_s": round(elapsed, 1), "collections": collections,
                  "agent_inputs": args.agent_inputs.split(","), "exporter_flags": args.exporter_flag}
        for name, pid in pids.items():
            cpu, source = cpu_since(pid, *start_cpu[name])
            result[name] = {
                "cpu_s": round(cpu, 4),
                "cpu_source": source,
                "cpu_ms_per_collection": round(1000 * cpu / collections, 2),
                "rss_kib_median": statistics.median(sampler.rss[name]) if sampler.rss[name] else None,
                "rss_kib_peak": status_kib(pid, "VmHWM"),
            }
        result["node_exporter"]["samples_per_scrape"] = statistics.median(samples_per_scrape)
        # What the agent delivered in the window, from the server.
        a, n = result["weir agent"], result["node_exporter"]
        result["ratios"] = {
            "cpu_per_collection": round(a["cpu_ms_per_collection"] / n["cpu_ms_per_collection"], 3) if n["cpu_ms_per_collection"] else None,
            "rss_median": round(a["rss_kib_median"] / n["rss_kib_median"], 3) if n["rss_kib_median"] else None,
            "rss_peak": round(a["rss_kib_peak"] / n["rss_kib_peak"], 3) if n["rss_kib_peak"] else None,
        }
        print(f"{collections} collections every {args.interval} s over {elapsed:.0f} s; agent {os.path.basename(agent_cmd[0])}"
              f"{' agent' if len(agent_cmd) > 1 else ''} with inputs {args.agent_inputs}; "
              f"node_exporter {' '.join(args.exporter_flag) or 'defaults'}")
        print(f"{'':16} {'CPU ms/collection':>18} {'RSS median KiB':>15} {'RSS peak KiB':>13}")
        for name in ("weir agent", "node_exporter"):
            r = result[name]
            print(f"{name:16} {r['cpu_ms_per_collection']:>18} {r['rss_kib_median']:>15} {r['rss_kib_peak']:>13}")
        rr = result["ratios"]
        print(f"{'agent/exporter':16} {rr['cpu_per_collection']:>18} {rr['rss_median']:>15} {rr['rss_peak']:>13}")
        print(f"node_exporter exposed {n['samples_per_scrape']} samples per scrape")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
