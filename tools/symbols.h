// symbols.h — naming the frames of recorded call stacks (`persist sites`): a small ELF64 reader
// of our own (no libelf) and a per-module cache.
//
// A frame is recorded as (module path, build-id, offset = return address - load bias). The load
// bias is 0 for a non-PIE executable and the load address for PIEs and shared objects, so the
// offset is the link-time virtual address in both cases: it is looked up (minus one, the call
// instruction) among the function symbols of .symtab, or .dynsym when the file has no .symtab, or
// of the separate debug file /usr/lib/debug/.build-id/xx/yyyy.debug when the module is stripped.
// The file must carry the recorded build-id (NT_GNU_BUILD_ID): a rebuilt or replaced binary would
// name the wrong functions. A module without a usable file is shown as "name+0xOFFSET".
//
// Module files are untrusted input like heap files: every header, table, string and note is
// bounds-checked against the file's size before it is read; a file that is not ELF64 (or is
// truncated, or lies about its sizes) is reported as unusable, never crashes the tool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace persist::tool {

// One ELF64 file mapped read-only.
class ElfFile {
 public:
  ElfFile() = default;
  ~ElfFile();
  ElfFile(const ElfFile &) = delete;
  ElfFile &operator=(const ElfFile &) = delete;

  // Opens and validates the ELF header. False, with the reason in *why, when the file cannot be
  // read or is not a little-endian ELF64 executable, shared object or debug file.
  bool open(const std::string &path, std::string *why);

  // The NT_GNU_BUILD_ID note (from SHT_NOTE sections, else PT_NOTE segments); empty when none.
  const std::vector<uint8_t> &build_id() const { return build_id_; }

  struct Symbol {
    uint64_t value = 0, size = 0;  // link-time address and size (0: unknown)
    uint32_t name = 0;             // offset in the string table
    uint8_t bind = 0;              // STB_*
  };
  // The function symbols (STT_FUNC, STT_GNU_IFUNC, defined, non-zero value) of .symtab, or of
  // .dynsym when there is no .symtab, sorted by value. `from_symtab` says which.
  bool load_functions(std::vector<Symbol> *out, bool *from_symtab);
  // A symbol's name (from the table load_functions used), "" when out of bounds or unterminated.
  std::string name(uint32_t off) const;
  bool has_symtab() const { return symtab_ >= 0; }

 private:
  bool parse(std::string *why);
  void read_build_id();
  bool section_ok(uint64_t off, uint64_t size) const { return off <= size_ && size <= size_ - off; }
  const uint8_t *p_ = nullptr;
  uint64_t size_ = 0;
  uint64_t shoff_ = 0, shnum_ = 0, phoff_ = 0, phnum_ = 0;
  int symtab_ = -1, dynsym_ = -1;
  uint64_t strtab_off_ = 0, strtab_size_ = 0;
  std::vector<uint8_t> build_id_;
};

// A frame as `persist sites` shows it.
struct FrameName {
  bool resolved = false;        // a function symbol contains the frame
  std::string function;         // resolved: the (demangled) name
  uint64_t function_offset = 0; // resolved: offset of the return address from the function start
  std::string module;           // the module's basename ("" for a frame in no known module)
  std::string text;             // "alloc_a+0x1c" or "libfoo.so+0x4f10"
};

// The status of a module's file, once looked at.
enum class ModuleStatus {
  kOk,             // symbols from the file (its build-id matches, or none was recorded)
  kNoSymbols,      // the file matches but has no function symbols (and no debug file)
  kMissing,        // no file at the recorded path (nor a --binary with the build-id)
  kIdMismatch,     // the file at the path has another build-id (rebuilt or replaced)
  kNotElf,         // the file is not a readable ELF64 file
};
const char *module_status_text(ModuleStatus s);  // "ok", "missing", "build-id differs", ...

class Symbolizer {
 public:
  // A file to try for any module with the same build-id, before the recorded path (a copy of a
  // binary kept from the run that recorded the heap). Its build-id is read when first needed.
  void add_candidate(const std::string &path) { candidates_.push_back(path); }

  // Names the frame at `offset` (return address - load bias) in the module recorded as
  // (path, build_id[0..id_len)). Each module's file is read once.
  FrameName name(const std::string &path, const uint8_t *build_id, size_t id_len, uint64_t offset);

  struct ModuleInfo {
    ModuleStatus status = ModuleStatus::kMissing;
    std::string file;     // where the symbols came from (the path, a candidate, a debug file)
    std::string problem;  // why not kOk, in words
    bool symtab = false;  // symbols from a .symtab (static functions included)
  };
  // The status of a module named before (nullptr when name() never saw it).
  const ModuleInfo *info(const std::string &path, const uint8_t *build_id, size_t id_len) const;

 private:
  struct Module {
    ModuleInfo info;
    std::unique_ptr<ElfFile> elf;  // the file whose string table the symbols index
    std::vector<ElfFile::Symbol> syms;
    std::map<uint64_t, std::string> demangled;  // symbol value -> name
  };
  static std::string key(const std::string &path, const uint8_t *id, size_t id_len);
  Module &load(const std::string &path, const uint8_t *id, size_t id_len);
  const std::string &function_name(Module &m, const ElfFile::Symbol &s);
  std::map<std::string, std::unique_ptr<Module>> modules_;
  std::vector<std::string> candidates_;
  std::map<std::string, std::vector<uint8_t>> candidate_ids_;  // read lazily
};

// "abcd..." for a build-id.
std::string build_id_hex(const uint8_t *id, size_t n);
// The part of a path after the last '/'.
std::string base_name(const std::string &path);

}  // namespace persist::tool
