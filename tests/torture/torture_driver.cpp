// torture_driver — kill -9 torture of one heap file (issue 5, point 1).
//
//   torture_driver SHIM TOOL WORKLOAD [--kills N] [--threads T] [--dir DIR] [--seed S]
//                  [--max-file-mb M] [--keep-going] [--progress K] [--keep]
//                  [--relocate PER_MILLE] [--sync PER_MILLE]
//
// Repeats N times, always on the same heap file:
//  1. start `WORKLOAD run T` under the shim (LD_PRELOAD=SHIM PERSIST_FILE=heap PERSIST_STRICT=1);
//  2. kill it with SIGKILL: usually 5-200 ms after it printed "ready" (it verified the heap and
//     its threads are working), and one time in eight "immediately": at a random moment of its
//     start-up (loading, opening the heap, reclaiming leftovers, verifying), drawn uniformly
//     between 0 and the mean time it has taken to become ready;
//  3. `TOOL check heap` must exit 0 (on the heap exactly as the kill left it);
//  4. `WORKLOAD verify` under the shim must exit 0 (every published record intact, nothing lost,
//     the heap's own check passes); every other time with PERSIST_GC=never, so that both the
//     reclaimed and the unreclaimed heap are verified.
// --relocate P: P starts in 1000 are given the other of two base addresses (PERSIST_ADDR), so the
// open relocates the heap (rewrites every pointer into it) before the program runs, and kills land
// in relocations as well. --sync P: P starts in 1000 run with PERSIST_SYNC=<1-100 ms> (the
// background msync thread is running when the kill comes).
// It also checks that the state never goes back in time (the newest record id of every list
// never decreases from one verification to the next), that records are found (not always zero),
// and that the heap file stays bounded (the workload keeps a bounded live set). Measured right
// after each kill (the extent the killed run needed): never larger than --max-file-mb (default
// 1024: the workload's peak live set is ~125 MiB, 4 threads x (24 records of <=128 KiB + one 5 MiB
// record, 48 temporary blocks of which one <=6 MiB, a <=6 MiB realloc buffer), huge blocks rounded
// up to whole 4 MiB segments; the largest extent seen in 10,000 kills was 452 MiB, so 1 GiB leaves
// room for fragmentation while blocks leaked across restarts, ~20-60 MiB a run, would pass it in
// a few dozen kills), and without drift: the mean disk space of the file over the last quarter
// of the kills at most 2x the mean over the second quarter plus 32 MiB. (Not the file size: the
// extent only shrinks down to the highest live block, and small long-lived blocks, a moved list
// head or a root's blob, may sit in a high segment.) The summary gives the live bytes `persist
// check` found at the largest extent.
//
// Prints one line per --progress kills and a summary line:
//   torture: PASS|FAIL kills N (immediate I, before-open E) failures F records min/avg/max ...
// Exit status: 0 all passed, 1 a failure (details on stdout; the damaged heap is kept as
// DIR/failure-K.heap and DIR is not removed), 64 usage.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Config {
  std::string shim, tool, workload, dir;
  long kills = 200;
  int threads = 4;
  uint64_t seed = 0;
  long max_file_mb = 1024;
  bool keep_going = false, keep = false;
  long progress = 50;
  int relocate = 0;  // per mille of starts that move the heap to the other base address
  int sync = 0;      // per mille of starts with PERSIST_SYNC=<random interval>
};

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

