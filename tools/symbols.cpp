// symbols.cpp — see symbols.h. The ELF64 structures come from the system's <elf.h>; every read
// from a file goes through memcpy at an offset checked against the file's size (a hostile file may
// put a table at any offset, unaligned or past its end).
#include "symbols.h"

#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace persist::tool {

namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the reader takes ELF fields as host words");

constexpr const char *kDebugDir = "/usr/lib/debug/.build-id/";

template <class T>
bool read_at(const uint8_t *p, uint64_t size, uint64_t off, T *out) {
  if (off > size || sizeof(T) > size - off) return false;
  memcpy(out, p + off, sizeof(T));
  return true;
}

// [off, off + n * each) inside [0, size)?
bool table_ok(uint64_t size, uint64_t off, uint64_t n, uint64_t each) {
  return off <= size && n <= (size - off) / each;
}

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// The NT_GNU_BUILD_ID in the notes at [off, off + len) of p, aligned to `align` (4 or 8).
bool find_build_id(const uint8_t *p, uint64_t size, uint64_t off, uint64_t len, uint64_t align,
                   std::vector<uint8_t> *out) {
  if (off > size || len > size - off) return false;
  align = align == 8 ? 8 : 4;
  const uint64_t end = off + len;
  for (uint64_t pos = off; end - pos >= sizeof(Elf64_Nhdr);) {
    Elf64_Nhdr n;
    memcpy(&n, p + pos, sizeof n);
    const uint64_t name_at = pos + sizeof n;
    const uint64_t name_len = align_up(n.n_namesz, align);
    if (name_len > end - name_at) return false;
    const uint64_t desc_at = name_at + name_len;
    if (n.n_descsz > end - desc_at) return false;
    if (n.n_type == NT_GNU_BUILD_ID && n.n_namesz == 4 && memcmp(p + name_at, "GNU", 4) == 0 &&
        n.n_descsz > 0) {
      out->assign(p + desc_at, p + desc_at + n.n_descsz);
      return true;
    }
    const uint64_t desc_len = align_up(n.n_descsz, align);
    if (desc_len > end - desc_at) return false;
    pos = desc_at + desc_len;
  }
  return false;
}

}  // namespace

ElfFile::~ElfFile() {
  if (p_) munmap(const_cast<uint8_t *>(p_), size_);
}

bool ElfFile::open(const std::string &path, std::string *why) {
  // O_NONBLOCK: a FIFO at the path must not block the open (it is refused below).
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *why = path + ": " + strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *why = path + ": not a regular file";
    ::close(fd);
    return false;
  }
  if (static_cast<uint64_t>(st.st_size) < sizeof(Elf64_Ehdr)) {
    *why = path + ": too short for an ELF file";
    ::close(fd);
    return false;
  }
  size_ = static_cast<uint64_t>(st.st_size);
  void *m = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) {
    *why = path + ": cannot map: " + strerror(errno);
    size_ = 0;
    return false;
  }
  p_ = static_cast<const uint8_t *>(m);
  if (!parse(why)) {
    *why = path + ": " + *why;
    return false;
  }
  read_build_id();
  return true;
}

bool ElfFile::parse(std::string *why) {
  Elf64_Ehdr eh;
  memcpy(&eh, p_, sizeof eh);
  if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    *why = "not an ELF file";
    return false;
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
    *why = "not a little-endian 64-bit ELF file";
    return false;
  }
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
    *why = "not an executable or shared object (ELF type " + std::to_string(eh.e_type) + ")";
    return false;
  }
  // Section headers (optional: a file without them still has its notes in PT_NOTE).
  if (eh.e_shoff && eh.e_shentsize == sizeof(Elf64_Shdr)) {
    uint64_t n = eh.e_shnum;
    Elf64_Shdr first;
    if (n == 0 && read_at(p_, size_, eh.e_shoff, &first)) n = first.sh_size;  // extended numbering
    if (n && table_ok(size_, eh.e_shoff, n, sizeof(Elf64_Shdr))) shoff_ = eh.e_shoff, shnum_ = n;
  }
  if (eh.e_phoff && eh.e_phentsize == sizeof(Elf64_Phdr)) {
    uint64_t n = eh.e_phnum;
    Elf64_Shdr first;
    if (n == PN_XNUM && shnum_ && read_at(p_, size_, shoff_, &first)) n = first.sh_info;
    if (n && table_ok(size_, eh.e_phoff, n, sizeof(Elf64_Phdr))) phoff_ = eh.e_phoff, phnum_ = n;
  }
  for (uint64_t i = 0; i < shnum_ && i < INT32_MAX; ++i) {
    Elf64_Shdr sh;
    memcpy(&sh, p_ + shoff_ + i * sizeof sh, sizeof sh);
    if (sh.sh_type == SHT_SYMTAB && symtab_ < 0) symtab_ = static_cast<int>(i);
    if (sh.sh_type == SHT_DYNSYM && dynsym_ < 0) dynsym_ = static_cast<int>(i);
  }
  return true;
}

