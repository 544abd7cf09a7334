#include "bench_stats.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <numeric>

namespace lithe::cli {

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(rank);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

LatencyStats latency_stats(std::vector<double> ms) {
  LatencyStats s;
  if (ms.empty()) return s;
  std::sort(ms.begin(), ms.end());
  const double n = static_cast<double>(ms.size());
  s.count = static_cast<int64_t>(ms.size());
  s.min = ms.front();
  s.max = ms.back();
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / n;
  s.median = percentile(ms, 50);
  s.p90 = percentile(ms, 90);
  s.p99 = percentile(ms, 99);
  if (ms.size() > 1) {
    double sq = 0;
    for (double v : ms) sq += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(sq / (n - 1));
  }
  return s;
}

double process_cpu_seconds() {
  timespec ts{};
  if (::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

ResidentMemory resident_memory() {
  ResidentMemory m;
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::pair<const char*, int64_t*> fields[] = {
      {"VmRSS:", &m.rss}, {"RssAnon:", &m.anon}, {"RssFile:", &m.file}, {"VmHWM:", &m.peak}};
  while (std::getline(f, line))
    for (const auto& [key, out] : fields)
      if (line.rfind(key, 0) == 0) *out = std::stoll(line.substr(std::strlen(key))) * 1024;  // kB
  return m;
}

namespace {

// The counter in `path`, or false when it cannot be read as a number.
bool read_counter(const std::string& path, uint64_t* out) {
  std::ifstream f(path);
  unsigned long long v = 0;
  if (!(f >> v)) return false;
  *out = v;
  return true;
}

// A top-level package zone: "intel-rapl:N" (sub-zones are "intel-rapl:N:M", parts of it).
bool package_zone(const std::string& name) {
  const std::string prefix = "intel-rapl:";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) return false;
  return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

EnergyMeter::EnergyMeter(std::string root) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!package_zone(name)) continue;
    Zone z;
    z.name = name;
    z.energy_path = (entry.path() / "energy_uj").string();
    uint64_t probe = 0;
    if (!read_counter(z.energy_path, &probe)) continue;
    if (!read_counter((entry.path() / "max_energy_range_uj").string(), &z.max_range)) continue;
    zones_.push_back(std::move(z));
  }
  std::sort(zones_.begin(), zones_.end(),
            [](const Zone& a, const Zone& b) { return a.name < b.name; });
}

std::vector<std::string> EnergyMeter::zones() const {
  std::vector<std::string> out;
  for (const Zone& z : zones_) out.push_back(z.name);
  return out;
}

void EnergyMeter::start() {
  for (Zone& z : zones_)
    if (!read_counter(z.energy_path, &z.start)) z.start = 0;
}

double EnergyMeter::joules() const {
  if (zones_.empty()) return -1;
  double uj = 0;
  for (const Zone& z : zones_) {
    uint64_t now = 0;
    if (!read_counter(z.energy_path, &now)) return -1;
    // The counter runs from 0 to max_energy_range_uj and wraps (at most once per interval
    // measured: a wrap takes minutes even at hundreds of watts).
    uj += static_cast<double>(now >= z.start ? now - z.start : z.max_range - z.start + now);
  }
  return uj * 1e-6;
}

}  // namespace lithe::cli
