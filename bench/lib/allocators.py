"""The allocators every workload runs under: preloaded with LD_PRELOAD (BENCH.md, Peers)."""
import os
from dataclasses import dataclass, field
from typing import Dict, Optional

LIBDIR = "/usr/lib/x86_64-linux-gnu"


@dataclass
class Allocator:
    name: str
    preload: Optional[str]          # library to LD_PRELOAD; None: glibc's malloc
    heap_dir: Optional[str] = None  # libpersist: where the run's heap files go
    env: Dict[str, str] = field(default_factory=dict)  # more variables for every run

    @property
    def persistent(self):
        return self.heap_dir is not None


BASELINE = "jemalloc"


def all_allocators(libpersist, shm_dir, disk_dir):
    return [
        Allocator("glibc", None),
        Allocator("jemalloc", os.path.join(LIBDIR, "libjemalloc.so.2")),
        Allocator("mimalloc", os.path.join(LIBDIR, "libmimalloc.so.2")),
        Allocator("tcmalloc", os.path.join(LIBDIR, "libtcmalloc_minimal.so.4")),
        Allocator("persist-shm", libpersist, shm_dir),
        Allocator("persist-disk", libpersist, disk_dir),
    ]


def check(allocs):
    """Names of allocators whose library is missing (they are skipped, and said so)."""
    return [a.name for a in allocs if a.preload and not os.path.exists(a.preload)]
