// Context::run allocates nothing on the fast path: this executable replaces every global
// operator new / new[] (plain, nothrow, aligned, aligned nothrow), counts the calls made
// during Context::run after two warm-up runs, and records a backtrace of each to say whether
// it came from a fast step (Session::run_fast, the thread pool's workers) or a reference
// kernel (Session::run_reference) and which function asked.
//
//   lithe_no_alloc_test [MODELS_CACHE [ENGINE.lithe ...]]
//
// Models: examples/tiny_cnn.onnx (in the repo) and each of mobilenet_v2, resnet50,
// squeezenet1_0, googlenet, blazeface, ppocr_cls/rec/det present in MODELS_CACHE/models (default
// $LITHE_MODELS_CACHE, else models-cache/), at 1 and 2 threads. A model whose every node runs
// on a fast step (or is skipped) must allocate nothing; for the others the count and the
// reference nodes are printed, and allocations from fast steps still fail the test.
// Exit 0 when all pass, 1 otherwise.
#include <cxxabi.h>
#include <dlfcn.h>
#include <execinfo.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <new>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../real_models.hpp"
#include "lithe/lithe.hpp"

// ---- counting allocator --------------------------------------------------------------------

// The replacements below pair malloc/posix_memalign with free, which GCC cannot see through.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

constexpr int kMaxFrames = 48;
constexpr int kMaxRecords = 256;

struct Record {
  void* frames[kMaxFrames];
  int n = 0;
  bool worker = false;  // not the thread that called run()
  size_t bytes = 0;
};

std::atomic<bool> g_counting{false};
std::atomic<long> g_count{0};
std::atomic<int> g_records{0};
Record g_rec[kMaxRecords];
std::thread::id g_main_thread;
thread_local bool tl_in_hook = false;

void note_allocation(size_t bytes) {
  if (!g_counting.load(std::memory_order_relaxed) || tl_in_hook) return;
  tl_in_hook = true;
  g_count.fetch_add(1);
  const int i = g_records.fetch_add(1);
  if (i < kMaxRecords) {
    Record& r = g_rec[i];
    r.n = backtrace(r.frames, kMaxFrames);
    r.worker = std::this_thread::get_id() != g_main_thread;
    r.bytes = bytes;
  }
  tl_in_hook = false;
}

void* alloc_plain(size_t n) {
  note_allocation(n);
  void* p = std::malloc(n ? n : 1);
  return p;
}

void* alloc_aligned(size_t n, std::align_val_t al) {
  note_allocation(n);
  size_t a = static_cast<size_t>(al);
  if (a < sizeof(void*)) a = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, a, n ? n : 1) != 0) return nullptr;
  return p;
}

}  // namespace

