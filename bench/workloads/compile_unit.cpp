// compile_unit.cpp — the input of the "g++ -O2" workload: a translation unit that makes the
// compiler work (templates instantiated over several types, the standard containers and
// algorithms, inlining and constant folding). Never run; only compiled.
#include <algorithm>
#include <cctype>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

namespace work {

template <class K, class V>
struct Table {
  std::unordered_map<K, std::vector<V>> rows;
  std::map<K, std::set<V>> index;
  void add(const K &k, const V &v) {
    rows[k].push_back(v);
    index[k].insert(v);
  }
  template <class F>
  auto fold(F f) const {
    using R = decltype(f(std::declval<const K &>(), std::declval<const V &>()));
    R acc{};
    for (const auto &[k, vs] : rows)
      for (const auto &v : vs) acc = acc + f(k, v);
    return acc;
  }
  std::vector<std::pair<K, size_t>> histogram() const {
    std::vector<std::pair<K, size_t>> h;
    for (const auto &[k, s] : index) h.emplace_back(k, s.size());
    std::sort(h.begin(), h.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    return h;
  }
};

using Value = std::variant<int, double, std::string, std::vector<int>>;

struct Printer {
  std::ostringstream &os;
  void operator()(int i) const { os << i; }
  void operator()(double d) const { os << d; }
  void operator()(const std::string &s) const { os << '"' << s << '"'; }
  void operator()(const std::vector<int> &v) const {
    os << '[';
    for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
    os << ']';
  }
};

template <int N>
struct Unroll {
  template <class F>
  static void run(F &&f) {
    Unroll<N - 1>::run(f);
    f(std::integral_constant<int, N>{});
  }
};
template <>
struct Unroll<0> {
  template <class F>
  static void run(F &&) {}
};

template <class T>
std::optional<T> parse(const std::string &s);
template <>
std::optional<int> parse<int>(const std::string &s) {
  try {
    return std::stoi(s);
  } catch (...) {
    return std::nullopt;
  }
}
template <>
std::optional<double> parse<double>(const std::string &s) {
  try {
    return std::stod(s);
  } catch (...) {
    return std::nullopt;
  }
}

template <class T>
std::string describe(const std::vector<T> &v) {
  std::ostringstream os;
  os << v.size() << ':' << std::accumulate(v.begin(), v.end(), T{}) << ':';
  auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  if (mn != v.end()) os << *mn << '-' << *mx;
  return os.str();
}

std::vector<std::string> tokens(const std::string &text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_') {
      cur += ch;
    } else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

template <class K, class V>
std::string summarize(const Table<K, V> &t) {
  std::ostringstream os;
  for (const auto &[k, n] : t.histogram()) os << k << '=' << n << ';';
  return os.str();
}

}  // namespace work

std::string run_all(const std::string &input) {
  using namespace work;
  Table<std::string, int> a;
  Table<int, std::string> b;
  Table<long, double> c;
  Table<std::string, std::string> d;
  auto toks = tokens(input);
  for (size_t i = 0; i < toks.size(); ++i) {
    a.add(toks[i], int(i));
    b.add(int(i % 17), toks[i]);
    c.add(long(i % 5), double(i) / 3);
    d.add(toks[i], toks[(i + 1) % toks.size()]);
  }
  std::ostringstream os;
  os << summarize(a) << summarize(b) << summarize(c) << summarize(d);
  os << a.fold([](const std::string &k, int v) { return long(k.size()) + v; });
  os << c.fold([](long k, double v) { return double(k) * v; });
  std::vector<Value> values{1, 2.5, std::string("x"), std::vector<int>{1, 2, 3}};
  Printer p{os};
  for (const auto &v : values) std::visit(p, v);
  std::vector<int> ints;
  Unroll<40>::run([&](auto n) { ints.push_back(decltype(n)::value * decltype(n)::value); });
  std::vector<double> dbls(ints.begin(), ints.end());
  std::vector<long> longs(ints.begin(), ints.end());
  os << describe(ints) << describe(dbls) << describe(longs);
  if (auto x = parse<int>(toks.empty() ? "0" : toks[0])) os << *x;
  if (auto y = parse<double>("2.5")) os << *y;
  std::vector<std::function<int(int)>> fs;
  for (int i = 0; i < 8; ++i) fs.push_back([i](int x) { return x * i + 1; });
  std::vector<std::tuple<int, std::string, double>> tup;
  for (int i = 0; i < 8; ++i) tup.emplace_back(fs[size_t(i)](i), std::to_string(i), i * 0.5);
  std::sort(tup.begin(), tup.end(), std::greater<>());
  for (auto &[i, s, dd] : tup) os << i << s << dd;
  auto sp = std::make_shared<std::map<std::string, std::vector<Value>>>();
  (*sp)["v"] = values;
  return os.str() + std::to_string(sp->size());
}
