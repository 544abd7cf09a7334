// Microbenchmarks of lithe's optimized kernels, called through lithe::kernels::kernel_table(isa)
// for every ISA level this CPU supports, on one thread, at the shapes real models run them.
//
//   build-bench/bench/lithe_bench_kernels [--benchmark_filter=REGEX] [--benchmark_format=json]
//
// Names: <family>/<isa>/<shape label>, e.g. f32_gemm/avx512/resnet50_1x1_s2/M:784/K:512/N:128.
// Counter FLOPS (printed as e.g. "FLOPS=108.5G/s", i.e. GFLOP/s) counts 2 flops per
// multiply-add of the mathematical operation (padding of partial panels and skipped
// out-of-image taps excluded) per second of the benchmark's CPU time (Google Benchmark's
// default for rates: time the thread was preempted on a shared machine is not counted).
// Depthwise also reports "bytes": input + output bytes per second (the kernel is memory-bound).
//
//  - peak/<isa>: the GEMM microkernel on one tile that stays in L1 (M = gemm_mr rows,
//    K = 256, N = 16 * gemm_panels columns, no epilogue), repeated: the FLOP/s one core can
//    reach with this microkernel. bench/compare_ort.sh divides models' GFLOP/s by it.
//  - f32_gemm/<isa>/...: C = packed A x packed B with bias and ReLU fused (as a Conv+Relu
//    runs), the whole M x N computed by one call (rows [0, M), all panels). A and B are packed
//    once, outside the timed loop: the figure is the kernel's, not the packing's.
//      ResNet-50 1x1 convs (M = output pixels, K = input channels, N = output channels) and
//      its 3x3 convs as im2col GEMMs (K = 9 * channels: 576, 1152, 2304, 4608);
//      MobileNetV2's pointwise (1x1) convs: expansion, projection, the last 1x1.
//  - f32_dwconv/<isa>/...: 3x3 depthwise conv, pad 1, NHWC, bias + ReLU6 (Clip 0..6) fused,
//    at MobileNetV2's depthwise layers (input HxWxC and stride).
//  - f32_conv_window/<isa>/...: a KxK conv as the runtime's window path runs it (the GEMM
//    reading windows in place from the padded NHWC image, bias + ReLU), at the stems of
//    ResNet-50 / GoogLeNet, SqueezeNet and MobileNetV2 (3 input channels).
//  - q8_gemm/<isa>/..., q8_dwconv/<isa>/...: the INT8 kernels (uint8 x int8, requantized to
//    uint8 with a fused ReLU) at the same shapes; counter OPS = 2 * multiply-adds per second
//    (GOP/s), comparable with FLOPS. A is read in place (row stride round_up(K, 4)), B packed
//    once outside the timed loop. The VNNI levels (avxvnni, avx512vnni) share the fp32
//    kernels of avx2 / avx512, so only their q8_* cases are registered.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu.hpp"
#include "kernels/kernels.hpp"

