// prog.cpp — compiled by g++ under the shim; the produced program's output is compared.
#include <algorithm>
#include <iostream>
#include <map>
#include <numeric>
#include <string>
#include <vector>

template <typename T>
T fold(const std::vector<T> &v) { return std::accumulate(v.begin(), v.end(), T{}); }

int main() {
  std::map<std::string, std::vector<int>> m;
  for (int i = 0; i < 1000; ++i) m["k" + std::to_string(i % 37)].push_back(i * i % 101);
  std::vector<int> sums;
  for (auto &kv : m) sums.push_back(fold(kv.second));
  std::sort(sums.begin(), sums.end());
  std::cout << "keys " << m.size() << " min " << sums.front() << " max " << sums.back()
            << " total " << fold(sums) << "\n";
  return 0;
}
