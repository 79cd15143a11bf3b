"""Setup and build: the Debian packages the benchmarks need, then libpersist and bench/.

Only Debian packages are used (apt-get), installed when missing; nothing from pip.
"""
import os
import subprocess
import sys

PACKAGES = [
    "build-essential", "cmake", "time",
    "libjemalloc2", "libmimalloc2.0", "libtcmalloc-minimal4",  # the volatile peers
    "libbenchmark-dev",                                          # micro-benchmarks
    "libpmemobj-dev", "libboost-dev",                            # the persistent peers
    "python3", "perl", "sqlite3", "redis-server", "redis-tools",  # real programs
    "python3-matplotlib",                                        # the chart
    "valgrind", "linux-perf",                                    # profiling
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def missing_packages():
    out = []
    for p in PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if "install ok installed" not in r.stdout:
            out.append(p)
    return out


def install_packages():
    need = missing_packages()
    if not need:
        return
    log("setup: installing " + " ".join(need))
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + need, check=True, env=env)
    # Debian starts redis-server as a service on install; the benchmark runs its own instance.
    subprocess.run(sudo + ["systemctl", "disable", "--now", "redis-server"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_level_includes_bench(root):
    with open(os.path.join(root, "CMakeLists.txt")) as f:
        return any(line.strip().startswith("add_subdirectory(bench") for line in f)


def build(root, build_dir, jobs):
    """Build libpersist (Release) and the bench programs; return the bench binary directory."""
    def run(cmd):
        log("build: " + " ".join(cmd))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    lib_dir = os.path.join(build_dir, "lib")
    run(["cmake", "-S", root, "-B", lib_dir, "-DCMAKE_BUILD_TYPE=Release", "-DPERSIST_TESTS=OFF"])
    # Only what the benchmarks need: the shim (libpersist.so) and the core (libpersist_core.a).
    targets = ["persist", "persist_core"]
    if top_level_includes_bench(root):
        run(["cmake", "--build", lib_dir, "-j", str(jobs), "--target"] + targets + ["bench_all"])
        bench_bin = os.path.join(lib_dir, "bench", "bin")
    else:  # bench/ built on its own against the library's build
        run(["cmake", "--build", lib_dir, "-j", str(jobs), "--target"] + targets)
        bench_dir = os.path.join(build_dir, "bench")
        run(["cmake", "-S", os.path.join(root, "bench"), "-B", bench_dir,
             "-DCMAKE_BUILD_TYPE=Release", "-DPERSIST_BUILD_DIR=" + lib_dir])
        run(["cmake", "--build", bench_dir, "-j", str(jobs)])
        bench_bin = os.path.join(bench_dir, "bin")
    return os.path.join(lib_dir, "libpersist.so"), bench_bin


def build_profiling(root, build_dir, jobs):
    """libpersist.so with symbols and frame pointers (RelWithDebInfo), for perf's call graphs and
    callgrind's source lines; the measured runs use the Release build."""
    prof_dir = os.path.join(build_dir, "prof")
    for cmd in (["cmake", "-S", root, "-B", prof_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DPERSIST_TESTS=OFF",
                 "-DCMAKE_CXX_FLAGS=-fno-omit-frame-pointer"],
                ["cmake", "--build", prof_dir, "-j", str(jobs), "--target", "persist"]):
        log("build: " + " ".join(cmd))
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return os.path.join(prof_dir, "libpersist.so")