namespace {

using lithe::kernels::Isa;
using lithe::kernels::KernelTable;
namespace k = lithe::kernels;

// 64-byte aligned float buffer filled with uniform [-1, 1) values.
struct Buf {
  float* p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count, uint32_t seed = 1) : n(count) {
    const size_t bytes = ((count * sizeof(float) + 63) / 64 + 1) * 64;
    p = static_cast<float*>(std::aligned_alloc(64, bytes));
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (size_t i = 0; i < bytes / sizeof(float); ++i) p[i] = u(rng);
  }
  ~Buf() { std::free(p); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

// Counter `name` (FLOPS, or OPS for integer kernels) as a rate of per_iter a run.
void set_rate(benchmark::State& st, const char* name, double per_iter) {
  st.counters[name] = benchmark::Counter(per_iter * static_cast<double>(st.iterations()),
                                         benchmark::Counter::kIsRate);
}

void bm_gemm(benchmark::State& st, Isa isa, int64_t m, int64_t kk, int64_t n, bool epilogue) {
  const KernelTable& t = k::kernel_table(isa);
  Buf a(static_cast<size_t>(m * kk), 1), b(static_cast<size_t>(kk * n), 2);
  Buf bp(static_cast<size_t>(k::packed_b_floats(kk, n)), 3);
  Buf bias(static_cast<size_t>(k::panels_of(n) * k::kPanel), 4);
  Buf c(static_cast<size_t>(m * n), 5);
  Buf ap(static_cast<size_t>(k::packed_a_floats(m, kk, t.gemm_mr)), 6);
  k::pack_b_f32(kk, n, b.p, n, 1, bp.p);
  k::pack_a_f32(m, kk, a.p, kk, t.gemm_mr, ap.p);
  k::GemmArgs g;
  g.m = m;
  g.n = n;
  g.k = kk;
  g.a = ap.p;
  g.bp = bp.p;
  g.c = c.p;
  g.ldc = n;
  if (epilogue) {
    g.ep.bias = bias.p;
    g.ep.act.act = lithe::ops::fused::Activation::kRelu;
  }
  const int64_t panels = k::panels_of(n);
  for (auto _ : st) {
    t.f32_gemm(g, 0, m, 0, panels);
    benchmark::DoNotOptimize(c.p);
    benchmark::ClobberMemory();
  }
  set_rate(st, "FLOPS",
           2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(kk));
}

// The microkernel on one L1-resident tile, `reps` calls per iteration.
void bm_peak(benchmark::State& st, Isa isa) {
  const KernelTable& t = k::kernel_table(isa);
  const int64_t m = t.gemm_mr, kk = 256, n = k::kPanel * t.gemm_panels;
  Buf a(static_cast<size_t>(m * kk), 1), b(static_cast<size_t>(kk * n), 2);
  Buf bp(static_cast<size_t>(k::packed_b_floats(kk, n)), 3);
  Buf c(static_cast<size_t>(m * n), 5);
  Buf ap(static_cast<size_t>(k::packed_a_floats(m, kk, t.gemm_mr)), 6);
  k::pack_b_f32(kk, n, b.p, n, 1, bp.p);
  k::pack_a_f32(m, kk, a.p, kk, t.gemm_mr, ap.p);
  k::GemmArgs g;
  g.m = m;
  g.n = n;
  g.k = kk;
  g.a = ap.p;
  g.bp = bp.p;
  g.c = c.p;
  g.ldc = n;
  constexpr int reps = 64;
  for (auto _ : st) {
    for (int r = 0; r < reps; ++r) {
      t.f32_gemm(g, 0, m, 0, t.gemm_panels);
      benchmark::DoNotOptimize(c.p);
      benchmark::ClobberMemory();
    }
  }
  st.SetLabel("MR=" + std::to_string(m) + " K=256 N=" + std::to_string(n));
  set_rate(st, "FLOPS",
           2.0 * reps * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(kk));
}

void bm_dwconv(benchmark::State& st, Isa isa, int64_t h, int64_t w, int64_t ch, int64_t stride) {
  const KernelTable& t = k::kernel_table(isa);
  const int64_t oh = (h + 2 - 3) / stride + 1, ow = (w + 2 - 3) / stride + 1;
  Buf x(static_cast<size_t>(h * w * ch), 1), wt(static_cast<size_t>(9 * ch), 2),
      bias(static_cast<size_t>(ch), 3), y(static_cast<size_t>(oh * ow * ch), 4);
  k::DwConvArgs d;
  d.x = x.p;
  d.ih = h;
  d.iw = w;
  d.x_stride = ch;
  d.w = wt.p;
  d.y = y.p;
  d.oh = oh;
  d.ow = ow;
  d.y_stride = ch;
  d.c = ch;
  d.kh = d.kw = 3;
  d.sh = d.sw = stride;
  d.ph = d.pw = 1;
  d.ep.bias = bias.p;
  d.ep.act.act = lithe::ops::fused::Activation::kClip;
  d.ep.act.p0 = 0.0f;
  d.ep.act.p1 = 6.0f;
  for (auto _ : st) {
    t.f32_dwconv(d, 0, oh);
    benchmark::DoNotOptimize(y.p);
    benchmark::ClobberMemory();
  }
  set_rate(st, "FLOPS", 2.0 * 9.0 * static_cast<double>(oh * ow * ch));
  st.counters["bytes"] = benchmark::Counter(
      4.0 * static_cast<double>(h * w * ch + oh * ow * ch) * static_cast<double>(st.iterations()),
      benchmark::Counter::kIsRate);
}

// A KxK conv the way ConvStep's window path runs it: the GEMM reads each output pixel's
// window in place from the zero-padded NHWC image through per-k offsets (koff), one output
// row per call, bias + ReLU fused. The stems of the real models: few input channels.
void bm_conv_window(benchmark::State& st, Isa isa, int64_t h, int64_t c, int64_t n, int64_t kk,
                    int64_t stride, int64_t pad) {
  const KernelTable& t = k::kernel_table(isa);
  const int64_t hp = h + 2 * pad, o = (hp - kk) / stride + 1, kdim = kk * kk * c;
  Buf x(static_cast<size_t>(hp * hp * c), 1), b(static_cast<size_t>(kdim * n), 2);
  Buf bp(static_cast<size_t>(k::packed_b_floats(kdim, n)), 3);
  Buf bias(static_cast<size_t>(k::panels_of(n) * k::kPanel), 4);
  Buf y(static_cast<size_t>(o * o * n), 5);
  k::pack_b_f32(kdim, n, b.p, n, 1, bp.p);
  std::vector<int64_t> koff;
  for (int64_t ky = 0; ky < kk; ++ky)
    for (int64_t kx = 0; kx < kk; ++kx)
      for (int64_t ci = 0; ci < c; ++ci) koff.push_back((ky * hp + kx) * c + ci);
  k::GemmArgs g;
  g.m = o;
  g.n = n;
  g.k = kdim;
  g.lda = stride * c;
  g.koff = koff.data();
  g.bp = bp.p;
  g.ldc = n;
  g.ep.bias = bias.p;
  g.ep.act.act = lithe::ops::fused::Activation::kRelu;
  const int64_t panels = k::panels_of(n);
  for (auto _ : st) {
    for (int64_t oy = 0; oy < o; ++oy) {
      g.a = x.p + oy * stride * hp * c;
      g.c = y.p + oy * o * n;
      t.f32_gemm_direct(g, 0, o, 0, panels);
    }
    benchmark::DoNotOptimize(y.p);
    benchmark::ClobberMemory();
  }
  set_rate(st, "FLOPS", 2.0 * static_cast<double>(o * o * n * kdim));
}

// Random bytes, 64-byte aligned.
struct Bytes {
  uint8_t* p = nullptr;
  explicit Bytes(size_t count, uint32_t seed = 1) {
    const size_t bytes = (count + 63) / 64 * 64 + 64;
    p = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
    std::mt19937 rng(seed);
    for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(rng());
  }
  ~Bytes() { std::free(p); }
  Bytes(const Bytes&) = delete;
  Bytes& operator=(const Bytes&) = delete;
};

// Multipliers that spread typical accumulators of `taps` products over the uint8 range.
std::vector<lithe::quant::Multiplier> q8_mults(int64_t n, int64_t taps) {
  std::vector<lithe::quant::Multiplier> m(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    m[i] = lithe::quant::make_multiplier((1.0 + 0.01 * static_cast<double>(i % 7)) /
                                         (64.0 * std::sqrt(static_cast<double>(taps)) * 74.0));
  return m;
}

void bm_q8_gemm(benchmark::State& st, Isa isa, int64_t m, int64_t kk, int64_t n) {
  const KernelTable& t = k::kernel_table(isa);
  const int64_t lda = (kk + 3) / 4 * 4, panels = k::panels_of(n);
  Bytes a(static_cast<size_t>(m * lda), 1), b(static_cast<size_t>(kk * n), 2);
  Bytes bp(static_cast<size_t>(k::packed_b_q8_bytes(kk, n)), 3);
  Bytes c(static_cast<size_t>(m * n), 5);
  k::pack_b_q8(kk, n, reinterpret_cast<const int8_t*>(b.p), n, 1, reinterpret_cast<int8_t*>(bp.p));
  std::vector<int32_t> bias(static_cast<size_t>(panels * k::kPanel), -1000);
  const auto mult = q8_mults(panels * k::kPanel, kk);
  k::Q8GemmArgs g;
  g.m = m;
  g.n = n;
  g.k = kk;
  g.a = a.p;
  g.lda = lda;
  g.bp = reinterpret_cast<const int8_t*>(bp.p);
  g.bias = bias.data();
  g.mult = mult.data();
  g.zy = 0;  // fused ReLU: [zy, 255]
  g.acc24 = k::q8_acc_fits_float(bias[0], 2 * kk);  // B's bytes are all 2, as a real conv's step sets it
  g.c = c.p;
  g.ldc = n;
  for (auto _ : st) {
    t.q8_gemm(g, 0, m, 0, panels);
    benchmark::DoNotOptimize(c.p);
    benchmark::ClobberMemory();
  }
  set_rate(st, "OPS",
           2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(kk));
}

void bm_q8_dwconv(benchmark::State& st, Isa isa, int64_t h, int64_t w, int64_t ch, int64_t stride,
                  bool cached) {
  const KernelTable& t = k::kernel_table(isa);
  const int64_t oh = (h + 2 - 3) / stride + 1, ow = (w + 2 - 3) / stride + 1;
  Bytes x(static_cast<size_t>(h * w * ch), 1), wt(static_cast<size_t>(9 * ch), 2),
      y(static_cast<size_t>(oh * ow * ch), 4);
  std::vector<int32_t> bias(static_cast<size_t>(ch), 500);
  const auto mult = q8_mults(ch, 9);
  k::Q8DwConvArgs d;
  d.x = x.p;
  d.ih = h;
  d.iw = w;
  d.x_stride = ch;
  d.w = reinterpret_cast<const int8_t*>(wt.p);
  d.bias = bias.data();
  d.mult = mult.data();
  d.zx = 128;
  d.zy = 0;
  d.acc24 = k::q8_acc_fits_float(bias[0], 2 * 9);  // weights all 2
  d.y = y.p;
  d.oh = oh;
  d.ow = ow;
  d.y_stride = ch;
  d.c = ch;
  d.kh = d.kw = 3;
  d.sh = d.sw = stride;
  d.ph = d.pw = 1;
  std::vector<int32_t> rows;
  if (cached) {  // the row scratch the runtime step gives (all rows in one call)
    rows.resize(static_cast<size_t>(k::q8_dw_rows_bytes(d) / 4));
    d.rows = rows.data();
  }
  for (auto _ : st) {
    t.q8_dwconv(d, 0, oh);
    benchmark::DoNotOptimize(y.p);
    benchmark::ClobberMemory();
  }
  set_rate(st, "OPS", 2.0 * 9.0 * static_cast<double>(oh * ow * ch));
  st.counters["bytes"] = benchmark::Counter(
      static_cast<double>(h * w * ch + oh * ow * ch) * static_cast<double>(st.iterations()),
      benchmark::Counter::kIsRate);
}

struct GemmShape {
  const char* label;
  int64_t m, k, n;
};
// ResNet-50 at 224x224 (M = output pixels).
const GemmShape kGemmShapes[] = {
    {"resnet50_1x1_56_expand", 3136, 64, 256},      // conv2_x 64 -> 256
    {"resnet50_1x1_56_reduce", 3136, 256, 64},      // conv2_x 256 -> 64
    {"resnet50_1x1_28_expand", 784, 128, 512},      // conv3_x 128 -> 512
    {"resnet50_1x1_28_reduce", 784, 512, 128},      // conv3_x 512 -> 128
    {"resnet50_1x1_14_expand", 196, 256, 1024},     // conv4_x 256 -> 1024
    {"resnet50_1x1_14_reduce", 196, 1024, 256},     // conv4_x 1024 -> 256
    {"resnet50_1x1_7_expand", 49, 512, 2048},       // conv5_x 512 -> 2048
    {"resnet50_1x1_7_reduce", 49, 2048, 512},       // conv5_x 2048 -> 512
    {"resnet50_3x3_56_im2col", 3136, 576, 64},      // 3x3 64 ch
    {"resnet50_3x3_28_im2col", 784, 1152, 128},     // 3x3 128 ch
    {"resnet50_3x3_14_im2col", 196, 2304, 256},     // 3x3 256 ch
    {"resnet50_3x3_7_im2col", 49, 4608, 512},       // 3x3 512 ch
    {"mobilenetv2_pw_112_project", 12544, 32, 16},  // block 1 projection
    {"mobilenetv2_pw_112_expand", 12544, 16, 96},   // block 2 expansion
    {"mobilenetv2_pw_56_expand", 3136, 24, 144},   {"mobilenetv2_pw_56_project", 3136, 144, 24},
    {"mobilenetv2_pw_28_expand", 784, 32, 192},    {"mobilenetv2_pw_14_expand", 196, 64, 384},
    {"mobilenetv2_pw_14_project", 196, 384, 64},   {"mobilenetv2_pw_14_576_project", 196, 576, 96},
    {"mobilenetv2_pw_7_project", 49, 960, 160},    {"mobilenetv2_pw_7_last", 49, 320, 1280},
};

struct DwShape {
  const char* label;
  int64_t h, w, c, stride;
};
const DwShape kDwShapes[] = {
    {"mobilenetv2_dw_112x112x32_s1", 112, 112, 32, 1},
    {"mobilenetv2_dw_112x112x96_s2", 112, 112, 96, 2},
    {"mobilenetv2_dw_56x56x144_s1", 56, 56, 144, 1},
    {"mobilenetv2_dw_56x56x144_s2", 56, 56, 144, 2},
    {"mobilenetv2_dw_28x28x192_s1", 28, 28, 192, 1},
    {"mobilenetv2_dw_14x14x384_s1", 14, 14, 384, 1},
    {"mobilenetv2_dw_14x14x576_s1", 14, 14, 576, 1},
    {"mobilenetv2_dw_14x14x576_s2", 14, 14, 576, 2},
    {"mobilenetv2_dw_7x7x960_s1", 7, 7, 960, 1},
};

struct WindowShape {
  const char* label;
  int64_t h, c, n, k, stride, pad;
};
const WindowShape kWindowShapes[] = {
    {"resnet50_stem_7x7s2_3to64", 224, 3, 64, 7, 2, 3},  // also GoogLeNet's
    {"squeezenet_stem_7x7s2_3to96", 224, 3, 96, 7, 2, 0},
    {"mobilenetv2_stem_3x3s2_3to32", 224, 3, 32, 3, 2, 1},
};

void register_all() {
  for (Isa isa : k::kAllIsas) {
    if (!k::isa_supported(isa)) continue;
    const std::string name = k::isa_name(isa);
    for (const auto& s : kGemmShapes) {
      const std::string n = "q8_gemm/" + name + "/" + s.label + "/M:" + std::to_string(s.m) +
                            "/K:" + std::to_string(s.k) + "/N:" + std::to_string(s.n);
      benchmark::RegisterBenchmark(n.c_str(), bm_q8_gemm, isa, s.m, s.k, s.n)
          ->Unit(benchmark::kMicrosecond);
    }
    for (const auto& s : kDwShapes)
      for (bool cached : {false, true}) {
        const std::string n = std::string(cached ? "q8_dwconv_rows/" : "q8_dwconv/") + name + "/" + s.label;
        benchmark::RegisterBenchmark(n.c_str(), bm_q8_dwconv, isa, s.h, s.w, s.c, s.stride, cached)
            ->Unit(benchmark::kMicrosecond);
      }
    if (isa == Isa::kAvxVnni || isa == Isa::kAvx512Vnni) continue;  // fp32 as avx2 / avx512
    benchmark::RegisterBenchmark(("peak/" + name).c_str(), bm_peak, isa)
        ->Unit(benchmark::kMicrosecond);
    for (const auto& s : kGemmShapes) {
      const std::string n = "f32_gemm/" + name + "/" + s.label + "/M:" + std::to_string(s.m) +
                            "/K:" + std::to_string(s.k) + "/N:" + std::to_string(s.n);
      benchmark::RegisterBenchmark(n.c_str(), bm_gemm, isa, s.m, s.k, s.n, true)
          ->Unit(benchmark::kMicrosecond);
    }
    for (const auto& s : kWindowShapes) {
      const std::string n = "f32_conv_window/" + name + "/" + s.label;
      benchmark::RegisterBenchmark(n.c_str(), bm_conv_window, isa, s.h, s.c, s.n, s.k, s.stride,
                                   s.pad)
          ->Unit(benchmark::kMicrosecond);
    }
    for (const auto& s : kDwShapes) {
      const std::string n = "f32_dwconv/" + name + "/" + s.label;
      benchmark::RegisterBenchmark(n.c_str(), bm_dwconv, isa, s.h, s.w, s.c, s.stride)
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  const auto& f = k::cpu_features();
  benchmark::AddCustomContext("cpu_brand", f.brand);
  benchmark::AddCustomContext("lithe_best_isa", k::isa_name(k::best_isa()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
