// msg.h — a fixed-size message buffer that formats without allocating (the core and the shim
// report errors from inside malloc, where snprintf is not safe to call).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace persist {

class Msg {
 public:
  Msg &add(const char *s) {
    while (s && *s && len_ + 1 < sizeof(buf_)) buf_[len_++] = *s++;
    buf_[len_] = 0;
    return *this;
  }
  Msg &dec(uint64_t v) {
    char tmp[24];
    int n = 0;
    do tmp[n++] = static_cast<char>('0' + v % 10); while (v /= 10);
    while (n && len_ + 1 < sizeof(buf_)) buf_[len_++] = tmp[--n];
    buf_[len_] = 0;
    return *this;
  }
  Msg &hex(uint64_t v) {
    add("0x");
    char tmp[16];
    int n = 0;
    do tmp[n++] = "0123456789abcdef"[v & 15]; while (v >>= 4);
    while (n && len_ + 1 < sizeof(buf_)) buf_[len_++] = tmp[--n];
    buf_[len_] = 0;
    return *this;
  }
  const char *str() const { return buf_; }
  size_t size() const { return len_; }
  bool empty() const { return len_ == 0; }
  void clear() { len_ = 0, buf_[0] = 0; }
  void copy_to(char *out, size_t outlen) const {
    if (!out || !outlen) return;
    size_t n = len_ < outlen - 1 ? len_ : outlen - 1;
    memcpy(out, buf_, n);
    out[n] = 0;
  }

 private:
  char buf_[512] = {0};
  size_t len_ = 0;
};

}  // namespace persist