void ElfFile::read_build_id() {
  for (uint64_t i = 0; i < shnum_; ++i) {
    Elf64_Shdr sh;
    memcpy(&sh, p_ + shoff_ + i * sizeof sh, sizeof sh);
    if (sh.sh_type == SHT_NOTE &&
        find_build_id(p_, size_, sh.sh_offset, sh.sh_size, sh.sh_addralign, &build_id_))
      return;
  }
  for (uint64_t i = 0; i < phnum_; ++i) {
    Elf64_Phdr ph;
    memcpy(&ph, p_ + phoff_ + i * sizeof ph, sizeof ph);
    if (ph.p_type == PT_NOTE &&
        find_build_id(p_, size_, ph.p_offset, ph.p_filesz, ph.p_align, &build_id_))
      return;
  }
}

bool ElfFile::load_functions(std::vector<Symbol> *out, bool *from_symtab) {
  out->clear();
  *from_symtab = false;
  for (int idx : {symtab_, dynsym_}) {
    if (idx < 0) continue;
    Elf64_Shdr sh, str;
    memcpy(&sh, p_ + shoff_ + uint64_t(idx) * sizeof sh, sizeof sh);
    if (sh.sh_entsize != 0 && sh.sh_entsize != sizeof(Elf64_Sym)) continue;
    if (!section_ok(sh.sh_offset, sh.sh_size) || sh.sh_link >= shnum_) continue;
    memcpy(&str, p_ + shoff_ + uint64_t{sh.sh_link} * sizeof str, sizeof str);
    if (str.sh_type != SHT_STRTAB || !section_ok(str.sh_offset, str.sh_size)) continue;
    const uint64_t n = sh.sh_size / sizeof(Elf64_Sym);
    for (uint64_t i = 0; i < n; ++i) {
      Elf64_Sym s;
      memcpy(&s, p_ + sh.sh_offset + i * sizeof s, sizeof s);
      const unsigned type = ELF64_ST_TYPE(s.st_info);
      if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s.st_shndx == SHN_UNDEF || s.st_value == 0 ||
          s.st_name >= str.sh_size)
        continue;
      out->push_back(Symbol{s.st_value, s.st_size, s.st_name, static_cast<uint8_t>(ELF64_ST_BIND(s.st_info))});
    }
    if (out->empty()) continue;  // a .symtab without functions: try .dynsym
    strtab_off_ = str.sh_offset, strtab_size_ = str.sh_size;
    *from_symtab = idx == symtab_;
    break;
  }
  std::sort(out->begin(), out->end(),
            [](const Symbol &a, const Symbol &b) { return a.value < b.value; });
  return !out->empty();
}

std::string ElfFile::name(uint32_t off) const {
  if (off >= strtab_size_) return "";
  const char *s = reinterpret_cast<const char *>(p_ + strtab_off_ + off);
  size_t n = strnlen(s, strtab_size_ - off);
  if (n == strtab_size_ - off) return "";  // not terminated inside the table
  return std::string(s, n);
}

// ---- Symbolizer ---------------------------------------------------------------------------------

