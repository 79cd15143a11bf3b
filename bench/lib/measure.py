"""Running a command under an allocator and measuring it; interleaved rounds; statistics.

One run: `/usr/bin/time -f %M -o FILE env LD_PRELOAD=... cmd` — the allocator is preloaded into
the command only (env sets it after time), libpersist gets a fresh heap directory with
PERSIST_FILE=<dir>/%e-%p.heap so every process of the run has its own heap file. Peak RSS comes
from time (the kernel's ru_maxrss of the command and the children it reaped: for g++ that is
cc1plus). It is not taken from our own wait4: Linux carries the forking process's RSS high-water
mark across exec, and this Python process is bigger than many workloads. Wall time is measured
around the whole run (time and env add the same ~1 ms to every allocator). For libpersist the heap
files' allocated size (what du reports) is added up before the directory is removed.
"""
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
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .workloads import expand

RESULT_RE = re.compile(r"^RESULT (\S+)=(\S+)$", re.M)


@dataclass
class Sample:
    ok: bool
    values: Dict[str, float] = field(default_factory=dict)  # metric key -> raw value
    rss_kb: Optional[int] = None
    heap_bytes: Optional[int] = None
    error: str = ""
    notes: List[str] = field(default_factory=list)


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def clean_env():
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("PERSIST_") or k in ("LD_PRELOAD", "PYTHONMALLOC"):
            del env[k]
    return env


def child_vars(alloc, extra, heap_dir):
    """The variables a command runs with: the workload's own, the preload, the heap file."""
    v = dict(extra)
    if alloc is not None:
        v.update(alloc.env)
    if alloc is not None and alloc.preload:
        v["LD_PRELOAD"] = alloc.preload
    if heap_dir:
        v["PERSIST_FILE"] = os.path.join(heap_dir, "%e-%p.heap")
    return v


def child_env(alloc, extra, heap_dir):
    """An environment for a command started directly (no time/env wrapper)."""
    env = clean_env()
    env.update(child_vars(alloc, extra, heap_dir))
    return env


def wrapped(argv, variables, rss_file):
    """argv under /usr/bin/time (peak RSS into rss_file) with the variables set by env, so
    that only the command itself gets them."""
    return (["/usr/bin/time", "-f", "%M", "-o", rss_file, "/usr/bin/env"] +
            ["%s=%s" % kv for kv in sorted(variables.items())] + list(argv))


def read_rss(rss_file):
    try:
        with open(rss_file) as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def heap_usage(heap_dir):
    total = 0
    for name in os.listdir(heap_dir):
        try:
            total += os.stat(os.path.join(heap_dir, name)).st_blocks * 512
        except FileNotFoundError:
            pass
    return total


