#include "common.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include "core/npy.hpp"

namespace lithe::cli {

void parse_shape_flag(const std::string& flag, std::map<std::string, Shape>& out) {
  size_t eq = flag.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size())
    fail("--input-shape '", flag, "': expected NAME=DIMS, e.g. x=1x3x224x224");
  std::string name = flag.substr(0, eq), dims = flag.substr(eq + 1);
  Shape s;
  std::string cur;
  for (size_t i = 0; i <= dims.size(); ++i) {
    char c = i < dims.size() ? dims[i] : 'x';
    if (c == 'x' || c == ',') {
      if (cur.empty() || cur.size() > 12)
        fail("--input-shape '", flag, "': expected dims like 1x3x224x224");
      s.push_back(std::stoll(cur));
      cur.clear();
    } else if (c >= '0' && c <= '9') {
      cur += c;
    } else {
      fail("--input-shape '", flag, "': unexpected character '", c, "' in dims");
    }
  }
  checked_numel(s, "--input-shape '" + flag + "'");
  out[name] = s;
}

GivenInputs read_input_flags(const std::vector<std::string>& input_flags,
                             const std::vector<std::string>& shape_flags,
                             std::map<std::string, Shape>& shapes) {
  for (const auto& s : shape_flags) parse_shape_flag(s, shapes);
  GivenInputs given;
  for (const auto& f : input_flags) {
    auto [name, file] = parse_name_file(f, "--input");
    Tensor t = read_npy(file);
    if (!shapes.count(name)) shapes[name] = t.shape();
    given[name] = {file, std::move(t)};
  }
  return given;
}

void check_threads(int threads) {
  if (threads < 1 || threads > 256) fail("--threads must be between 1 and 256, got ", threads);
}

std::pair<std::string, std::string> parse_name_file(const std::string& flag, const char* opt) {
  size_t eq = flag.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == flag.size())
    fail(opt, " '", flag, "': expected NAME=FILE.npy");
  return {flag.substr(0, eq), flag.substr(eq + 1)};
}

std::string sanitize_name(const std::string& name) {
  std::string s = name;
  for (char& c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  if (s.empty() || s == "." || s == "..") s = "_" + s;
  return s;
}

Tensor random_tensor(DType dtype, const Shape& shape, uint64_t seed) {
  Tensor t(dtype, shape);
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  auto next = [&]() {  // splitmix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  visit_dtype(dtype, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      double u = static_cast<double>(next() >> 11) * 0x1.0p-53;
      if constexpr (std::is_same_v<T, bool>)
        p[i] = u < 0.5;
      else if constexpr (std::is_integral_v<T>)
        p[i] = static_cast<T>(u * 10);
      else
        p[i] = static_cast<T>(static_cast<compute_t<T>>(u));
    }
  });
  return t;
}

std::string tensor_summary(const Tensor& t) {
  if (t.numel() == 0) return "empty";
  double mn = std::numeric_limits<double>::infinity(), mx = -mn, sum = 0, sq = 0;
  int64_t nan = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.at_double(i);
    if (std::isnan(v)) {
      ++nan;
      continue;
    }
    mn = std::min(mn, v);
    mx = std::max(mx, v);
    sum += v;
    sq += v * v;
  }
  int64_t n = t.numel() - nan;
  double mean = n ? sum / static_cast<double>(n) : 0;
  double var = n ? sq / static_cast<double>(n) - mean * mean : 0;
  char buf[256];
  std::snprintf(buf, sizeof buf, "min %.6g  max %.6g  mean %.6g  std %.6g%s", mn, mx, mean,
                std::sqrt(std::max(0.0, var)), nan ? "  (has NaN)" : "");
  return buf;
}

Profile profile_of(const Context& ctx, int64_t runs) {
  Profile p;
  const std::vector<Context::NodeTime> nodes = ctx.profile();
  int64_t total = 0, macs = 0;
  for (const auto& n : nodes) {
    total += n.ns;
    macs += n.macs;
  }
  const double r = static_cast<double>(std::max<int64_t>(runs, 1));
  for (const auto& n : nodes) {
    const double ns = static_cast<double>(n.ns);
    p.rows.push_back({n.node, n.op, n.kernel, n.precision, ns / 1e6 / r,
                      total ? ns / static_cast<double>(total) : 0.0,
                      n.ns ? 2.0 * static_cast<double>(n.macs) * r / ns : 0.0});
  }
  std::stable_sort(p.rows.begin(), p.rows.end(),
                   [](const auto& a, const auto& b) { return a.ms > b.ms; });
  p.total_ms = static_cast<double>(total) / 1e6 / r;
  p.gmacs = static_cast<double>(macs) / 1e9;
  p.gflops = total ? 2.0 * static_cast<double>(macs) * r / static_cast<double>(total) : 0.0;
  return p;
}

void print_profile(const Profile& p) {
  if (p.rows.empty()) {
    std::printf("profile: not available (the model runs on the reference executor)\n");
    return;
  }
  std::printf("%-40s %-24s %-18s %-9s %9s %6s %8s\n", "node", "op", "kernel", "precision", "ms",
              "share", "GFLOP/s");
  for (const auto& n : p.rows)
    std::printf("%-40.40s %-24.24s %-18s %-9s %9.3f %5.1f%% %8.1f\n", n.node.c_str(), n.op.c_str(),
                n.kernel.c_str(), n.precision.c_str(), n.ms, 100.0 * n.share, n.gflops);
  std::printf("total %.3f ms per run, %.2f GMAC, %.1f GFLOP/s\n", p.total_ms, p.gmacs, p.gflops);
}

ProgressBar::ProgressBar() : on_(::isatty(STDERR_FILENO) != 0) {}

void ProgressBar::show(double fraction) const {
  if (!on_) return;
  const int width = 40, filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * width);
  std::fprintf(stderr, "\r[%s%s] %3.0f%%", std::string(static_cast<size_t>(filled), '#').c_str(),
               std::string(static_cast<size_t>(width - filled), ' ').c_str(), 100.0 * fraction);
  std::fflush(stderr);
}

void ProgressBar::operator()(size_t done, size_t total) const {
  if (total == 0) return;
  show(static_cast<double>(done) / static_cast<double>(total));
  if (done == total) clear();
}

void ProgressBar::clear() const {
  if (on_) std::fprintf(stderr, "\r%48s\r", "");
}

int parse_and_run(CLI::App& app, int argc, char** argv, const char* prog) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << prog << ": " << e.what() << " (see --help)\n";
    return 2;
  } catch (const lithe::Error& e) {
    std::cerr << prog << ": error: " << e.what() << "\n";
    return static_cast<int>(e.kind());
  } catch (const std::bad_alloc&) {
    std::cerr << prog << ": error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << prog << ": error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace lithe::cli
