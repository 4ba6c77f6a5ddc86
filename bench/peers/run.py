#!/usr/bin/env python3
"""weir's side-by-side benchmark against VictoriaMetrics and InfluxDB 1.x.

In one run, for each system: start it on loopback with a fresh data directory
in a temporary directory, load the same TSBS cpu-only data over HTTP
(`POST /write?db=benchmark`, batches of --batch lines from --clients
concurrent connections), make it durable and compacted the way its own docs
say, measure bytes on disk and peak RSS, then time every TSBS devops query
kind (--runs timed runs after one warm-up, parameters from
`weir-bench queries`, so every system gets the same questions) and check
every answer. Prints a table of medians and weir's ratios and writes all
figures as JSON to --out.

Python 3.11 standard library only. Every process it starts is stopped at the
end, on errors and on Ctrl-C/SIGTERM too (and, through PR_SET_PDEATHSIG, if
this script is killed outright); the temporary directory is deleted unless
--keep-tmp is given.

Usually run through bench/peers/run.sh, which builds weir and weir-bench and
installs the peers first; see bench/README.md.
"""

from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import queue
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATABASE = "benchmark"
VALUES_PER_LINE = 10
HOST = "127.0.0.1"

# Timeouts, in seconds. Every HTTP call and every process wait has one.
HTTP_TIMEOUT = 30.0
WRITE_TIMEOUT = 300.0
QUERY_TIMEOUT = 300.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 120.0
SETTLE_TIMEOUT = 600.0
GEN_TIMEOUT = 600.0

# Query kinds where an empty answer can be right (no reading above 90 in the
# window); everywhere else an empty answer is an error.
MAY_BE_EMPTY = {"high-cpu-1"}

ALL_SYSTEMS = ("weir", "victoriametrics", "influxdb")
LABELS = {"weir": "weir", "victoriametrics": "VictoriaMetrics", "influxdb": "InfluxDB"}
PEERS = ("victoriametrics", "influxdb")


