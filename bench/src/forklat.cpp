// forklat — fork() latency against the heap a process holds (BENCH.md T6), through plain malloc,
// so it runs under every allocator.
//
// Allocates `mib` MiB of live blocks (1 KiB–64 KiB, every byte written), then `forks` times:
// fork(); the child allocates one block, writes it, reports through a pipe and _exits; the parent
// times fork() until it returns (fork_ms) and until the child's report arrives (ready_ms: the
// child's first allocation included, where a copy-on-fork allocator may do its part), then reaps
// the child. Reports the medians in milliseconds.
#include <sys/wait.h>

#include <algorithm>

#include "bench_util.h"

int main(int argc, char **argv) {
  bench::Args a(argc, argv, "mib=16 forks=20 seed=1");
  uint64_t mib = a.u64("mib", 16), forks = a.u64("forks", 20), seed = a.u64("seed", 1);
  a.check();
  bench::Rng rng(seed);
  std::vector<void *> live;
  for (uint64_t have = 0; have < (mib << 20);) {
    size_t n = rng.log_range(1024, 65536);
    void *p = malloc(n);
    memset(p, 1, n);
    live.push_back(p);
    have += n;
  }
  std::vector<double> fork_ms, ready_ms;
  for (uint64_t i = 0; i < forks; ++i) {
    int fd[2];
    if (pipe(fd) != 0) return 1;
    double t0 = bench::now();
    pid_t pid = fork();
    if (pid == 0) {
      char *p = static_cast<char *>(malloc(4096));
      memset(p, 2, 4096);
      char c = p[100];
      if (write(fd[1], &c, 1) != 1) _exit(1);
      _exit(0);
    }
    double t1 = bench::now();
    char c;
    if (pid < 0 || read(fd[0], &c, 1) != 1) {
      fprintf(stderr, "forklat: fork or child failed\n");
      return 1;
    }
    double t2 = bench::now();
    int st;
    waitpid(pid, &st, 0);
    close(fd[0]);
    close(fd[1]);
    fork_ms.push_back((t1 - t0) * 1e3);
    ready_ms.push_back((t2 - t0) * 1e3);
  }
  std::sort(fork_ms.begin(), fork_ms.end());
  std::sort(ready_ms.begin(), ready_ms.end());
  printf("forklat: %llu MiB live, fork %.3f ms, child ready %.3f ms (medians of %llu)\n",
         (unsigned long long)mib, fork_ms[forks / 2], ready_ms[forks / 2], (unsigned long long)forks);
  bench::result("fork_ms", fork_ms[forks / 2]);
  bench::result("ready_ms", ready_ms[forks / 2]);
  for (void *p : live) free(p);
  return 0;
}
