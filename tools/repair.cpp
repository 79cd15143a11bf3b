// repair.cpp — `persist check --repair FILE`: rebuild what can be rebuilt (core/repair.h) after
// writing a backup (FILE.bak), and report every fix and what could not be saved. Refuses a heap a
// live process holds.
#include <cstring>

#include "../core/include/persist.h"
#include "check.h"
#include "platform.h"
#include "repair.h"
#include "tool.h"

namespace persist::tool {

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
  std::string backup = std::string(file) + ".bak";
  if ((rc = os::copy_file(fd, backup.c_str()))) {
    fprintf(stderr, "persist check --repair: cannot write the backup %s: %s: not repairing\n", backup.c_str(),
            persist_strerror(rc));
    os::close_file(fd);
    return kExitUnreadable;
  }
  uint64_t size = 0;
  os::file_size(fd, &size);
  void *mem = nullptr;
  if (size < kPageSize || os::reserve(0, size, &mem) || os::map_file(mem, size, fd, true)) {
    fprintf(stderr, "persist check --repair: %s cannot be mapped (%llu bytes)\n", file, (unsigned long long)size);
    os::close_file(fd);
    return kExitUnreadable;
  }
  RepairReport rep;
  rep.log = [](const char *line, void *arg) {
    if (!*static_cast<bool *>(arg)) printf("  fixed: %s\n", line);
  };
  rep.log_arg = &json;
  if (!json) printf("%s: repairing (backup in %s)\n", file, backup.c_str());
  rc = repair_image(static_cast<uint8_t *>(mem), size, &rep);
  os::sync_range(mem, size);
  os::sync_file(fd);
  os::unmap(mem, size);
  os::close_file(fd);
  if (json) {
    Json j(stdout);
    j.begin_object();
    j.str("file", file);
    j.str("backup", backup);
    j.num("fixes", rep.fixes);
    j.num("lost_spans", rep.lost_spans);
    j.num("lost_roots", rep.lost_roots);
    j.boolean("superblock_lost", rep.superblock_lost);
    j.boolean("consistent", rc == 0);
    j.end_object();
  } else {
    printf("%s: %llu fixes, %llu spans and %llu roots lost; %s\n", file, (unsigned long long)rep.fixes,
           (unsigned long long)rep.lost_spans, (unsigned long long)rep.lost_roots,
           rc ? "still inconsistent (nothing more can be done)" : "consistent now");
  }
  return rc ? kExitInconsistent : kExitOk;
}

}  // namespace persist::tool
