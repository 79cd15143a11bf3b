"""The workload table: every command the suite runs under each allocator, in one place.

A workload is a command (with {bin} = the bench binaries, {src} = bench/workloads) and the
metrics read from a run: 'wall' (the child's wall time, seconds) or a RESULT line the program
prints (fixed-duration workloads report their own throughput; BENCH.md: read them by it).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional


@dataclass
class Metric:
    key: str                 # 'wall' or the RESULT name
    unit: str
    higher_better: bool = False
    scale: float = 1.0       # displayed value = raw * scale


@dataclass
class Workload:
    name: str
    argv: List[str]
    metrics: List[Metric]
    quick_argv: Optional[List[str]] = None  # replaces argv in --quick mode
    env: Dict[str, str] = field(default_factory=dict)
    stdin: Optional[str] = None
    kind: str = "program"    # 'program', 'real' (a real program) or 'redis' (server + client)
    timeout: float = 300.0


WALL = Metric("wall", "s")


def _tput(key, unit="M/s"):
    return Metric(key, unit, higher_better=True, scale=1e-6)


def workloads():
    b = "{bin}/"
    s = "{src}/"
    return [
        Workload("larson-1t", [b + "larson", "threads=1", "seconds=1"], [_tput("ops_per_sec", "Mops/s")],
                 [b + "larson", "threads=1", "seconds=0.5"]),
        Workload("larson-2t", [b + "larson", "threads=2", "seconds=1"], [_tput("ops_per_sec", "Mops/s")],
                 [b + "larson", "threads=2", "seconds=0.5"]),
        Workload("xmalloc-1t", [b + "xmalloc", "threads=1", "seconds=1"], [_tput("frees_per_sec", "Mfrees/s")],
                 [b + "xmalloc", "threads=1", "seconds=0.5"]),
        Workload("xmalloc-2t", [b + "xmalloc", "threads=2", "seconds=1"], [_tput("frees_per_sec", "Mfrees/s")],
                 [b + "xmalloc", "threads=2", "seconds=0.5"]),
        Workload("cache-thrash", [b + "false_sharing", "mode=thrash", "threads=2", "writes=100000"], [WALL]),
        Workload("cache-scratch", [b + "false_sharing", "mode=scratch", "threads=2", "writes=100000"], [WALL]),
        Workload("alloc-test-1t", [b + "alloc_test", "threads=1", "ops=4000000"], [WALL]),
        Workload("alloc-test-2t", [b + "alloc_test", "threads=2", "ops=4000000"], [WALL]),
        Workload("glibc-simple", [b + "glibc_bench", "mode=simple", "rounds=100000"], [WALL]),
        Workload("glibc-thread", [b + "glibc_bench", "mode=thread", "threads=2", "seconds=1"],
                 [_tput("iterations_per_sec", "Mit/s")],
                 [b + "glibc_bench", "mode=thread", "threads=2", "seconds=0.5"]),
        Workload("mstress", [b + "mstress", "threads=2", "rounds=10"], [WALL]),
        Workload("malloc-large", [b + "malloc_large", "iterations=100"], [WALL]),
        Workload("realloc-growth", [b + "realloc_growth", "steps=6000000"], [WALL]),
        Workload("mleak", [b + "mleak", "ops=15000000"], [WALL]),
        Workload("seed-pmm", [b + "seed_pmm"], [Metric("alloc_ms", "ms"), Metric("mixed_ms", "ms")]),
        Workload("python3-malloc", ["/usr/bin/python3", s + "py_dicts.py", "0.5"], [WALL],
                 env={"PYTHONMALLOC": "malloc"}, kind="real"),
        Workload("python3-pymalloc", ["/usr/bin/python3", s + "py_dicts.py", "0.5"], [WALL], kind="real"),
        Workload("perl-hash", ["/usr/bin/perl", s + "perl_hash.pl", "0.5"], [WALL], kind="real"),
        Workload("sqlite3", ["/usr/bin/sqlite3", ":memory:"], [WALL], stdin=s + "sqlite_insert.sql", kind="real"),
        Workload("redis", ["/usr/bin/redis-benchmark", "-n", "50000", "-r", "100000", "-d", "64", "-P", "16", "-q",
                           "-t", "set,get,incr,lpush,rpop,sadd,hset,lrange_100"], [WALL], kind="redis"),
        Workload("g++ -O2", ["/usr/bin/g++", "-O2", "-std=c++17", "-c", s + "compile_unit.cpp", "-o", "{tmp}/unit.o"],
                 [WALL], kind="real"),
    ]


def expand(argv, **where):
    return [a.format(**where) for a in argv]
