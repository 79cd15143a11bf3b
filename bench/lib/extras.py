"""Measurements beside the allocator matrix:

- micro:    the Google Benchmark fast paths, under each allocator (malloc) and through
            libpersist's heap handles (persist_alloc), interleaved rounds;
- restart:  the whole-process warm restart of an aware program through the shim, with its
            defaults and ASLR on, against heap size (T4, T5);
- reopen:   libpersist's open after a clean close and after kill -9, against heap size (T4, T5);
- heapsize: libpersist's heap file against live bytes (T3);
- peers:    the 1M-entry map task in libpersist, PMDK libpmemobj and Boost.Interprocess (T8);
- forklat:  fork() latency against the live heap, under each allocator (T6);
- relocation speed (T7) is measured with reopen;
- sampling: the churn workloads with PERSIST_SITES off and on (T11).
"""
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from .measure import RESULT_RE, child_env, clean_env, log, read_rss, reap, spawn, wrapped


def _run(argv, env=None, timeout=900):
    """Run a bench program; returns (exit code, {RESULT name: value}, stderr tail)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = spawn(argv, env or child_env(None, {}, None), stdout=out, stderr=err)
        code, _, timed_out = reap(proc, timeout)
        out.seek(0)
        err.seek(0)
        values = {k: float(v) for k, v in RESULT_RE.findall(out.read().decode(errors="replace"))}
        tail = err.read().decode(errors="replace").strip()[-300:]
    if timed_out:
        tail = "timeout " + tail
    return code, values, tail


def _median_dict(dicts):
    keys = set().union(*dicts) if dicts else set()
    return {k: statistics.median([d[k] for d in dicts if k in d]) for k in sorted(keys)}


# ---- micro-benchmarks -------------------------------------------------------------------------

def micro(bench_bin, allocs, rounds, min_time, shm_dir):
    """{benchmark name: {allocator: ns per op}}; the <Persist> rows are the heap-handle API, the
    <Sys> rows the loaded malloc (under persist-shm: libpersist's shim)."""
    exe = os.path.join(bench_bin, "micro")
    if not os.path.exists(exe):
        return {"error": "micro not built (libbenchmark-dev missing)"}
    per = {}
    for r in range(rounds):
        for a in allocs:
            if a.name == "persist-disk":
                continue  # the fast paths do not touch the file system
            heap_dir = tempfile.mkdtemp(dir=a.heap_dir) if a.persistent else None
            env = child_env(a, {"BENCH_PERSIST_FILE": os.path.join(shm_dir, "micro-%d.heap" % os.getpid())}, heap_dir)
            with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
                proc = spawn([exe, "--benchmark_format=json", "--benchmark_min_time=%g" % min_time], env,
                             stdout=out, stderr=err)
                code, _, _ = reap(proc, 900)
                out.seek(0)
                text = out.read().decode(errors="replace")
            if heap_dir:
                shutil.rmtree(heap_dir, ignore_errors=True)
            try:
                os.unlink(os.path.join(shm_dir, "micro-%d.heap" % os.getpid()))
            except FileNotFoundError:
                pass
            if code != 0:
                log("  micro %-13s FAILED (exit %d)" % (a.name, code))
                continue
            for b in json.loads(text)["benchmarks"]:
                ips = b.get("items_per_second")
                if ips:
                    per.setdefault(b["name"], {}).setdefault(a.name, []).append(1e9 / ips)
            log("  micro %-13s round %d/%d done" % (a.name, r + 1, rounds))
    return {name: {a: statistics.median(v) for a, v in d.items()} for name, d in per.items()}


# ---- whole-process restart ---------------------------------------------------------------------

def _timed(argv, variables, rss_file, timeout=3600):
    """Run argv with the variables (under /usr/bin/time for its peak RSS, the variables set for the
    program only); returns (exit code, wall ms, peak RSS KiB, stderr tail)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = spawn(wrapped(argv, variables, rss_file), clean_env(), stdout=subprocess.DEVNULL, stderr=err)
        code, _, timed_out = reap(proc, timeout)
        wall = (time.perf_counter() - t0) * 1e3
        err.seek(0)
        tail = err.read().decode(errors="replace").strip()[-300:]
    if timed_out:
        tail = "timeout " + tail
    return code, wall, read_rss(rss_file), tail


def restart(libpersist, bench_bin, sizes_mib, restarts, shm_dir, tmp):
    """For each heap size and each way of ending (a clean exit, kill -9): one process builds the
    aware program's list (restart.cpp), then `restarts` processes restart it, each timed as a whole
    (fork, exec, ld.so, the shim's open, main, exit) with its peak RSS. Through the shim with its
    defaults (PERSIST_GC, PERSIST_IMAGES, ...) and ASLR on. The first restart after the build is
    reported apart from the median of the others: it is where a paced collection runs once, after
    the heap grew."""
    exe = os.path.join(bench_bin, "restart")
    rss_file = os.path.join(tmp, "restart-rss.txt")
    out = []
    for mib in sizes_mib:
        for close in ("clean", "kill"):
            path = os.path.join(shm_dir, "restart-%d.heap" % mib)
            for f in os.listdir(shm_dir):
                if f.startswith("restart-%d.heap" % mib):
                    os.unlink(os.path.join(shm_dir, f))
            env = {"LD_PRELOAD": libpersist, "PERSIST_FILE": path}
            want = 0 if close == "clean" else 128 + 9  # /usr/bin/time exits 128 + the signal
            row = {"mib": mib, "close": close}
            code, wall, rss, tail = _timed([exe, "mode=build", "mib=%d" % mib, "close=" + close], env, rss_file)
            if code != want:
                row["error"] = "build: exit %d %s" % (code, tail)
                out.append(row)
                log("  restart %5d MiB %-5s %s" % (mib, close, row["error"]))
                continue
            row["build_ms"], row["build_rss_kb"] = wall, rss
            walls, rsses = [], []
            for i in range(restarts + 1):
                code, wall, rss, tail = _timed([exe, "mode=restart", "close=" + close], env, rss_file)
                if code != want:
                    row["error"] = "restart %d: exit %d %s" % (i + 1, code, tail)
                    break
                if i == 0:
                    row["first_ms"], row["first_rss_kb"] = wall, rss
                else:
                    walls.append(wall)
                    rsses.append(rss)
            if walls:
                row["median_ms"] = statistics.median(walls)
                row["spread_ms"] = (max(walls) - min(walls)) / 2
                row["rss_kb"] = max(rsses)
            try:
                row["file_du"] = os.stat(path).st_blocks * 512
            except FileNotFoundError:
                pass
            for f in os.listdir(shm_dir):
                if f.startswith("restart-%d.heap" % mib):
                    os.unlink(os.path.join(shm_dir, f))
            out.append(row)
            log("  restart %5d MiB %-5s %s" % (mib, close, {k: round(v, 2) if isinstance(v, float) else v
                                                          for k, v in row.items() if k not in ("mib", "close")}))
    base = {r["close"]: r for r in out if r["mib"] == min(sizes_mib) and "median_ms" in r}
    for r in out:
        b = base.get(r["close"])
        if b and "median_ms" in r:
            r["ratio"] = r["median_ms"] / b["median_ms"]
            r["first_ratio"] = r["first_ms"] / b["first_ms"]
    return out


# ---- reopen -----------------------------------------------------------------------------------

def reopen(bench_bin, sizes_mib, opens, shm_dir):
    """For each heap size: prepare a heap, then `opens` timed opens after a clean close, with ASLR
    (the program image moves at every run, as it does for every PIE program) and without it
    (setarch -R); the same after kill -9 (each timed open then kills itself again, leaving the
    heap dirty); then relocations to another base and back (T7)."""
    exe = os.path.join(bench_bin, "reopen")
    norand = ["setarch", os.uname().machine, "-R"]
    out = []
    for mib in sizes_mib:
        path = os.path.join(shm_dir, "reopen-%d.heap" % mib)
        row = {"mib": mib}
        for close, pre in (("clean", []), ("kill", []), ("clean-noaslr", norand)):
            kind = "kill" if close == "kill" else "clean"
            code, prep, tail = _run(pre + [exe, "mode=prepare", "file=" + path, "mib=%d" % mib, "close=" + kind])
            want = 0 if kind == "clean" else -9
            if code != want:
                row[close] = {"error": "prepare: exit %d %s" % (code, tail)}
                continue
            res = []
            for _ in range(opens):
                code, v, tail = _run(pre + [exe, "mode=open", "file=" + path, "close=" + kind])
                if code != want or "open_ms" not in v:
                    row[close] = {"error": "open: exit %d %s" % (code, tail)}
                    break
                res.append(v)
            else:
                row[close] = _median_dict(res)
                row[close]["live_bytes"] = prep.get("live_bytes")
                row[close]["fill_s"] = prep.get("fill_s")
            log("  reopen %5d MiB %-12s %s" % (mib, close, {k: round(x, 3) for k, x in row[close].items()
                                                            if isinstance(x, float)}))
        res = []
        for i in range(min(opens, 4)):
            to = "0x300000000000" if i % 2 == 0 else "0x200000000000"
            code, v, tail = _run(norand + [exe, "mode=relocate", "file=" + path, "to=" + to])
            if code != 0 or not v.get("moved"):
                row["relocate"] = {"error": "relocate: exit %d %s" % (code, tail)}
                break
            res.append(v)
        else:
            row["relocate"] = _median_dict(res)
            r = row["relocate"]
            r["gb_per_s"] = r["live_bytes"] / (r["relocate_ms"] / 1e3) / 1e9
        log("  relocate %5d MiB %s" % (mib, {k: round(x, 3) for k, x in row["relocate"].items()
                                            if isinstance(x, float)}))
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        out.append(row)
    return out


# ---- fork latency ------------------------------------------------------------------------------

def forklat(bench_bin, allocs, sizes_mib, rounds):
    """fork() latency against the live heap (T6), under each allocator (interleaved rounds; the
    program takes the median of 20 forks). {mib: {allocator: {fork_ms, ready_ms}}}."""
    exe = os.path.join(bench_bin, "forklat")
    out = {}
    for mib in sizes_mib:
        per = {}
        for r in range(rounds):
            for a in allocs:
                heap_dir = tempfile.mkdtemp(dir=a.heap_dir) if a.persistent else None
                code, v, tail = _run([exe, "mib=%d" % mib], child_env(a, {}, heap_dir))
                if heap_dir:
                    shutil.rmtree(heap_dir, ignore_errors=True)
                if code == 0:
                    per.setdefault(a.name, []).append(v)
                else:
                    log("  forklat %s FAILED %s" % (a.name, tail))
        out[mib] = {a: _median_dict(v) for a, v in per.items()}
        log("  forklat %4d MiB %s" % (mib, {a: round(x["fork_ms"], 3) for a, x in out[mib].items()}))
    return out


# ---- heap file size against live bytes -----------------------------------------------------------

def heapsize(bench_bin, mib, dirs):
    exe = os.path.join(bench_bin, "heapsize")
    out = {}
    for label, d in dirs.items():
        path = os.path.join(d, "heapsize.heap")
        code, v, tail = _run([exe, "file=" + path, "mib=%d" % mib])
        out[label] = v if code == 0 else {"error": "exit %d %s" % (code, tail)}
        log("  heapsize %-5s %s" % (label, "done" if code == 0 else out[label]["error"]))
    return out


# ---- persistent peers -------------------------------------------------------------------------

PEERS = [
    ("libpersist", "map_persist", {}),
    ("libpersist (persist::allocator)", "map_stl", {}),
    ("pmemobj", "map_pmemobj", {}),
    ("pmemobj (PMEM_IS_PMEM_FORCE=1)", "map_pmemobj", {"PMEM_IS_PMEM_FORCE": "1"}),
    ("boost.interprocess", "map_boost", {}),
]


def peers(bench_bin, n, rounds, heap_dir):
    """The map task; rounds interleave the peers. {peer: {phase: median seconds, file_bytes}}."""
    per = {}
    for r in range(rounds):
        for label, exe, env in PEERS:
            path = os.path.join(heap_dir, "map-%s.heap" % exe)
            argv = [os.path.join(bench_bin, exe), "file=" + path, "n=%d" % n]
            if not os.path.exists(argv[0]):
                per.setdefault(label, []).append({"error": exe + " not built"})
                continue
            e = child_env(None, env, None)
            code, build, tail = _run(argv + ["mode=build"], e)
            if code == 0:
                try:
                    build["file_bytes"] = os.stat(path).st_blocks * 512
                except FileNotFoundError:
                    pass
                code, look, tail = _run(argv + ["mode=lookup"], e)
                build.update({k if k != "close_s" else "close2_s": v for k, v in look.items()})
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            if code != 0:
                per.setdefault(label, []).append({"error": "exit %d %s" % (code, tail)})
                log("  map %-30s FAILED %s" % (label, tail))
                continue
            build["total_s"] = sum(build.get(k, 0) for k in
                                   ("create_s", "insert_s", "close_s", "open_s", "lookup_s", "close2_s"))
            per.setdefault(label, []).append(build)
            log("  map %-30s round %d: total %.3f s" % (label, r + 1, build["total_s"]))
    out = {}
    for label, runs in per.items():
        good = [x for x in runs if "error" not in x]
        out[label] = _median_dict(good) if good else runs[0]
    return out


# ---- allocation-site sampling (T11) -------------------------------------------------------------

# The churn workloads: many small allocations and frees, where a sample costs the most relative to
# the work (a backtrace and a span of its own per sample).
SAMPLING_ROWS = ("larson-1t", "larson-2t", "xmalloc-1t", "xmalloc-2t", "alloc-test-1t", "alloc-test-2t",
                 "glibc-simple", "glibc-thread", "mstress", "realloc-growth", "mleak", "python3-malloc")


def sampling(libpersist, shm_dir, where, runs, warmup, quick):
    """T11: the churn workloads under libpersist on /dev/shm with PERSIST_SITES off and at its
    default interval (PERSIST_SITES=on), alternating run by run; the slowdown is the median of the
    pairwise ratios (time on / time off, or throughput off / on)."""
    from . import measure
    from .allocators import Allocator
    from .workloads import workloads
    off = Allocator("persist-shm", libpersist, shm_dir)
    on = Allocator("persist-sites", libpersist, shm_dir, {"PERSIST_SITES": "on"})
    out = {"interval": "on (4 MiB)", "rows": {}}
    for w in workloads():
        if w.name not in SAMPLING_ROWS:
            continue
        log("%s: PERSIST_SITES off / on" % w.name)
        samples = measure.run_workload(w, [off, on], runs, warmup, where, quick)
        summ = measure.summarize(w, samples, off.name)
        m = w.metrics[0]
        cell = summ[m.key].get(on.name, {})
        ratio = cell.get("ratio")
        if ratio is None:
            out["rows"][w.name] = {"error": (cell.get("errors") or ["no result"])[0]}
            continue
        slowdown = (1.0 / ratio if m.higher_better else ratio) - 1.0
        out["rows"][w.name] = {"slowdown": slowdown, "metric": m.key,
                               "off": summ[m.key].get(off.name, {}).get("median"), "on": cell.get("median")}
    return out
