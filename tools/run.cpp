// run.cpp — `persist run [--file F] [--lib PATH] [--verbose] -- CMD [ARGS...]`: runs CMD on a
// persistent heap: LD_PRELOAD gets the libpersist.so next to this binary (or --lib), PERSIST_FILE
// gets F (default ./%e.heap, expanded by the shim), and the heap's path is printed on stderr before
// the tool replaces itself with CMD (so CMD's exit status is the tool's). The tool only sets the
// environment and, with PERSIST_IMAGES=fixed, the personality (ASLR off for CMD); it never loads
// the shim itself (STYLE.md §1).
#include <getopt.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

#include "heapfile.h"
#include "tool.h"

namespace persist::tool {
namespace {

constexpr const char *kLibName = "libpersist.so";

bool regular_file(const std::string &p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// --lib PATH (a file, or a directory holding libpersist.so), else the directory of this binary.
std::string find_lib(const char *given) {
  std::string cand;
  if (given) {
    struct stat st;
    cand = given;
    if (stat(given, &st) == 0 && S_ISDIR(st.st_mode)) cand += std::string("/") + kLibName;
  } else {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return "";
    exe[n] = 0;
    cand = exe;
    size_t slash = cand.rfind('/');
    cand = (slash == std::string::npos ? std::string(".") : cand.substr(0, slash)) + "/" + kLibName;
  }
  if (!regular_file(cand)) return "";
  char abs[PATH_MAX];
  return realpath(cand.c_str(), abs) ? std::string(abs) : cand;
}

std::string base_name(const std::string &p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? p : p.substr(slash + 1);
}

// The program name the shim will see (program_invocation_short_name): argv[0]'s last component,
// or for a script, its interpreter's ("#!/usr/bin/env python3" -> python3).
std::string program_name(const char *cmd) {
  std::string path = cmd;
  if (!strchr(cmd, '/')) {  // found on PATH, as execvp will
    const char *env = getenv("PATH");
    std::string dirs = env ? env : "/usr/local/bin:/usr/bin:/bin";
    for (size_t start = 0; start <= dirs.size();) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      std::string dir = dirs.substr(start, end - start);
      std::string cand = (dir.empty() ? std::string(".") : dir) + "/" + cmd;
      if (regular_file(cand) && access(cand.c_str(), X_OK) == 0) {
        path = cand;
        break;
      }
      start = end + 1;
    }
  }
  std::string name = base_name(cmd);
  FILE *f = fopen(path.c_str(), "re");
  if (!f) return name;
  char line[256] = {0};
  if (fgets(line, sizeof line, f) && line[0] == '#' && line[1] == '!') {
    char interp[256] = {0}, arg[256] = {0};
    if (sscanf(line + 2, " %255s %255s", interp, arg) >= 1) {
      name = base_name(interp);
      if (name == "env" && arg[0] && arg[0] != '-') name = base_name(arg);
    }
  }
  fclose(f);
  return name;
}

// PERSIST_FILE as the shim expands it: %p the pid (exec keeps ours), %e the program, %% a %.
std::string expand(const std::string &pattern, const std::string &prog) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size()) {
      char c = pattern[i + 1];
      if (c == 'p') { out += std::to_string(getpid()); ++i; continue; }
      if (c == 'e') { out += prog; ++i; continue; }
      if (c == '%') { out += '%'; ++i; continue; }
    }
    out += pattern[i];
  }
  return out;
}

std::string absolute(const std::string &p) {
  if (!p.empty() && p[0] == '/') return p;
  char cwd[PATH_MAX];
  if (!getcwd(cwd, sizeof cwd)) return p;
  std::string rel = p.compare(0, 2, "./") == 0 ? p.substr(2) : p;
  return std::string(cwd) + "/" + rel;
}

}  // namespace

int cmd_run(const Command &cmd, int argc, char **argv) {
  static const option kLong[] = {{"file", required_argument, nullptr, 'f'},
                                 {"lib", required_argument, nullptr, 'l'},
                                 {"verbose", no_argument, nullptr, 'v'},
                                 {"help", no_argument, nullptr, 'h'},
                                 {nullptr, 0, nullptr, 0}};
  const char *file = "./%e.heap", *lib_arg = nullptr;
  bool verbose = false;
  // '+': stop at CMD, so its own options are left alone.
  for (int c; (c = getopt_long(argc, argv, "+:hf:v", kLong, nullptr)) != -1;) {
    switch (c) {
      case 'f': file = optarg; break;
      case 'l': lib_arg = optarg; break;
      case 'v': verbose = true; break;
      case 'h': print_command_help(cmd, stdout); return kExitOk;
      default: return option_error(cmd, c, argc, argv);
    }
  }
  if (optind >= argc) return usage_error(cmd, "missing CMD (after --)");
  if (!*file) return usage_error(cmd, "empty --file");
  char **args = argv + optind;
  std::string lib = find_lib(lib_arg);
  if (lib.empty()) {
    fprintf(stderr, "persist run: cannot find %s%s%s (give its path with --lib)\n", kLibName,
            lib_arg ? " at " : " next to the persist binary", lib_arg ? lib_arg : "");
    return kExitUnreadable;
  }
  std::string preload = lib;
  const char *old = getenv("LD_PRELOAD");
  if (old && *old && !strstr(old, lib.c_str())) preload += std::string(":") + old;
  else if (old && *old) preload = old;
  std::string heap = absolute(expand(file, program_name(args[0])));

  // Say where the heap is, and whether someone else holds it (the program would then run on a
  // volatile heap: the shim says so too, but only once the program starts).
  fprintf(stderr, "persist: heap %s\n", heap.c_str());
  HeapFile f;
  Msg why;
  if (access(heap.c_str(), F_OK) == 0 && heapfile_open(heap.c_str(), &f, &why) == 0) {
    if (f.owner_live)
      fprintf(stderr, "persist: warning: another process holds %s; this program will not get it\n",
              heap.c_str());
    heapfile_close(&f);
  }
  if (setenv("LD_PRELOAD", preload.c_str(), 1) != 0 || setenv("PERSIST_FILE", file, 1) != 0 ||
      (verbose && setenv("PERSIST_VERBOSE", "1", 1) != 0)) {
    fprintf(stderr, "persist run: cannot set the environment: %s\n", strerror(errno));
    return kExitUnreadable;
  }
  if (verbose)
    fprintf(stderr, "persist: LD_PRELOAD=%s PERSIST_FILE=%s PERSIST_VERBOSE=1\n", preload.c_str(),
            file);
  // PERSIST_IMAGES=fixed (the default): start the program with its images at fixed addresses, as
  // the shim would re-execute it to (interpose/noaslr.h); the marker makes the shim give ASLR back
  // to the program's own children.
  const char *images = getenv("PERSIST_IMAGES");
  if (!images || !*images || strcasecmp(images, "fixed") == 0) {
    int p = personality(0xffffffff);
    if (p != -1 && personality(static_cast<unsigned long>(p | ADDR_NO_RANDOMIZE)) != -1)
      setenv("PERSIST_ASLR_OFF_FOR", std::to_string(getpid()).c_str(), 1);
  }
  fflush(nullptr);
  execvp(args[0], args);
  int e = errno;
  fprintf(stderr, "persist run: cannot run %s: %s\n", args[0], strerror(e));
  return e == ENOENT ? 127 : 126;
}

}  // namespace persist::tool
