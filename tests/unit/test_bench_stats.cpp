// `lithe bench`'s measurements: latency statistics (interpolated percentiles, sample standard
// deviation), the powercap energy meter on a fake /sys/class/powercap tree (package zones
// summed, sub-zones skipped, wraparound, unreadable counters), CPU time and peak RSS.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "bench_stats.hpp"

using namespace lithe::cli;
namespace fs = std::filesystem;

TEST(BenchStats, PercentilesInterpolateBetweenRanks) {
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 10);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 5.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 9.1);  // rank 8.1
  EXPECT_DOUBLE_EQ(percentile(v, 99), 9.91);
  EXPECT_DOUBLE_EQ(percentile(v, 25), 3.25);
  EXPECT_DOUBLE_EQ(percentile({2, 4}, 90), 3.8);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
}

TEST(BenchStats, LatencyStatsOfUnsortedValues) {
  LatencyStats s = latency_stats({5, 1, 4, 2, 3, 6, 7, 8, 10, 9});
  EXPECT_EQ(s.count, 10);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_DOUBLE_EQ(s.median, 5.5);
  EXPECT_DOUBLE_EQ(s.p90, 9.1);
  EXPECT_DOUBLE_EQ(s.p99, 9.91);
  EXPECT_NEAR(s.stddev, 3.0276503540974917, 1e-12);  // sqrt(82.5 / 9)

  LatencyStats odd = latency_stats({0.5, 100, 0.25});
  EXPECT_DOUBLE_EQ(odd.median, 0.5);
  EXPECT_DOUBLE_EQ(odd.p90, 0.5 + 0.8 * 99.5);  // rank 1.8
  EXPECT_NEAR(odd.mean, 100.75 / 3, 1e-12);

  LatencyStats one = latency_stats({2.5});
  EXPECT_EQ(one.count, 1);
  EXPECT_DOUBLE_EQ(one.p99, 2.5);
  EXPECT_DOUBLE_EQ(one.stddev, 0);
  EXPECT_EQ(latency_stats({}).count, 0);
}

namespace {
struct FakePowercap {
  fs::path root = fs::temp_directory_path() / ("lithe_powercap_" + std::to_string(::getpid()));
  FakePowercap() { fs::create_directories(root); }
  ~FakePowercap() { fs::remove_all(root); }
  void zone(const std::string& name, uint64_t energy, uint64_t max_range) {
    fs::create_directories(root / name);
    set(name, energy);
    std::ofstream(root / name / "max_energy_range_uj") << max_range << "\n";
  }
  void set(const std::string& name, uint64_t energy) {
    std::ofstream(root / name / "energy_uj") << energy << "\n";
  }
};
}  // namespace

TEST(BenchStats, EnergyMeterSumsPackagesWithWraparound) {
  FakePowercap p;
  p.zone("intel-rapl:0", 1'000'000, 262'143'328'850);
  p.zone("intel-rapl:1", 262'143'000'000, 262'143'328'850);  // about to wrap
  p.zone("intel-rapl:0:0", 5, 1'000'000'000);                // core sub-zone: part of package 0
  fs::create_directories(p.root / "intel-rapl-mmio:0");      // not a package counter
  EnergyMeter m(p.root.string());
  ASSERT_TRUE(m.available());
  EXPECT_EQ(m.zones(), (std::vector<std::string>{"intel-rapl:0", "intel-rapl:1"}));
  m.start();
  p.set("intel-rapl:0", 3'500'000);      // +2.5 J
  p.set("intel-rapl:1", 171'150);        // wrapped: 328'850 to the top, then 171'150
  p.set("intel-rapl:0:0", 900'000'000);  // ignored
  EXPECT_NEAR(m.joules(), 2.5 + 0.5, 1e-9);
}

TEST(BenchStats, EnergyMeterWithoutCountersIsUnavailable) {
  FakePowercap p;
  EXPECT_FALSE(EnergyMeter(p.root.string()).available());
  EXPECT_FALSE(EnergyMeter((p.root / "absent").string()).available());
  fs::create_directories(p.root / "intel-rapl:0");  // no energy_uj (unreadable)
  EnergyMeter m(p.root.string());
  EXPECT_FALSE(m.available());
  m.start();
  EXPECT_EQ(m.joules(), -1);
}

TEST(BenchStats, CpuTimeAndPeakRss) {
  const double c0 = process_cpu_seconds();
  volatile double x = 0;
  for (int i = 0; i < 20'000'000; ++i) x = x + 1e-9 * i;
  EXPECT_GT(process_cpu_seconds(), c0);
  const ResidentMemory before = resident_memory();
  ASSERT_GT(before.peak, 0);
  ASSERT_GT(before.anon, 0);
  ASSERT_GT(before.file, 0);  // the test binary's own code
  EXPECT_GE(before.rss, before.anon + before.file);
  EXPECT_GE(before.peak, before.rss);
  std::vector<char> block(64 << 20, 1);  // 64 MiB touched
  const ResidentMemory after = resident_memory();
  EXPECT_GE(after.peak, before.peak + (32 << 20));
  EXPECT_GE(after.anon, before.anon + (32 << 20));
  EXPECT_EQ(block[12345], 1);
}