const char *module_status_text(ModuleStatus s) {
  switch (s) {
    case ModuleStatus::kOk: return "ok";
    case ModuleStatus::kNoSymbols: return "no symbols";
    case ModuleStatus::kMissing: return "missing";
    case ModuleStatus::kIdMismatch: return "build-id differs";
    case ModuleStatus::kNotElf: return "not ELF";
  }
  return "?";
}

std::string build_id_hex(const uint8_t *id, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kDigits[id[i] >> 4], s += kDigits[id[i] & 15];
  return s;
}

std::string base_name(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string Symbolizer::key(const std::string &path, const uint8_t *id, size_t id_len) {
  return build_id_hex(id, id_len) + '\n' + path;
}

namespace {

// Among symbols at one address, the one to show: a sized one, global before weak before local,
// then the fewest leading underscores (malloc before __libc_malloc), then the shortest name.
int bind_rank(uint8_t bind) { return bind == STB_GLOBAL ? 2 : bind == STB_WEAK ? 1 : 0; }

bool better(const ElfFile &elf, const ElfFile::Symbol &a, const ElfFile::Symbol &b) {
  if ((a.size != 0) != (b.size != 0)) return a.size != 0;
  if (bind_rank(a.bind) != bind_rank(b.bind)) return bind_rank(a.bind) > bind_rank(b.bind);
  std::string na = elf.name(a.name), nb = elf.name(b.name);
  if (na.empty() != nb.empty()) return !na.empty();
  size_t ua = na.find_first_not_of('_'), ub = nb.find_first_not_of('_');
  if (ua != ub) return ua < ub;
  if (na.size() != nb.size()) return na.size() < nb.size();
  return na < nb;
}

}  // namespace

Symbolizer::Module &Symbolizer::load(const std::string &path, const uint8_t *id, size_t id_len) {
  std::unique_ptr<Module> &slot = modules_[key(path, id, id_len)];
  if (slot) return *slot;
  slot.reset(new Module);
  Module &m = *slot;
  const std::vector<uint8_t> want(id, id + id_len);
  std::unique_ptr<ElfFile> elf;
  std::string why;

  // A --binary with the recorded build-id comes first.
  if (id_len) {
    for (const std::string &c : candidates_) {
      auto it = candidate_ids_.find(c);
      if (it == candidate_ids_.end()) {
        ElfFile f;
        std::string ignored;
        it = candidate_ids_.emplace(c, f.open(c, &ignored) ? f.build_id() : std::vector<uint8_t>()).first;
      }
      if (it->second == want) {
        std::unique_ptr<ElfFile> f(new ElfFile);
        if (f->open(c, &why)) {
          elf = std::move(f);
          m.info.file = c;
          break;
        }
      }
    }
  }
  if (!elf) {
    std::unique_ptr<ElfFile> f(new ElfFile);
    if (path.empty() || path[0] != '/') {
      m.info.status = ModuleStatus::kMissing;
      m.info.problem = "no file recorded for the module";
    } else if (!f->open(path, &why)) {
      bool missing = access(path.c_str(), F_OK) != 0;
      m.info.status = missing ? ModuleStatus::kMissing : ModuleStatus::kNotElf;
      m.info.problem = why;
    } else if (id_len && f->build_id() != want) {
      m.info.status = ModuleStatus::kIdMismatch;
      m.info.problem = path + " has build-id " +
                       (f->build_id().empty() ? std::string("(none)")
                                              : build_id_hex(f->build_id().data(), f->build_id().size())) +
                       ", the heap recorded " + build_id_hex(id, id_len) +
                       " (rebuilt or replaced since)";
    } else {
      elf = std::move(f);
      m.info.file = path;
    }
  }

  bool symtab = false;
  if (elf && elf->load_functions(&m.syms, &symtab)) {
    m.elf = std::move(elf);
    m.info.symtab = symtab;
  }
  // A stripped or missing module: the separate debug file with the build-id, if installed.
  if (!m.info.symtab && id_len >= 2) {
    std::string hex = build_id_hex(id, id_len);
    std::string dbg = std::string(kDebugDir) + hex.substr(0, 2) + "/" + hex.substr(2) + ".debug";
    std::unique_ptr<ElfFile> d(new ElfFile);
    std::string ignored;
    std::vector<ElfFile::Symbol> syms;
    bool dsymtab = false;
    if (d->open(dbg, &ignored) && d->build_id() == want && d->load_functions(&syms, &dsymtab) &&
        dsymtab) {
      m.syms = std::move(syms);
      m.elf = std::move(d);
      m.info.symtab = true;
      m.info.file = dbg;
      m.info.status = ModuleStatus::kOk;
      m.info.problem.clear();
    }
  }
  if (m.elf) {
    m.info.status = ModuleStatus::kOk;
    // One symbol per address (aliases: the best name), sized by the largest alias.
    std::vector<ElfFile::Symbol> uniq;
    for (const ElfFile::Symbol &s : m.syms) {
      if (!uniq.empty() && uniq.back().value == s.value) {
        uint64_t size = std::max(uniq.back().size, s.size);
        if (better(*m.elf, s, uniq.back())) uniq.back() = s;
        uniq.back().size = size;
      } else {
        uniq.push_back(s);
      }
    }
    m.syms.swap(uniq);
  } else if (elf) {  // the file matched but holds no function symbols
    m.info.status = ModuleStatus::kNoSymbols;
    m.info.problem = m.info.file + " has no function symbols (stripped, and no debug file for its "
                     "build-id is installed)";
  }
  return m;
}

const std::string &Symbolizer::function_name(Module &m, const ElfFile::Symbol &s) {
  auto it = m.demangled.find(s.value);
  if (it != m.demangled.end()) return it->second;
  std::string raw = m.elf->name(s.name);
  size_t at = raw.find('@');  // a version in .symtab: "__libc_start_main@@GLIBC_2.34"
  if (at != std::string::npos && at > 0) raw.resize(at);
  std::string shown = raw.empty() ? "?" : raw;
  if (raw.size() > 2 && raw[0] == '_' && raw[1] == 'Z') {
    int status = 0;
    char *d = abi::__cxa_demangle(raw.c_str(), nullptr, nullptr, &status);
    if (d && status == 0) shown = d;
    free(d);
  }
  return m.demangled.emplace(s.value, shown).first->second;
}

FrameName Symbolizer::name(const std::string &path, const uint8_t *build_id, size_t id_len,
                           uint64_t offset) {
  FrameName f;
  f.module = base_name(path);
  char hex[24];
  snprintf(hex, sizeof hex, "+0x%llx", static_cast<unsigned long long>(offset));
  f.text = (f.module.empty() ? std::string("?") : f.module) + hex;
  Module &m = load(path, build_id, id_len);
  if (!m.elf || offset == 0) return f;
  const uint64_t pc = offset - 1;  // inside the call instruction
  auto it = std::upper_bound(m.syms.begin(), m.syms.end(), pc,
                             [](uint64_t v, const ElfFile::Symbol &s) { return v < s.value; });
  if (it == m.syms.begin()) return f;
  const size_t i = static_cast<size_t>(it - m.syms.begin()) - 1;
  const ElfFile::Symbol *hit = nullptr;
  const ElfFile::Symbol &s = m.syms[i];
  if (s.size ? pc - s.value < s.size : i + 1 < m.syms.size()) {
    hit = &s;  // (an unsized symbol reaches to the next one)
  } else {
    // The nearest symbol ends before pc: an earlier, larger one may still contain it.
    for (size_t k = i, steps = 0; k-- > 0 && steps < 16; ++steps)
      if (m.syms[k].size && pc - m.syms[k].value < m.syms[k].size) {
        hit = &m.syms[k];
        break;
      }
  }
  if (!hit) return f;
  f.resolved = true;
  f.function = function_name(m, *hit);
  f.function_offset = offset - hit->value;
  snprintf(hex, sizeof hex, "+0x%llx", static_cast<unsigned long long>(f.function_offset));
  f.text = f.function + hex;
  return f;
}

const Symbolizer::ModuleInfo *Symbolizer::info(const std::string &path, const uint8_t *build_id,
                                               size_t id_len) const {
  auto it = modules_.find(key(path, build_id, id_len));
  return it == modules_.end() ? nullptr : &it->second->info;
}

}  // namespace persist::tool
