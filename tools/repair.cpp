// repair.cpp — `persist check --repair FILE`: rebuild what can be rebuilt (core/repair.h) and
// report every fix and what could not be saved. A repair never leaves FILE worse than it found
// it, and never loses an original:
//   1. the repair runs on a copy (a new private file beside FILE, newfile.h), which is then
//      checked as `persist check` would; FILE is untouched so far;
//   2. when the copy is less readable than FILE (unreadable where FILE was readable,
//      inconsistent where FILE was consistent), or nothing needed fixing, the copy is dropped
//      and FILE is left as it was;
//   3. otherwise FILE's contents are kept in a new file linked as the first free name of
//      FILE.bak, FILE.bak.1, FILE.bak.2 ... (never replacing anything), and only then are the
//      repaired contents copied into FILE (the same file: its lock, owner and links are kept).
// Refuses a heap a live process holds, and one other users may write (os::open_file).
#include <cstring>
#include <string>

#include "../core/include/persist.h"
#include "check.h"
#include "newfile.h"
#include "platform.h"
#include "repair.h"
#include "superblock.h"
#include "tool.h"

namespace persist::tool {
namespace {

constexpr unsigned kMaxBackups = 10000;

// What `persist check` would say of [mem, mem + len): unreadable (kExitUnreadable), or its verdict.
CheckVerdict verdict_of(const uint8_t *mem, uint64_t len) {
  CheckVerdict v;
  Superblock sb;
  Msg why;
  if (len < kPageSize || super_read(mem, static_cast<size_t>(len), &sb, &why) != 0) {
    v.exit = kExitUnreadable;
    v.problem = len < kPageSize ? "too small to be a heap" : why.str();
    return v;
  }
  Image img;
  img.mem = mem, img.len = len, img.sb = sb;
  HeapReport rep;
  return check_verdict(img, &rep, 0);
}

const char *verdict_name(int exit) {
  return exit == kExitOk ? "consistent" : exit == kExitInconsistent ? "inconsistent" : "unreadable";
}

// The verdict on the file behind fd, read through a private read-only mapping.
CheckVerdict verdict_of_fd(int fd) {
  uint64_t size = 0;
  const void *mem = nullptr;
  if (os::file_size(fd, &size) || size < kPageSize) {
    CheckVerdict v;
    v.exit = kExitUnreadable;
    v.problem = "too small to be a heap";
    return v;
  }
  if (os::map_file_readonly(fd, size, &mem)) {
    CheckVerdict v;
    v.exit = kExitUnreadable;
    v.problem = "cannot be mapped";
    return v;
  }
  CheckVerdict v = verdict_of(static_cast<const uint8_t *>(mem), size);
  os::unmap(mem, size);
  return v;
}

// Repair the file behind fd in place (it is the trial copy). rc: repair_image's.
int repair_fd(int fd, RepairReport *rep, CheckVerdict *after) {
  uint64_t size = 0;
  void *mem = nullptr;
  if (os::file_size(fd, &size) || size < kPageSize || os::reserve(0, size, &mem) ||
      os::map_file(mem, size, fd, true)) {
    after->exit = kExitUnreadable;
    after->problem = "the copy cannot be mapped";
    return PERSIST_E_TOOSMALL;
  }
  int rc = repair_image(static_cast<uint8_t *>(mem), size, rep);
  *after = verdict_of(static_cast<const uint8_t *>(mem), size);
  os::unmap(mem, size);
  return rc;
}

// Keep the contents of fd as a new file named FILE.bak, or FILE.bak.N for the first N free.
int keep_original(const char *file, int fd, std::string *name) {
  NewFile nf;
  int rc = newfile_create(file, &nf);
  if (!rc) rc = os::copy_file(fd, nf.fd);
  if (!rc) rc = os::sync_file(nf.fd);
  for (unsigned n = 0; !rc; ++n) {
    if (n == kMaxBackups) {
      rc = -EEXIST;
      break;
    }
    *name = std::string(file) + ".bak" + (n ? "." + std::to_string(n) : "");
    rc = newfile_link(&nf, name->c_str());
    if (rc != -EEXIST) break;
    rc = 0;  // taken (an earlier backup, or anything else): the next name
  }
  newfile_close(&nf);
  return rc;
}

}  // namespace

int repair_file(const char *file, bool json) {
  int fd = -1;
  bool created = false;
  int rc = os::open_file(file, false, true, &fd, &created);
  if (rc) {
    Msg why;
    why.add("cannot open ").add(file).add(" for writing: ").add(persist_strerror(rc));
    return report_unreadable(file, rc, why, json);
  }
  if (os::lock_file(fd, false) != 0) {
    fprintf(stderr, "persist check --repair: %s is in use by a live process: not repairing\n", file);
    os::close_file(fd);
    return kExitUnreadable;
  }
  const CheckVerdict before = verdict_of_fd(fd);

  // 1. The repair, on a copy.
  NewFile trial;
  if ((rc = newfile_create(file, &trial)) || (rc = os::copy_file(fd, trial.fd))) {
    fprintf(stderr, "persist check --repair: cannot copy %s to repair it: %s: not repairing\n", file,
            persist_strerror(rc));
    newfile_close(&trial);
    os::close_file(fd);
    return kExitUnreadable;
  }
  RepairReport rep;
  rep.log = [](const char *line, void *arg) {
    if (!*static_cast<bool *>(arg)) printf("  fixed: %s\n", line);
  };
  rep.log_arg = &json;
  if (!json) printf("%s: repairing a copy (%s)\n", file, verdict_name(before.exit));
  CheckVerdict after;
  rc = repair_fd(trial.fd, &rep, &after);

  // 2. Applied only when it fixed something and left the heap no less readable.
  const bool worse = after.exit > before.exit;
  const bool apply = rep.fixes > 0 && !worse;
  std::string backup;
  int err = 0;
  if (apply) {
    // 3. The original first, then the repaired contents into FILE itself.
    if ((err = keep_original(file, fd, &backup)) == 0 && (err = os::copy_file(trial.fd, fd)) == 0)
      err = os::sync_file(fd);
  }
  newfile_close(&trial);
  os::close_file(fd);
  if (apply && err) {
    fprintf(stderr, "persist check --repair: %s: %s%s%s\n", file, persist_strerror(err),
            backup.empty() ? "; nothing changed" : "; the original is kept in ",
            backup.empty() ? "" : backup.c_str());
    return kExitUnreadable;
  }
  const CheckVerdict &now = apply ? after : before;
  if (json) {
    Json j(stdout);
    j.begin_object();
    j.str("file", file);
    if (apply) j.str("backup", backup);
    else j.null("backup");
    j.boolean("applied", apply);
    j.num("fixes", apply ? rep.fixes : 0);
    j.num("fixes_found", rep.fixes);
    j.num("lost_spans", apply ? rep.lost_spans : 0);
    j.num("lost_roots", apply ? rep.lost_roots : 0);
    j.boolean("superblock_lost", rep.superblock_lost);
    j.boolean("consistent", now.exit == kExitOk);
    if (worse) j.str("not_applied", std::string("the repair would leave the file ") + verdict_name(after.exit) +
                                        ": " + after.problem);
    else if (!apply) j.str("not_applied", before.exit == kExitOk ? "nothing to fix" : "nothing can be fixed");
    else j.null("not_applied");
    j.end_object();
  } else if (worse) {
    printf("%s: the repair would leave it %s (%s), worse than it is (%s): %s left as it was\n", file,
           verdict_name(after.exit), after.problem.c_str(), verdict_name(before.exit), file);
  } else if (!apply) {
    if (before.exit == kExitOk) printf("%s: consistent, nothing to fix; left as it was\n", file);
    else
      printf("%s: %s (%s), and nothing can be fixed: left as it was\n", file, verdict_name(before.exit),
             before.problem.c_str());
  } else {
    printf("%s: %llu fixes, %llu spans and %llu roots lost; %s; the original is kept in %s\n", file,
           (unsigned long long)rep.fixes, (unsigned long long)rep.lost_spans,
           (unsigned long long)rep.lost_roots,
           rc || after.exit ? "still inconsistent (nothing more can be done)" : "consistent now",
           backup.c_str());
  }
  return now.exit;
}

}  // namespace persist::tool