def spawn(argv, env, stdin_path=None, cwd=None, stdout=None, stderr=None):
    """Start argv in its own session, so that a timeout can kill the whole process group."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        return subprocess.Popen(argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd,
                                start_new_session=True)
    finally:
        if stdin_path:
            stdin.close()


def reap(proc, timeout):
    """wait4 the process (killing it after timeout seconds); returns (status, rusage, timed_out)."""
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass

    timer = threading.Timer(timeout, kill)
    timer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not reap it again
    return proc.returncode, ru, bool(timed_out)


def persist_notes(text):
    return [ln for ln in text.splitlines() if ln.startswith("libpersist:")][:3]


def run_program(w, alloc, where, quick):
    argv = expand(w.quick_argv if quick and w.quick_argv else w.argv, **where)
    heap_dir = tempfile.mkdtemp(dir=alloc.heap_dir) if alloc.persistent else None
    rss_file = os.path.join(where["tmp"], "rss.txt")
    argv = wrapped(argv, child_vars(alloc, w.env, heap_dir), rss_file)
    stdin_path = expand([w.stdin], **where)[0] if w.stdin else None
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = spawn(argv, clean_env(), stdin_path, cwd=where["tmp"], stdout=out, stderr=err)
        code, _, timed_out = reap(proc, w.timeout)
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    s = Sample(ok=code == 0 and not timed_out, rss_kb=read_rss(rss_file))
    if heap_dir:
        s.heap_bytes = heap_usage(heap_dir)
        shutil.rmtree(heap_dir, ignore_errors=True)
    s.notes = persist_notes(stderr)
    if not s.ok:
        s.error = "timeout" if timed_out else "exit %d: %s" % (code, stderr.strip()[-300:])
        return s
    s.values["wall"] = wall
    for k, v in RESULT_RE.findall(stdout):
        s.values[k] = float(v)
    return s


def free_port():
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


def redis_ready(port, deadline):
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sk:
                sk.sendall(b"PING\r\n")
                if sk.recv(16).startswith(b"+PONG"):
                    return True
        except OSError:
            time.sleep(0.02)
    return False


def run_redis(w, alloc, where, quick):
    """redis-server under the allocator (only the server is preloaded: BENCH.md), loopback only;
    the metric is the wall time of redis-benchmark's fixed request count."""
    heap_dir = tempfile.mkdtemp(dir=alloc.heap_dir) if alloc.persistent else None
    port = free_port()
    data_dir = tempfile.mkdtemp(dir=where["tmp"])
    server_argv = ["/usr/bin/redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--daemonize", "no", "--dir", data_dir, "--loglevel", "warning"]
    s = Sample(ok=False)
    rss_file = os.path.join(where["tmp"], "rss.txt")
    server_argv = wrapped(server_argv, child_vars(alloc, {}, heap_dir), rss_file)
    with tempfile.TemporaryFile() as err:
        server = spawn(server_argv, clean_env(), stdout=subprocess.DEVNULL, stderr=err)
        try:
            if not redis_ready(port, time.time() + 10):
                s.error = "redis-server did not start"
            else:
                argv = expand(w.argv, **where)[:1] + ["-h", "127.0.0.1", "-p", str(port)] + expand(w.argv, **where)[1:]
                t0 = time.perf_counter()
                r = subprocess.run(argv, env=clean_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, timeout=w.timeout)
                wall = time.perf_counter() - t0
                if r.returncode == 0:
                    s.ok = True
                    s.values["wall"] = wall
                else:
                    s.error = "redis-benchmark exit %d" % r.returncode
        finally:
            subprocess.run(["/usr/bin/redis-cli", "-p", str(port), "shutdown", "nosave"],
                           env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            reap(server, 30)
            err.seek(0)
            s.notes = persist_notes(err.read().decode(errors="replace"))
        s.rss_kb = read_rss(rss_file)
    if heap_dir:
        s.heap_bytes = heap_usage(heap_dir)
        shutil.rmtree(heap_dir, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    return s


def run_once(w, alloc, where, quick):
    if w.kind == "redis":
        return run_redis(w, alloc, where, quick)
    return run_program(w, alloc, where, quick)


def run_workload(w, allocs, runs, warmup, where, quick):
    """Interleaved rounds: every allocator once per round (A B C ... A B C ...); the first
    `warmup` rounds are not counted. Returns {allocator: [Sample per counted round]}."""
    samples = {a.name: [] for a in allocs}
    for r in range(warmup + runs):
        for a in allocs:
            s = run_once(w, a, where, quick)
            tag = "warm-up" if r < warmup else "run %d/%d" % (r - warmup + 1, runs)
            shown = ", ".join("%s=%.4g" % (k, v) for k, v in s.values.items() if k == "wall" or
                              any(m.key == k for m in w.metrics))
            log("  %-16s %-13s %-9s %s%s" % (w.name, a.name, tag, shown if s.ok else "FAILED " + s.error,
                                           ("  [" + "; ".join(s.notes) + "]") if s.notes else ""))
            if r >= warmup:
                samples[a.name].append(s)
    return samples


def summarize(w, samples, baseline):
    """Per metric and allocator: median, min, max of the counted runs, and the median of the
    ratios to the baseline taken pair by pair (round i against round i). Also peak RSS (median
    and pairwise ratio) and, for libpersist, the heap files' median allocated size."""
    out = {}
    base = samples.get(baseline, [])
    for m in w.metrics:
        row = {}
        for name, ss in samples.items():
            vals = [s.values[m.key] for s in ss if s.ok and m.key in s.values]
            if not vals:
                row[name] = {"n": 0, "errors": [s.error for s in ss if not s.ok][:1]}
                continue
            ratios = [s.values[m.key] / b.values[m.key] for s, b in zip(ss, base)
                      if s.ok and b.ok and m.key in s.values and m.key in b.values and b.values[m.key]]
            row[name] = {"n": len(vals), "median": statistics.median(vals), "min": min(vals), "max": max(vals),
                         "ratio": statistics.median(ratios) if ratios else None,
                         "notes": sorted({n for s in ss for n in s.notes})[:2]}
        out[m.key] = row
    rss = {}
    for name, ss in samples.items():
        vals = [s.rss_kb for s in ss if s.ok and s.rss_kb]
        ratios = [s.rss_kb / b.rss_kb for s, b in zip(ss, base) if s.ok and b.ok and s.rss_kb and b.rss_kb]
        heap = [s.heap_bytes for s in ss if s.ok and s.heap_bytes is not None]
        rss[name] = {"median_kb": statistics.median(vals) if vals else None,
                     "ratio": statistics.median(ratios) if ratios else None,
                     "heap_bytes": statistics.median(heap) if heap else None}
    out["rss"] = rss
    return out