void sleep_ms(double ms) {
  if (ms <= 0) return;
  timespec ts{static_cast<time_t>(ms / 1000), static_cast<long>(fmod(ms, 1000.0) * 1e6)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string read_file(const std::string &path, size_t max = 4000) {
  FILE *f = fopen(path.c_str(), "r");
  if (!f) return "";
  std::string s(max, '\0');
  size_t n = fread(&s[0], 1, max, f);
  fclose(f);
  s.resize(n);
  return s;
}

struct Env {
  std::vector<std::string> vars;
};

// fork + exec argv with extra environment; stdout to out_fd (or /dev/null), stderr to err_path.
pid_t spawn(const std::vector<std::string> &argv, const std::vector<std::string> &env, int out_fd,
            const std::string &err_path) {
  pid_t pid = fork();
  if (pid < 0) {
    perror("torture_driver: fork");
    exit(1);
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the driver (a CTest timeout, say)
    for (const auto &e : env) putenv(const_cast<char *>(e.c_str()));
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(out_fd >= 0 ? out_fd : null, 1);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(err >= 0 ? err : null, 2);
    std::vector<char *> args;
    for (const auto &a : argv) args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    dprintf(2, "exec %s: %s\n", args[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

std::string describe(int status) {
  char b[64];
  if (WIFEXITED(status))
    snprintf(b, sizeof b, "exit %d", WEXITSTATUS(status));
  else if (WIFSIGNALED(status))
    snprintf(b, sizeof b, "signal %d", WTERMSIG(status));
  else
    snprintf(b, sizeof b, "status %d", status);
  return b;
}

// Run to completion (timeout: SIGKILL and report), capture stdout and stderr.
int run_capture(const std::vector<std::string> &argv, const std::vector<std::string> &env,
                const std::string &dir, std::string *out, double timeout_s = 120) {
  std::string out_path = dir + "/cmd.out", err_path = dir + "/cmd.err";
  int fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = spawn(argv, env, fd, err_path);
  close(fd);
  double start = now();
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (now() - start > timeout_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      *out = read_file(out_path) + read_file(err_path) + "\n(timed out: killed)";
      return -1;
    }
    sleep_ms(2);
  }
  *out = read_file(out_path) + read_file(err_path);
  return status;
}

// "verified records N bytes B huge H blobs X lists L starts S last a b c ..."
struct Summary {
  bool ok = false;
  uint64_t records = 0, bytes = 0, huge = 0, blobs = 0, lists = 0, starts = 0;
  std::vector<uint64_t> last;
};

Summary parse_summary(const std::string &text, const char *word) {
  Summary s;
  size_t at = text.find(word);
  if (at == std::string::npos) return s;
  std::istringstream in(text.substr(at));
  std::string w, key;
  in >> w;
  while (in >> key) {
    if (key == "last") {
      for (uint64_t k = 0; k < s.lists; ++k) {
        uint64_t v;
        if (!(in >> v)) return s;
        s.last.push_back(v);
      }
      s.ok = true;
      return s;
    }
    uint64_t v;
    if (!(in >> v)) return s;
    if (key == "records")
      s.records = v;
    else if (key == "bytes")
      s.bytes = v;
    else if (key == "huge")
      s.huge = v;
    else if (key == "blobs")
      s.blobs = v;
    else if (key == "lists")
      s.lists = v;
    else if (key == "starts")
      s.starts = v;
  }
  return s;
}

int usage() {
  fprintf(
      stderr,
      "usage: torture_driver SHIM TOOL WORKLOAD [--kills N] [--threads T] [--dir DIR]\n"
      "                      [--seed S] [--max-file-mb M] [--keep-going] [--progress K] [--keep]\n"
      "                      [--relocate PER_MILLE] [--sync PER_MILLE]\n");
  return 64;
}

}  // namespace

int main(int argc, char **argv) {
  Config c;
  std::vector<std::string> pos;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) exit(usage());
      return argv[++i];
    };
    if (a == "--kills")
      c.kills = atol(value().c_str());
    else if (a == "--threads")
      c.threads = atoi(value().c_str());
    else if (a == "--dir")
      c.dir = value();
    else if (a == "--seed")
      c.seed = strtoull(value().c_str(), nullptr, 0);
    else if (a == "--max-file-mb")
      c.max_file_mb = atol(value().c_str());
    else if (a == "--progress")
      c.progress = atol(value().c_str());
    else if (a == "--relocate")
      c.relocate = atoi(value().c_str());
    else if (a == "--sync")
      c.sync = atoi(value().c_str());
    else if (a == "--keep-going")
      c.keep_going = true;
    else if (a == "--keep")
      c.keep = true;
    else if (a.rfind("--", 0) == 0)
      return usage();
    else
      pos.push_back(a);
  }
  if (pos.size() != 3 || c.kills <= 0 || c.threads <= 0) return usage();
  c.shim = pos[0], c.tool = pos[1], c.workload = pos[2];
  for (const auto &f : {c.shim, c.tool, c.workload})
    if (access(f.c_str(), R_OK) != 0) {
      printf("torture: FAIL %s does not exist (did it build?)\n", f.c_str());
      return 1;
    }
  if (c.dir.empty()) {
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                       : getenv("TMPDIR")            ? getenv("TMPDIR")
                                                     : "/tmp";
    std::string templ = std::string(base) + "/persist-torture-XXXXXX";
    if (!mkdtemp(&templ[0])) {
      perror("torture_driver: mkdtemp");
      return 1;
    }
    c.dir = templ;
  } else {
    mkdir(c.dir.c_str(), 0700);
  }
  if (c.seed == 0)
    c.seed = static_cast<uint64_t>(time(nullptr)) ^ (static_cast<uint64_t>(getpid()) << 20);
  signal(SIGPIPE, SIG_IGN);

  const std::string heap = c.dir + "/torture.heap";
  unlink(heap.c_str());
  std::mt19937_64 rng(c.seed);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  const std::vector<std::string> base_env = {"LD_PRELOAD=" + c.shim, "PERSIST_FILE=" + heap,
                                             "PERSIST_STRICT=1"};
  printf("torture: %ld kills of `%s run %d` on %s (seed %" PRIu64 ")\n", c.kills,
         c.workload.c_str(), c.threads, heap.c_str(), c.seed);
  fflush(stdout);

  long failures = 0, immediate = 0, early = 0, verified = 0, nonzero = 0, done = 0, moves = 0;
  // --relocate: the heap lives at one of two base addresses; a start may be told the other one
  // (PERSIST_ADDR), which makes the open relocate the heap (rewrite its pointers) before the
  // program runs, so kills land in relocations too. The verifier is given the same address.
  const char *bases[2] = {"0x200000000000", "0x310000000000"};
  int base_now = 0;
  uint64_t rec_min = UINT64_MAX, rec_max = 0, rec_sum = 0, starts_last = 0;
  double ready_sum = 0, ready_n = 0, ready_max = 0, check_time = 0, verify_time = 0;
  uint64_t size_first = 0, size_max = 0, disk_max = 0, size_last = 0, live_max = 0,
           live_at_size_max = 0;
  std::vector<uint64_t> disks;  // disk space of the heap file after each verified kill
  std::vector<uint64_t> last_ids;
  const double t0 = now();
  int kept_failures = 0;

  auto fail = [&](long k, const std::string &what, const std::string &detail) {
    ++failures;
    printf("FAIL kill %ld: %s\n", k, what.c_str());
    if (!detail.empty()) printf("---\n%s\n---\n", detail.c_str());
    if (kept_failures < 5) {
      std::string keep = c.dir + "/failure-" + std::to_string(k) + ".heap";
      std::string out;
      run_capture({"/bin/cp", "--sparse=always", heap, keep}, {}, c.dir, &out);
      printf("     heap kept as %s\n", keep.c_str());
      ++kept_failures;
    }
    fflush(stdout);
    if (c.keep_going) {
      unlink(heap.c_str());  // start over on a new heap
      last_ids.clear();
    }
  };

  long k;
  for (k = 1; k <= c.kills; ++k) {
    // 1. start the workload
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) {
      perror("torture_driver: pipe");
      return 1;
    }
    std::string err_path = c.dir + "/run.err";
    std::vector<std::string> run_env = base_env;
    if (c.relocate) {
      if (k > 1 && std::uniform_int_distribution<int>(0, 999)(rng) < c.relocate)
        base_now ^= 1, ++moves;
      run_env.push_back(std::string("PERSIST_ADDR=") + bases[base_now]);
    }
    if (std::uniform_int_distribution<int>(0, 999)(rng) < c.sync)
      run_env.push_back("PERSIST_SYNC=" +
                        std::to_string(std::uniform_int_distribution<int>(1, 100)(rng)));
    double start = now();
    pid_t pid = spawn({c.workload, "run", std::to_string(c.threads)}, run_env, pfd[1], err_path);
    close(pfd[1]);
    bool imm = k > 3 && std::uniform_int_distribution<int>(0, 7)(rng) == 0;
    std::string ready_line;
    bool exited = false;
    int status = 0;
    if (imm) {
      ++immediate;
      sleep_ms(uniform(0, ready_n ? ready_sum / ready_n * 1000 : 5));
    } else {
      // 2. wait for "ready ...\n" (at most 60 s), then 5-200 ms
      std::string buf;
      while (buf.find('\n') == std::string::npos) {
        pollfd p{pfd[0], POLLIN, 0};
        int left = static_cast<int>((60 - (now() - start)) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        char tmp[512];
        ssize_t n = read(pfd[0], tmp, sizeof tmp);
        if (n <= 0) break;
        buf.append(tmp, static_cast<size_t>(n));
      }
      if (buf.find('\n') == std::string::npos) {
        if (waitpid(pid, &status, WNOHANG) == pid)
          exited = true;
        else
          kill(pid, SIGKILL), waitpid(pid, &status, 0);
        close(pfd[0]);
        fail(k,
             exited ? "the workload ended before it was ready (" + describe(status) + ")"
                    : "the workload was not ready after 60 s",
             buf + read_file(err_path));
        if (!c.keep_going) break;
        continue;
      }
      ready_line = buf.substr(0, buf.find('\n'));
      double t = now() - start;
      ready_sum += t, ready_n += 1, ready_max = std::max(ready_max, t);
      sleep_ms(uniform(5, 200));
    }
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
    } else {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ++done;
    }
    close(pfd[0]);
    if (exited) {
      fail(k, "the workload ended by itself (" + describe(status) + ")",
           ready_line + "\n" + read_file(err_path));
      if (!c.keep_going) break;
      continue;
    }
    struct stat st;
    if (stat(heap.c_str(), &st) != 0) {
      ++early;  // killed before the heap file existed: nothing to check
      continue;
    }
    // The file as the killed run left it: its extent is the most that run needed.
    const uint64_t size = static_cast<uint64_t>(st.st_size),
                   disk = static_cast<uint64_t>(st.st_blocks) * 512;
    if (!ready_line.empty()) {
      Summary r = parse_summary(ready_line, "ready");
      if (!r.ok) {
        fail(k, "unreadable ready line", ready_line);
        if (!c.keep_going) break;
        continue;
      }
      for (size_t i = 0; i < last_ids.size() && i < r.last.size(); ++i)
        if (r.last[i] < last_ids[i]) {
          fail(k,
               "list " + std::to_string(i) + " went back in time at start: newest id " +
                   std::to_string(r.last[i]) + ", verified before " + std::to_string(last_ids[i]),
               ready_line);
          break;
        }
      if (!r.last.empty()) last_ids = r.last;
    }

    // 3. persist check on the heap exactly as the kill left it
    std::string out;
    double t1 = now();
    status = run_capture({c.tool, "check", heap, "--json"}, {}, c.dir, &out);
    check_time += now() - t1;
    if (status != 0) {
      fail(k, "persist check: " + describe(status), out);
      if (!c.keep_going) break;
      continue;
    }
    uint64_t live = 0;  // what the killed run held: published records and its working set
    if (size_t at = out.find("\"live_bytes\":"); at != std::string::npos)
      live = strtoull(out.c_str() + at + 13, nullptr, 10);
    // 4. the workload's verifier (reclaiming at open every other time)
    std::vector<std::string> env = base_env;
    if (c.relocate) env.push_back(std::string("PERSIST_ADDR=") + bases[base_now]);
    if (k % 2) env.push_back("PERSIST_GC=never");
    t1 = now();
    status = run_capture({c.workload, "verify"}, env, c.dir, &out);
    verify_time += now() - t1;
    if (status != 0) {
      fail(k, std::string("verify") + (k % 2 ? " (PERSIST_GC=never): " : ": ") + describe(status),
           out);
      if (!c.keep_going) break;
      continue;
    }
    Summary s = parse_summary(out, "verified");
    if (!s.ok) {
      fail(k, "unreadable verify output", out);
      if (!c.keep_going) break;
      continue;
    }
    bool back = false;
    for (size_t i = 0; i < last_ids.size() && i < s.last.size(); ++i)
      if (s.last[i] < last_ids[i]) {
        fail(k,
             "list " + std::to_string(i) + " went back in time: newest id " +
                 std::to_string(s.last[i]) + ", before " + std::to_string(last_ids[i]),
             out);
        back = true;
        break;
      }
    if (back && !c.keep_going) break;
    if (!back) last_ids = s.last;
    ++verified;
    if (s.records) ++nonzero;
    rec_min = std::min(rec_min, s.records), rec_max = std::max(rec_max, s.records);
    rec_sum += s.records;
    starts_last = s.starts;

    {
      if (!size_first) size_first = size;
      size_last = size;
      if (size > size_max) size_max = size, live_at_size_max = live;
      disk_max = std::max(disk_max, disk), live_max = std::max(live_max, live);
      disks.push_back(disk);
      if (size > static_cast<uint64_t>(c.max_file_mb) << 20) {
        fail(k,
             "heap file " + std::to_string(size >> 20) + " MiB, more than --max-file-mb " +
                 std::to_string(c.max_file_mb) + " (live " + std::to_string(live >> 20) + " MiB)",
             "");
        if (!c.keep_going) break;
      }
    }
    if (c.progress > 0 && k % c.progress == 0) {
      printf("kill %ld: %.0f s, records %" PRIu64 " (%" PRIu64 " bytes, %" PRIu64
             " huge), heap file %" PRIu64 " MiB (disk %" PRIu64 " MiB), ready in %.0f ms avg\n",
             k, now() - t0, s.records, s.bytes, s.huge, size >> 20, disk >> 20,
             ready_n ? ready_sum / ready_n * 1000 : 0);
      fflush(stdout);
    }
  }
  if (failures == 0 && verified > 0 && nonzero * 2 < verified) {
    ++failures;
    printf("FAIL: records were found by only %ld of %ld verifications\n", nonzero, verified);
  }
  // No drift: the mean disk space of the file over the last quarter of the kills against the
  // second quarter (the first is the warm-up). Blocks leaked across restarts occupy disk space and
  // make it grow steadily. (Not the file size: the extent cannot shrink below the highest live
  // block, so it ratchets up to the high-water mark of the live set, which the --max-file-mb
  // bound covers.)
  double q2 = 0, q4 = 0;
  if (disks.size() >= 8) {
    size_t q = disks.size() / 4;
    for (size_t i = q; i < 2 * q; ++i) q2 += static_cast<double>(disks[i]) / q;
    for (size_t i = disks.size() - q; i < disks.size(); ++i)
      q4 += static_cast<double>(disks[i]) / q;
    if (q4 > 2 * q2 + 32.0 * 1048576) {
      ++failures;
      printf(
          "FAIL: the heap file's disk space grows: mean %.1f MiB over the last quarter of the "
          "kills, %.1f MiB over the second quarter\n",
          q4 / 1048576, q2 / 1048576);
    }
  }
  if (failures == 0 && verified == 0) {
    ++failures;
    printf("FAIL: nothing was verified\n");
  }
  double elapsed = now() - t0;
  printf(
      "torture: %s kills %ld (immediate %ld, before the file existed %ld, relocations %ld) "
      "failures %ld verified %ld records min/avg/max %" PRIu64 "/%.0f/%" PRIu64 " starts %" PRIu64
      " heap file first/max/last %.1f/%.1f/%.1f MiB (live %.1f MiB at the max), live max %.1f "
      "MiB, disk max %.1f MiB (mean 2nd/4th quarter %.1f/%.1f) ready avg/max %.0f/%.0f ms "
      "check avg %.0f ms verify avg %.0f ms elapsed %.1f s (%.1f kills/s) seed %" PRIu64 "\n",
      failures ? "FAIL" : "PASS", done, immediate, early, moves, failures, verified,
      rec_min == UINT64_MAX ? 0 : rec_min, verified ? static_cast<double>(rec_sum) / verified : 0.0,
      rec_max, starts_last, size_first / 1048576.0, size_max / 1048576.0, size_last / 1048576.0,
      live_at_size_max / 1048576.0, live_max / 1048576.0, disk_max / 1048576.0, q2 / 1048576,
      q4 / 1048576, ready_n ? ready_sum / ready_n * 1000 : 0, ready_max * 1000,
      verified ? check_time / verified * 1000 : 0, verified ? verify_time / verified * 1000 : 0,
      elapsed, done / elapsed, c.seed);
  fflush(stdout);
  if (failures == 0 && !c.keep) {
    // Only what this run created (--dir may name a directory holding other things).
    for (const char *f : {"/torture.heap", "/cmd.out", "/cmd.err", "/run.err"})
      unlink((c.dir + f).c_str());
    rmdir(c.dir.c_str());  // if empty
  } else {
    printf("torture: files kept in %s\n", c.dir.c_str());
  }
  return failures ? 1 : 0;
}
