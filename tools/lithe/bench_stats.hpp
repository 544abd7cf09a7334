// What `lithe bench` measures besides time: latency statistics, the process's CPU time and
// peak resident set, and energy from the powercap (RAPL) counters where the kernel exposes
// readable ones. Kept apart from the command so the unit tests reach it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace lithe::cli {

/// Summary of a set of latencies (milliseconds).
struct LatencyStats {
  int64_t count = 0;
  double min = 0, mean = 0, median = 0, p90 = 0, p99 = 0, max = 0;
  double stddev = 0;  ///< sample standard deviation (n - 1); 0 for fewer than two values
};

/// The p-th percentile (0..100) of sorted values, interpolated linearly between the two
/// nearest ranks (numpy's default): rank p/100 * (n - 1). 0 for no values.
double percentile(const std::vector<double>& sorted, double p);
/// Statistics of `ms` (any order).
LatencyStats latency_stats(std::vector<double> ms);

/// CPU seconds this process has used (all threads): CLOCK_PROCESS_CPUTIME_ID.
double process_cpu_seconds();
/// Resident memory of this process now, in bytes, from /proc/self/status (-1 if unknown):
/// rss (VmRSS) = anon (RssAnon: heap, stacks, arenas) + file (RssFile: mapped files such as an
/// engine's weights, and the code) + shmem; peak is VmHWM, the highest rss so far.
struct ResidentMemory {
  int64_t rss = -1, anon = -1, file = -1, peak = -1;
};
ResidentMemory resident_memory();

/// Energy over an interval from the powercap package counters (intel-rapl:N/energy_uj, also
/// used for AMD packages): the sum of the top-level zones (their sub-zones are parts of them),
/// with each counter's wraparound at max_energy_range_uj. Unavailable (never guessed) when no
/// such counter can be read, e.g. no powercap driver or counters readable by root only.
class EnergyMeter {
 public:
  explicit EnergyMeter(std::string root = "/sys/class/powercap");
  /// True when at least one package counter can be read.
  bool available() const { return !zones_.empty(); }
  /// Why not, for reports: "no readable powercap energy counter".
  static const char* unavailable_reason() { return "no readable powercap energy counter"; }
  /// Zone names read ("intel-rapl:0", ...).
  std::vector<std::string> zones() const;
  /// Remembers every counter's value now.
  void start();
  /// Joules since start(); -1 when a counter could not be read again.
  double joules() const;

 private:
  struct Zone {
    std::string name, energy_path;
    uint64_t max_range = 0, start = 0;
  };
  std::vector<Zone> zones_;
};

}  // namespace lithe::cli