class BenchmarkError(Exception):
    """A failure that makes the run's figures worthless."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Processes


try:
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when this script dies."""
    if _LIBC is not None:
        PR_SET_PDEATHSIG = 1
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Processes:
    """Every process this script started, so that all of them are stopped."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()

    def start(self, argv: list[str], log_path: Path, stdout=None) -> subprocess.Popen:
        log_file = open(log_path, "ab")
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else log_file,
                stderr=log_file,
                preexec_fn=_die_with_parent,
                # Ctrl-C in the terminal goes to this script only; it stops the children.
                process_group=0,
            )
        finally:
            log_file.close()
        with self._lock:
            self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL. Returns the exit status."""
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log(f"pid {proc.pid} still running {timeout:.0f} s after SIGTERM: SIGKILL")
                proc.kill()
                proc.wait(timeout=30)
        with self._lock:
            if proc in self._procs:
                self._procs.remove(proc)
        return proc.returncode

    def stop_all(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            try:
                self.stop(proc, timeout=30)
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                log(f"stopping pid {proc.pid}: {e}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_status(pid: int, key: str) -> int | None:
    """A `kB` value of /proc/PID/status, in bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class RssWatch:
    """Samples a process's VmHWM (peak RSS) every 0.25 s while it runs."""

    def __init__(self) -> None:
        self.peak = 0
        self._pid: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def watch(self, pid: int) -> None:
        self.sample()
        self._pid = pid
        self.sample()

    def unwatch(self) -> None:
        self.sample()
        self._pid = None

    def sample(self) -> None:
        if self._pid is not None:
            hwm = proc_status(self._pid, "VmHWM")
            if hwm is not None:
                self.peak = max(self.peak, hwm)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self.sample()

    def close(self) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(timeout=5)


def disk_usage(path: Path) -> tuple[int, int]:
    """(allocated bytes as `du -s` counts them, apparent bytes) under `path`."""
    allocated = apparent = 0
    seen: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue  # removed by a merge while we looked
            if (st.st_dev, st.st_ino) in seen:
                continue  # hard links (VictoriaMetrics snapshots) count once
            seen.add((st.st_dev, st.st_ino))
            allocated += st.st_blocks * 512
            if not os.path.isdir(os.path.join(root, name)):
                apparent += st.st_size
    return allocated, apparent


# --------------------------------------------------------------------------
# HTTP


def http_call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http(port: int, path: str, ok: tuple[int, ...], proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchmarkError(f"{what} exited with status {proc.returncode} while starting")
        try:
            status, _ = http_call(port, "GET", path, timeout=2)
            if status in ok:
                return
            last = f"status {status}"
        except OSError as e:
            last = str(e)
        time.sleep(0.1)
    raise BenchmarkError(f"{what} not ready after {START_TIMEOUT:.0f} s ({last})")


# --------------------------------------------------------------------------
# The systems


@dataclass
class Answer:
    """What a query returned: rows (InfluxDB, weir) or points (VictoriaMetrics)."""

    rows: int
    series: int | None = None


class System:
    """One system under test: how to start, load, settle, query and stop it."""

    name = ""
    write_path = f"/write?db={DATABASE}"
    write_ok = (204,)
    # Which text of a `weir-bench queries` line this system runs.
    language = ""

    def __init__(self, workdir: Path, procs: Processes) -> None:
        self.workdir = workdir / self.name
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True)
        self.log_path = self.workdir / "log.txt"
        self.procs = procs
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.rss = RssWatch()
        self.cpu_seconds_before_restart = 0.0

    @property
    def label(self) -> str:
        return LABELS[self.name]

    def version(self) -> str:
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def prepare(self) -> None:
        """Anything needed before the first write."""

    def settle(self) -> dict[str, Any]:
        """Makes the loaded data durable and compacted, as the system's docs say."""
        raise NotImplementedError

    def query_request(self, entry: dict[str, Any]) -> tuple[str, str, bytes | None, dict[str, str]] | None:
        """(method, path, body, headers) for one line of `weir-bench queries`, or None if n/a."""
        raise NotImplementedError

    def parse_answer(self, kind: str, body: bytes) -> Answer:
        raise NotImplementedError

    def wal_dirs(self) -> list[Path]:
        """Directories holding the system's log of not yet compacted writes."""
        return []

    def derived_bytes(self) -> int:
        """Bytes on disk (allocated) of derived data kept beside the points (weir's rollups)."""
        return 0

    def cpu_seconds(self) -> float:
        if self.proc is None:
            return self.cpu_seconds_before_restart
        now = proc_cpu_seconds(self.proc.pid) or 0.0
        return self.cpu_seconds_before_restart + now

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.rss.sample()
        self.cpu_seconds_before_restart += proc_cpu_seconds(self.proc.pid) or 0.0
        status = self.procs.stop(self.proc)
        self.rss.unwatch()
        self.proc = None
        return status

    def close(self) -> None:
        self.stop()
        self.rss.close()


class VictoriaMetrics(System):
    name = "victoriametrics"
    language = "metricsql"

    def version(self) -> str:
        return package_version("victoria-metrics")

    def start(self) -> None:
        self.port = free_port()
        argv = [
            "victoria-metrics",
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr={HOST}:{self.port}",
            # The data set is from 2016: keep it (the default is one month).
            "-retentionPeriod=100y",
            # No response cache: every system computes every answer.
            "-search.disableCache",
            "-loggerLevel=WARN",
        ]
        self.proc = self.procs.start(argv, self.log_path)
        self.rss.watch(self.proc.pid)
        wait_http(self.port, "/health", (200,), self.proc, self.label)

    def metrics(self) -> dict[str, float]:
        status, body = http_call(self.port, "GET", "/metrics")
        if status != 200:
            raise BenchmarkError(f"VictoriaMetrics /metrics: status {status}")
        return parse_prometheus(body.decode())

    def settle(self) -> dict[str, Any]:
        # Docs: /internal/force_flush writes the in-memory buffers to disk;
        # background merges then compact the parts.
        started = time.monotonic()
        status, body = http_call(self.port, "GET", "/internal/force_flush", timeout=SETTLE_TIMEOUT)
        if status != 200:
            raise BenchmarkError(f"VictoriaMetrics /internal/force_flush: status {status} {body[:200]!r}")

        def busy() -> str | None:
            m = self.metrics()
            merges = sum(v for k, v in m.items() if k.startswith("vm_active_merges"))
            pending = sum(v for k, v in m.items() if k.startswith("vm_pending_rows"))
            if merges or pending:
                return f"{merges:.0f} merges, {pending:.0f} pending rows"
            return None

        wait_until_quiet(self, busy)
        return {"method": "GET /internal/force_flush, then no active merges, no pending rows "
                          "and a stable data directory", "seconds": time.monotonic() - started}

    def query_request(self, entry):
        q = entry.get("metricsql")
        if q is None:
            return None
        params = urllib.parse.urlencode(
            {"query": q["query"], "start": q["start"], "end": q["end"], "step": q["step"]}
        )
        return "GET", f"/api/v1/query_range?{params}", None, {}

    def parse_answer(self, kind: str, body: bytes) -> Answer:
        doc = json.loads(body)
        if doc.get("status") != "success":
            raise BenchmarkError(f"status {doc.get('status')}: {doc.get('error')}")
        result = doc["data"]["result"]
        return Answer(rows=sum(len(s.get("values", [])) for s in result), series=len(result))


class InfluxDB(System):
    name = "influxdb"
    language = "influxql"

    def version(self) -> str:
        return package_version("influxdb")

    def start(self) -> None:
        if not self.port:
            self.port = free_port()
            self.rpc_port = free_port()
        config = self.workdir / "influxdb.conf"
        config.write_text(
            f"""# Generated by bench/peers/run.py: defaults except where noted.
reporting-disabled = true
bind-address = "{HOST}:{self.rpc_port}"

[meta]
  dir = "{self.data_dir / 'meta'}"

[data]
  dir = "{self.data_dir / 'data'}"
  wal-dir = "{self.data_dir / 'wal'}"
  # wal-fsync-delay stays at its default, 0s: every write is fsynced before it is acknowledged.
  # A shard idle this long is snapshotted from the WAL to TSM, then fully compacted
  # (defaults 10m and 4h): this only decides when an idle shard is compacted, so that
  # bytes on disk are measured at rest without waiting hours.
  cache-snapshot-write-cold-duration = "5s"
  compact-full-write-cold-duration = "10s"

[monitor]
  # No _internal database: the data directory holds the benchmark's data only.
  store-enabled = false

[http]
  bind-address = "{HOST}:{self.port}"
  log-enabled = false
"""
        )
        self.proc = self.procs.start(["influxd", "-config", str(config)], self.log_path)
        self.rss.watch(self.proc.pid)
        wait_http(self.port, "/ping", (204,), self.proc, self.label)

    def prepare(self) -> None:
        q = urllib.parse.urlencode({"q": f"CREATE DATABASE {DATABASE}"})
        status, body = http_call(self.port, "POST", f"/query?{q}")
        if status != 200 or b'"error"' in body:
            raise BenchmarkError(f"InfluxDB CREATE DATABASE: status {status} {body[:200]!r}")

    def wal_dirs(self) -> list[Path]:
        return [self.data_dir / "wal"]

    def engine_stats(self) -> dict[str, float]:
        status, body = http_call(self.port, "GET", "/debug/vars")
        if status != 200:
            raise BenchmarkError(f"InfluxDB /debug/vars: status {status}")
        totals: dict[str, float] = {}
        for key, value in json.loads(body).items():
            if key.startswith("tsm1_engine") and isinstance(value, dict):
                for k, v in value.get("values", {}).items():
                    totals[k] = totals.get(k, 0) + v
            if key.startswith("tsm1_cache") and isinstance(value, dict):
                for k, v in value.get("values", {}).items():
                    totals["cache." + k] = totals.get("cache." + k, 0) + v
        return totals

    def settle(self) -> dict[str, Any]:
        # Docs: the cache (and its WAL) is snapshotted to TSM files once a shard
        # is write-cold, and a cold shard is fully compacted; wait for both.
        started = time.monotonic()

        def busy() -> str | None:
            wal = sum(p.stat().st_size for p in (self.data_dir / "wal").rglob("*.wal"))
            stats = self.engine_stats()
            active = sum(v for k, v in stats.items() if k.endswith("CompactionsActive"))
            cache = stats.get("cache.memBytes", 0)
            if wal or active or cache:
                return f"WAL {wal} B, cache {cache:.0f} B, {active:.0f} compactions running"
            return None

        # Quiet for longer than the full-compaction cold duration: a shard that
        # needs one has had it.
        wait_until_quiet(self, busy, quiet_seconds=25)
        stats = self.engine_stats()
        tsm = sorted(p.name for p in (self.data_dir / "data").rglob("*.tsm"))
        return {"method": "WAL snapshotted to TSM (empty WAL and cache), then no compaction "
                          "running and a stable data directory for 25 s (longer than "
                          "compact-full-write-cold-duration)",
                "seconds": time.monotonic() - started,
                "tsm_files": tsm,
                "full_compactions": stats.get("tsmFullCompactions", 0),
                "optimize_compactions": stats.get("tsmOptimizeCompactions", 0)}

    def query_request(self, entry):
        q = entry.get("influxql")
        if q is None:
            return None
        params = urllib.parse.urlencode({"db": DATABASE, "q": q, "epoch": "ns"})
        return "GET", f"/query?{params}", None, {}

    def parse_answer(self, kind: str, body: bytes) -> Answer:
        doc = json.loads(body)
        if "error" in doc:
            raise BenchmarkError(doc["error"])
        # TSBS's InfluxQL keeps group-by-time's default fill(null): a bucket
        # without data is a row of nulls. SQL has no such rows, so count the
        # rows with at least one value besides the time.
        rows = series = 0
        for result in doc.get("results", []):
            if "error" in result:
                raise BenchmarkError(result["error"])
            for s in result.get("series", []):
                series += 1
                rows += sum(1 for row in s.get("values", []) if any(v is not None for v in row[1:]))
        return Answer(rows=rows, series=series)


class Weir(System):
    name = "weir"
    language = "sql"

    def __init__(self, workdir: Path, procs: Processes, binary: str, persist_wait: float,
                 rollups: bool) -> None:
        super().__init__(workdir, procs)
        self.binary = binary
        self.persist_wait = persist_wait
        self.rollups = rollups

    def version(self) -> str:
        try:
            out = subprocess.run([self.binary, "--version"], capture_output=True, text=True,
                                 timeout=30, check=False)
            return out.stdout.strip() or out.stderr.strip()
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"? ({e})"

    def start(self) -> None:
        # weir picks a free port itself and prints the address it listens on.
        argv = [self.binary, "server", "--no-auth", "--listen", f"{HOST}:0",
                "--data-dir", str(self.data_dir)]
        if not self.rollups:
            config = self.workdir / "weir.toml"
            config.write_text(f"[databases.{DATABASE}]\nrollups = false\n")
            argv += ["--config", str(config)]
        self.proc = self.procs.start(argv, self.log_path, stdout=subprocess.PIPE)
        self.rss.watch(self.proc.pid)
        url = read_listen_line(self.proc, self.log_path, self.label)
        self.port = urllib.parse.urlsplit(url).port or 0
        wait_http(self.port, "/ping", (204,), self.proc, self.label)

    def wal_dirs(self) -> list[Path]:
        return [self.data_dir / "wal"]

    def derived_bytes(self) -> int:
        # The manifest (replaced atomically) names every Parquet file, rollup files marked;
        # counted in allocated blocks, as disk_usage counts the directory.
        path = self.data_dir / "manifest.json"
        if not path.exists():
            return 0
        manifest = json.loads(path.read_text())
        total = 0
        for f in manifest["files"]:
            if f.get("rollup"):
                try:
                    total += (self.data_dir / "data" / f["name"]).stat().st_blocks * 512
                except FileNotFoundError:
                    pass  # compacted away since the manifest was read
        return total

    def settle(self) -> dict[str, Any]:
        # weir acknowledges a write once its log record is fsynced; it persists
        # the write buffer to Parquet in the background (budget or interval) and
        # on SIGTERM flushes and closes. Measure the directory it leaves, then
        # restart it on the same directory for the queries.
        started = time.monotonic()
        status = self.stop()
        if status != 0:
            raise BenchmarkError(f"weir exited with status {status} after SIGTERM")
        stopped = time.monotonic() - started
        allocated, apparent = disk_usage(self.data_dir)
        wal = disk_usage(self.data_dir / "wal")[0] if (self.data_dir / "wal").exists() else 0
        self.start()
        out = {"method": "SIGTERM (graceful shutdown: flush and close), measured stopped, "
                         "then restarted on the same directory for the queries",
               "seconds": stopped, "restart_seconds": time.monotonic() - started - stopped,
               "at_shutdown": {"bytes": allocated, "apparent_bytes": apparent, "wal_bytes": wal}}
        if self.persist_wait > 0:
            # weir persists its buffer at a budget or an interval, not at
            # shutdown; optionally wait for that, then the directory is
            # measured again (the caller's measurement).
            waited = time.monotonic()
            deadline = waited + self.persist_wait
            while self.buffer_rows() > 0:
                if time.monotonic() > deadline:
                    raise BenchmarkError(f"weir still has buffered rows after {self.persist_wait:.0f} s")
                time.sleep(1)
            wait_until_quiet(self, lambda: None)
            out["method"] += f"; then waited for weir's own persist ({time.monotonic() - waited:.0f} s)"
        return out

    def buffer_rows(self) -> float:
        status, body = http_call(self.port, "GET", "/metrics")
        if status != 200:
            raise BenchmarkError(f"weir /metrics: status {status}")
        return parse_prometheus(body.decode()).get("weir_buffer_rows", 0)

    def query_request(self, entry):
        body = json.dumps({"db": DATABASE, "sql": entry["sql"], "format": "json"}).encode()
        return "POST", "/api/v1/query", body, {"Content-Type": "application/json"}

    def parse_answer(self, kind: str, body: bytes) -> Answer:
        rows = json.loads(body)
        if not isinstance(rows, list):
            raise BenchmarkError(f"expected a JSON array of rows, got {str(rows)[:200]}")
        return Answer(rows=len(rows))


def read_listen_line(proc: subprocess.Popen, log_path: Path, what: str) -> str:
    """Waits for `… listening on URL` on the process's standard output; a
    thread keeps copying the rest of it to the log until it ends."""
    found: list[str] = []
    seen = threading.Event()

    def reader() -> None:
        with open(log_path, "ab") as log_file:
            for raw in proc.stdout:
                log_file.write(raw)
                log_file.flush()
                m = re.search(rb"listening on (\S+)", raw)
                if m and not seen.is_set():
                    found.append(m.group(1).decode())
                    seen.set()
        seen.set()

    threading.Thread(target=reader, daemon=True).start()
    seen.wait(timeout=START_TIMEOUT)
    if not found:
        if proc.poll() is not None:
            raise BenchmarkError(f"{what} exited with status {proc.returncode} while starting")
        raise BenchmarkError(f"{what} printed no listening address in {START_TIMEOUT:.0f} s")
    url = found[0]
    return url if "://" in url else f"http://{url}"


def wait_until_quiet(system: System, busy, quiet_seconds: float = 5) -> None:
    """Polls until `busy()` is None and the data directory's size is unchanged
    for `quiet_seconds`, or fails after SETTLE_TIMEOUT."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last_size = None
    quiet_since = None
    state = "not checked"
    while time.monotonic() < deadline:
        if system.proc is not None and system.proc.poll() is not None:
            raise BenchmarkError(f"{system.label} exited with status {system.proc.returncode}")
        state = busy()
        size = disk_usage(system.data_dir)[1]
        now = time.monotonic()
        if state is None and size == last_size:
            quiet_since = quiet_since or now
            if now - quiet_since >= quiet_seconds:
                return
        else:
            quiet_since = None
        last_size = size
        time.sleep(1)
    raise BenchmarkError(f"{system.label} still busy after {SETTLE_TIMEOUT:.0f} s: {state}")


def parse_prometheus(text: str) -> dict[str, float]:
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        try:
            values[name] = float(value)
        except ValueError:
            continue
    return values


def package_version(package: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package],
                             capture_output=True, text=True, timeout=30, check=False)
        return out.stdout.strip() or "?"
    except (OSError, subprocess.TimeoutExpired):
        return "?"


# --------------------------------------------------------------------------
# Load


def read_batches(path: Path, batch_lines: int) -> tuple[list[bytes], int]:
    """The data file split into batches of `batch_lines` lines."""
    data = path.read_bytes()
    batches = []
    lines = 0
    pos = 0
    while pos < len(data):
        end = pos
        n = 0
        while n < batch_lines:
            nl = data.find(b"\n", end)
            if nl < 0:
                if end < len(data):  # a last line without its newline
                    end = len(data)
                    n += 1
                break
            end = nl + 1
            n += 1
        batches.append(data[pos:end])
        lines += n
        pos = end
    return batches, lines


def load(system: System, batches: list[bytes], clients: int) -> float:
    """Writes every batch from `clients` concurrent connections; returns the
    seconds from the first request to the last acknowledgement."""
    work: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    for b in batches:
        work.put(b)
    errors: list[str] = []
    failed = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection(HOST, system.port, timeout=WRITE_TIMEOUT)
        try:
            while not failed.is_set():
                try:
                    batch = work.get_nowait()
                except queue.Empty:
                    return
                conn.request("POST", system.write_path, body=batch,
                             headers={"Content-Type": "text/plain; charset=utf-8"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status not in system.write_ok:
                    errors.append(f"status {resp.status}: {body[:300]!r}")
                    failed.set()
        except (OSError, http.client.HTTPException) as e:
            errors.append(f"{type(e).__name__}: {e}")
            failed.set()
        finally:
            conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=WRITE_TIMEOUT * len(batches))
        if t.is_alive():
            raise BenchmarkError(f"{system.label}: a write client is still running")
    seconds = time.perf_counter() - started
    if errors:
        raise BenchmarkError(f"{system.label} refused a write: {errors[0]}")
    return seconds


# --------------------------------------------------------------------------
# Queries


@dataclass
class KindResult:
    times_ms: list[float] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    series: list[int | None] = field(default_factory=list)
    warmup_ms: float | None = None
    na: bool = False
    error: str | None = None

    def median(self) -> float | None:
        return statistics.median(self.times_ms) if self.times_ms and not self.error else None


def run_queries(system: System, queries: list[dict[str, Any]],
                new_connection_each: bool = False) -> dict[str, KindResult]:
    results: dict[str, KindResult] = {}
    conn = http.client.HTTPConnection(HOST, system.port, timeout=QUERY_TIMEOUT)
    try:
        for entry in queries:
            kind = entry["kind"]
            res = results.setdefault(kind, KindResult())
            if res.error:
                continue
            request = system.query_request(entry)
            if request is None:
                res.na = True
                continue
            method, path, body, headers = request
            try:
                started = time.perf_counter()
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
                elapsed = (time.perf_counter() - started) * 1e3
                if resp.status != 200:
                    raise BenchmarkError(f"status {resp.status}: {payload[:300]!r}")
                answer = system.parse_answer(kind, payload)
                if answer.rows == 0 and kind not in MAY_BE_EMPTY:
                    raise BenchmarkError("empty answer where the data set has rows")
            except (OSError, http.client.HTTPException, ValueError, KeyError, BenchmarkError) as e:
                res.error = f"run {entry['run']}: {type(e).__name__}: {e}"
                log(f"{system.label} {kind}: {res.error}")
                conn.close()
                conn = http.client.HTTPConnection(HOST, system.port, timeout=QUERY_TIMEOUT)
                continue
            if new_connection_each:
                conn.close()
                conn = http.client.HTTPConnection(HOST, system.port, timeout=QUERY_TIMEOUT)
            if entry["warmup"]:
                res.warmup_ms = elapsed
            else:
                res.times_ms.append(elapsed)
                res.rows.append(answer.rows)
                res.series.append(answer.series)
    finally:
        conn.close()
    return results


# --------------------------------------------------------------------------
# One system, start to finish


def bench_system(system: System, batches: list[bytes], lines: int, clients: int,
                 queries: list[dict[str, Any]], new_connection_each: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system.label, "version": system.version()}
    log(f"{system.label} {out['version']}: starting")
    system.start()
    system.prepare()
    log(f"{system.label}: loading {lines} lines in {len(batches)} batches from {clients} clients")
    cpu_before = system.cpu_seconds()
    client_before = resource.getrusage(resource.RUSAGE_SELF)
    seconds = load(system, batches, clients)
    client_after = resource.getrusage(resource.RUSAGE_SELF)
    out["ingest"] = {
        "lines": lines,
        "values": lines * VALUES_PER_LINE,
        "seconds": seconds,
        "lines_per_second": lines / seconds,
        "values_per_second": lines * VALUES_PER_LINE / seconds,
        "server_cpu_seconds": system.cpu_seconds() - cpu_before,
        # This script's own CPU time while loading: the load generator shares the cores.
        "client_cpu_seconds": (client_after.ru_utime + client_after.ru_stime)
        - (client_before.ru_utime + client_before.ru_stime),
        "peak_rss_bytes": system.rss.peak,
    }
    log(f"{system.label}: {lines * VALUES_PER_LINE / seconds:,.0f} values/s; settling")
    out["settle"] = system.settle()
    allocated, apparent = disk_usage(system.data_dir)
    wal_allocated = sum(disk_usage(d)[0] for d in system.wal_dirs() if d.exists())
    values = lines * VALUES_PER_LINE
    derived = system.derived_bytes()
    out["disk"] = {
        "bytes": allocated,
        "apparent_bytes": apparent,
        "wal_bytes": wal_allocated,
        "derived_bytes": derived,
        "bytes_per_value": allocated / values,
        "apparent_bytes_per_value": apparent / values,
        "bytes_per_value_without_wal": (allocated - wal_allocated) / values,
        # The points alone: weir's rollups (issue 8's sketches) are data no peer keeps.
        "bytes_per_value_without_derived": (allocated - derived) / values,
    }
    log(f"{system.label}: {allocated:,} bytes on disk ({allocated / values:.3f} B/value, "
        f"WAL {wal_allocated:,}); queries")
    results = run_queries(system, queries, new_connection_each)
    out["queries"] = {
        kind: {
            "na": r.na,
            "error": r.error,
            "median_ms": r.median(),
            "min_ms": min(r.times_ms) if r.times_ms else None,
            "max_ms": max(r.times_ms) if r.times_ms else None,
            "warmup_ms": r.warmup_ms,
            "times_ms": r.times_ms,
            "rows": r.rows,
            "series": r.series,
        }
        for kind, r in results.items()
    }
    system.rss.sample()
    out["peak_rss_bytes"] = system.rss.peak
    out["cpu_seconds_total"] = system.cpu_seconds()
    status = system.stop()
    out["exit_status"] = status
    log(f"{system.label}: done, peak RSS {system.rss.peak / 2**20:.0f} MiB")
    return out


# --------------------------------------------------------------------------
# Report


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "rate":
        return f"{value / 1e6:.2f} M" if value >= 1e6 else f"{value / 1e3:.0f} k"
    if unit == "ms":
        return f"{value:.1f}" if value < 100 else f"{value:.0f}"
    if unit == "MiB":
        return f"{value / 2**20:.0f}"
    if unit == "bytes":
        return f"{value:.3f}"
    if unit == "s":
        return f"{value:.1f}"
    return f"{value}"


def check_consistency(results: dict[str, dict[str, Any]], kinds: list[str]) -> list[str]:
    """weir and InfluxDB answer the same questions in rows: their counts must agree."""
    problems = []
    if "weir" not in results or "influxdb" not in results:
        return problems
    for kind in kinds:
        a = results["weir"]["queries"].get(kind, {})
        b = results["influxdb"]["queries"].get(kind, {})
        if a.get("error") or b.get("error") or not a.get("rows") or not b.get("rows"):
            continue
        if a["rows"] != b["rows"]:
            problems.append(f"{kind}: weir rows {a['rows']} vs InfluxDB rows {b['rows']}")
    return problems


def table(results: dict[str, dict[str, Any]], systems: list[str], kinds: list[str]) -> str:
    cols = [LABELS[s] for s in systems]
    peers = [p for p in PEERS if p in systems and "weir" in systems]
    head = ["metric"] + cols + [f"weir ÷ {LABELS[p]}" for p in peers] + ["better"]
    rows: list[list[str]] = []

    def add(label: str, getter, unit: str, better: str) -> None:
        values = {}
        for s in systems:
            try:
                values[s] = getter(results[s])
            except (KeyError, TypeError):
                values[s] = None
        row = [label] + [fmt(values[s], unit) for s in systems]
        for p in peers:
            w, v = values.get("weir"), values.get(p)
            row.append(f"{w / v:.2f}×" if w is not None and v else "-")
        rows.append(row + [better])

    add("ingest values/s", lambda r: r["ingest"]["values_per_second"], "rate", "higher")
    add("ingest lines/s", lambda r: r["ingest"]["lines_per_second"], "rate", "higher")
    add("server CPU s in load", lambda r: r["ingest"]["server_cpu_seconds"], "s", "lower")
    add("bytes on disk / value", lambda r: r["disk"]["bytes_per_value"], "bytes", "lower")
    add("  outside the WAL dir", lambda r: r["disk"]["bytes_per_value_without_wal"], "bytes", "lower")
    add("  without weir's rollups", lambda r: r["disk"]["bytes_per_value_without_derived"], "bytes",
        "lower")
    add("peak RSS (MiB)", lambda r: r["peak_rss_bytes"], "MiB", "lower")
    for kind in kinds:
        def getter(r, kind=kind):
            q = r["queries"][kind]
            if q["na"]:
                return None
            return q["median_ms"]
        label = f"{kind} (ms)"
        add(label, getter, "ms", "lower")
        # Mark n/a and errors explicitly rather than as a bare "-".
        for i, s in enumerate(systems):
            q = results.get(s, {}).get("queries", {}).get(kind)
            if q is None:
                continue
            if q["na"]:
                rows[-1][1 + i] = "n/a"
            elif q["error"]:
                rows[-1][1 + i] = "ERROR"
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(lines)


def rows_table(results: dict[str, dict[str, Any]], systems: list[str], kinds: list[str]) -> str:
    """Rows per answer (min–max over the timed runs); VictoriaMetrics: points."""
    out = ["rows per answer (min-max over timed runs; VictoriaMetrics: points in series)"]
    for kind in kinds:
        cells = []
        for s in systems:
            q = results.get(s, {}).get("queries", {}).get(kind)
            if q is None:
                continue
            if q["na"]:
                cells.append(f"{LABELS[s]} n/a")
            elif q["error"]:
                cells.append(f"{LABELS[s]} ERROR")
            elif q["rows"]:
                cells.append(f"{LABELS[s]} {min(q['rows'])}-{max(q['rows'])}")
        out.append(f"  {kind:<24} " + ", ".join(cells))
    return "\n".join(out)


# --------------------------------------------------------------------------
# Main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weir-bench", required=True, help="path of the weir-bench binary")
    parser.add_argument("--weir", help="path of the weir binary (needed when weir is benchmarked)")
    parser.add_argument("--systems", default=",".join(ALL_SYSTEMS),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--hosts", type=int, default=100, help="TSBS hosts (default %(default)s)")
    parser.add_argument("--hours", type=int, default=24, help="TSBS hours (default %(default)s)")
    parser.add_argument("--batch", type=int, default=5000, help="lines per write (default %(default)s)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent writers (default %(default)s)")
    parser.add_argument("--runs", type=int, default=10,
                        help="timed runs per query kind after one warm-up (default %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the query parameters")
    parser.add_argument("--connection-per-query", action="store_true",
                        help="open a new connection for every query (default: one keep-alive "
                             "connection per system, as TSBS's query runners do)")
    parser.add_argument("--weir-persist-wait", type=float, default=0, metavar="SECONDS",
                        help="after weir's restart, wait up to this long for it to persist its "
                             "write buffer before measuring the disk (it persists at a buffer "
                             "budget or every 10 minutes, not at shutdown); default: don't wait")
    parser.add_argument("--weir-rollups", choices=["on", "off"], default="on",
                        help="off: run weir with `rollups = false` for the benchmark database "
                             "(no half-hour and daily rollups written); default %(default)s")
    parser.add_argument("--out", type=Path, required=True, help="where to write the results as JSON")
    parser.add_argument("--tmp", type=Path, default=None,
                        help="parent of the temporary directory (default: the system's)")
    parser.add_argument("--keep-tmp", action="store_true",
                        help="keep the temporary directory (data, logs) for inspection")
    args = parser.parse_args()

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ALL_SYSTEMS:
            parser.error(f"unknown system {s!r}; choose from {', '.join(ALL_SYSTEMS)}")
    if "weir" in systems and not args.weir:
        parser.error("--weir is needed to benchmark weir")
    if args.runs < 10:
        log(f"note: --runs {args.runs} is fewer than the 10 the benchmark asks for")

    # SIGTERM ends the run like Ctrl-C: every process is stopped, the temporary directory deleted.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    procs = Processes()
    tmp = Path(tempfile.mkdtemp(prefix="weir-peers-", dir=args.tmp))
    log(f"working in {tmp}")
    results: dict[str, dict[str, Any]] = {}
    failures: list[str] = []
    try:
        queries = generate_queries(args)
        kinds = list(dict.fromkeys(q["kind"] for q in queries))
        data_path = tmp / "cpu.lp"
        log(f"generating TSBS cpu-only: {args.hosts} hosts x {args.hours} h")
        with open(data_path, "wb") as f:
            subprocess.run([args.weir_bench, "gen", "tsbs-cpu", "--hosts", str(args.hosts),
                            "--hours", str(args.hours)], stdout=f, check=True, timeout=GEN_TIMEOUT)
        batches, lines = read_batches(data_path, args.batch)
        data_path.unlink()
        log(f"{lines} lines, {sum(map(len, batches)):,} bytes, {len(batches)} batches")

        for name in systems:
            system: System
            if name == "weir":
                system = Weir(tmp, procs, args.weir, args.weir_persist_wait,
                              args.weir_rollups == "on")
            elif name == "victoriametrics":
                system = VictoriaMetrics(tmp, procs)
            else:
                system = InfluxDB(tmp, procs)
            try:
                results[name] = bench_system(system, batches, lines, args.clients, queries,
                                             args.connection_per_query)
            except BenchmarkError as e:
                failures.append(f"{system.label}: {e}")
                log(f"{system.label} FAILED: {e} (log: {system.log_path})")
                tail = tail_of(system.log_path)
                if tail:
                    log(f"last lines of its log:\n{tail}")
            finally:
                system.close()
                # Each system's data goes once it has been measured: disk is limited.
                if not args.keep_tmp:
                    shutil.rmtree(system.data_dir, ignore_errors=True)
        del batches

        for name, r in results.items():
            for kind, q in r["queries"].items():
                if q["error"]:
                    failures.append(f"{LABELS[name]} {kind}: {q['error']}")
        mismatches = check_consistency(results, kinds)
        report = {
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()},
            "results": results,
            "row_mismatches": mismatches,
            "failures": failures,
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")

        present = [s for s in systems if s in results]
        print(f"\nTSBS cpu-only {args.hosts} hosts x {args.hours} h ({lines} lines, "
              f"{lines * VALUES_PER_LINE} values), batches of {args.batch} lines, "
              f"{args.clients} clients; queries: median of {args.runs} runs after 1 warm-up, "
              + ("a new connection each" if args.connection_per_query else "one keep-alive connection"))
        print(", ".join(f"{LABELS[s]} {results[s]['version']}" for s in present))
        if present:
            print(table(results, present, kinds))
            print()
            print(rows_table(results, present, kinds))
        for m in mismatches:
            print(f"ROW COUNT MISMATCH: {m}")
        for f in failures:
            print(f"FAILED: {f}")
        print(f"\nresults: {args.out}")
        return 1 if failures or mismatches else 0
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        log(f"FAILED: {e}")
        return 1
    except KeyboardInterrupt as e:
        log(f"interrupted ({e or 'Ctrl-C'}): stopping everything")
        return 130
    finally:
        procs.stop_all()
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def generate_queries(args) -> list[dict[str, Any]]:
    out = subprocess.run(
        [args.weir_bench, "queries", "--hosts", str(args.hosts), "--hours", str(args.hours),
         "--seed", str(args.seed), "--runs", str(args.runs)],
        capture_output=True, text=True, timeout=GEN_TIMEOUT, check=True,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def tail_of(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