void* operator new(size_t n) {
  if (void* p = alloc_plain(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  if (void* p = alloc_plain(n)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, const std::nothrow_t&) noexcept { return alloc_plain(n); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return alloc_plain(n); }
void* operator new(size_t n, std::align_val_t a) {
  if (void* p = alloc_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n, std::align_val_t a) {
  if (void* p = alloc_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return alloc_aligned(n, a);
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return alloc_aligned(n, a);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

// ---- symbolization ---------------------------------------------------------------------

namespace {

// Function name of a code address: addr2line on its module (local symbols of anonymous
// namespaces included), else dladdr's nearest exported symbol.
std::string symbol_of(void* addr) {
  Dl_info info{};
  if (!dladdr(addr, &info) || !info.dli_fname) return "?";
  const uintptr_t off =
      reinterpret_cast<uintptr_t>(addr) - reinterpret_cast<uintptr_t>(info.dli_fbase) - 1;
  char cmd[1024];
  std::snprintf(cmd, sizeof cmd, "addr2line -f -C -e '%s' 0x%lx 2>/dev/null", info.dli_fname,
                static_cast<unsigned long>(off));
  std::string name;
  if (FILE* f = popen(cmd, "r")) {
    char line[4096];
    if (std::fgets(line, sizeof line, f)) name = line;
    pclose(f);
  }
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  if (!name.empty() && name != "??") return name;
  if (info.dli_sname) {
    int st = 0;
    char* d = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &st);
    std::string s = st == 0 && d ? d : info.dli_sname;
    std::free(d);
    return s + " (nearest exported)";
  }
  return "?";
}

struct Attribution {
  long fast = 0, reference = 0, other = 0;
  std::map<std::string, long> by_function;  // the reference kernel (or caller) that allocated
};

Attribution attribute(int records) {
  Attribution a;
  std::map<void*, std::string> cache;
  auto sym = [&](void* p) -> const std::string& {
    auto it = cache.find(p);
    if (it == cache.end()) it = cache.emplace(p, symbol_of(p)).first;
    return it->second;
  };
  for (int i = 0; i < std::min(records, kMaxRecords); ++i) {
    const Record& r = g_rec[i];
    int ref_at = -1, fast_at = -1;
    for (int f = 0; f < r.n; ++f) {
      const std::string& s = sym(r.frames[f]);
      if (ref_at < 0 && s.find("Session::run_reference") != std::string::npos) ref_at = f;
      if (fast_at < 0 &&
          (s.find("Session::run_fast") != std::string::npos ||
           s.find("FastStep") != std::string::npos || s.find("ThreadPool") != std::string::npos))
        fast_at = f;
    }
    std::string who;
    if (ref_at >= 0 && (fast_at < 0 || ref_at < fast_at)) {
      ++a.reference;
      who = ref_at > 0 ? sym(r.frames[ref_at - 1]) : "?";  // the frame run_reference called
    } else if (fast_at >= 0 || r.worker) {
      ++a.fast;
      // The innermost lithe frame.
      for (int f = 1; f < r.n && who.empty(); ++f)
        if (sym(r.frames[f]).find("lithe::") != std::string::npos) who = sym(r.frames[f]);
      who = "[fast] " + who;
    } else {
      ++a.other;
      for (int f = 1; f < r.n && who.empty(); ++f)
        if (sym(r.frames[f]).find("lithe::") != std::string::npos) who = sym(r.frames[f]);
      who = "[other] " + who;
    }
    ++a.by_function[who.substr(0, 200)];
  }
  return a;
}

struct ModelCase {
  std::string name;
  std::filesystem::path path;
  std::string input;
  lithe::Shape shape;
};

lithe::Tensor seeded_input(const lithe::TensorInfo& info, unsigned seed) {
  lithe::Tensor t(lithe::DType::kFloat32, info.shape);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = u(rng);
  return info.dtype == lithe::DType::kFloat32 ? t : t.cast(info.dtype);
}

// Returns false on a failure.
bool check_model(const ModelCase& mc, int threads) {
  lithe::LoadOptions lo;
  if (!mc.input.empty()) lo.input_shapes[mc.input] = mc.shape;
  auto e = lithe::Engine::load(mc.path.string(), lo);
  lithe::ContextOptions co;
  co.threads = threads;
  auto ctx = e->create_context(co);
  for (size_t i = 0; i < e->inputs().size(); ++i)
    ctx->set_input(e->inputs()[i].name, seeded_input(e->inputs()[i], 5 + static_cast<unsigned>(i)));
  ctx->set_profiling(true);  // preallocated per-node timers; lets profile() list the kernels
  ctx->run();
  ctx->run();
  g_records = 0;
  g_count = 0;
  g_counting = true;
  ctx->run();
  g_counting = false;
  const long count = g_count.load();
  const int records = g_records.load();

  std::set<std::string> ref_ops;
  int fast = 0, ref = 0;
  for (const auto& nt : ctx->profile()) {
    if (nt.kernel == "reference") {
      ++ref;
      ref_ops.insert(nt.op);
    } else {
      ++fast;
    }
  }
  std::printf(
      "[no-alloc] %-14s threads %d isa %-9s %3d fast steps, %3d reference nodes: %ld "
      "allocation(s) in run()\n",
      mc.name.c_str(), threads, e->isa().c_str(), fast, ref, count);
  if (e->isa() == "reference") {
    std::printf("[no-alloc]   FAIL: the model does not run on the fast executor\n");
    return false;
  }
  if (ref > 0) {
    std::string ops;
    for (const auto& o : ref_ops) ops += (ops.empty() ? "" : ", ") + o;
    std::printf("[no-alloc]   reference kernels: %s\n", ops.c_str());
  }
  if (count == 0) return true;
  const Attribution a = attribute(records);
  std::printf("[no-alloc]   by origin: %ld fast-step, %ld reference-kernel, %ld other%s\n", a.fast,
              a.reference, a.other, records > kMaxRecords ? " (first 256 recorded)" : "");
  for (const auto& [fn, n] : a.by_function) std::printf("[no-alloc]     %5ld  %s\n", n, fn.c_str());
  bool ok = true;
  if (ref == 0) {
    std::printf("[no-alloc]   FAIL: every node runs on a fast step, yet run() allocates\n");
    ok = false;
  }
  if (a.fast > 0 || a.other > 0) {
    std::printf("[no-alloc]   FAIL: allocations outside the reference kernels\n");
    ok = false;
  }
  std::fflush(stdout);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  g_main_thread = std::this_thread::get_id();
  {  // backtrace() loads libgcc's unwinder on its first call: do it before counting.
    void* f[4];
    backtrace(f, 4);
  }
  if (argc > 1) setenv("LITHE_MODELS_CACHE", argv[1], 1);
  std::vector<ModelCase> cases;
  cases.push_back(
      {"tiny_cnn", std::filesystem::path(LITHE_SOURCE_DIR) / "examples/tiny_cnn.onnx", "", {}});
  for (const lithe::test::RealModel& r : lithe::test::real_models()) {
    const auto p = lithe::test::real_model_path(r);
    if (!std::filesystem::exists(p)) {
      std::printf("[no-alloc] %-14s absent (%s), skipped\n", r.name, p.c_str());
      continue;
    }
    cases.push_back({r.name, p, r.input, r.shape});
  }
  // Further arguments: engine files built elsewhere (an INT8 build, say), checked alike.
  for (int i = 2; i < argc; ++i)
    cases.push_back({std::filesystem::path(argv[i]).filename().string(), argv[i], "", {}});
  int failed = 0, checked = 0;
  for (const ModelCase& mc : cases)
    for (int threads : {1, 2}) {
      try {
        if (!check_model(mc, threads)) ++failed;
      } catch (const std::exception& e) {
        g_counting = false;
        std::printf("[no-alloc] %-14s threads %d: FAIL: %s\n", mc.name.c_str(), threads, e.what());
        ++failed;
      }
      ++checked;
    }
  std::printf("[no-alloc] %d runs checked, %d failed\n", checked, failed);
  return failed ? 1 : 0;
}
