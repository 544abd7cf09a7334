#include "evaluate.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "core/npy.hpp"
#include "lithe/error.hpp"

namespace lithe::cli {

// ---- preprocessing flags

void add_preprocess_flags(CLI::App* cmd, PreprocessFlags* f) {
  cmd->add_option("--resize", f->resize, "Resize every image to WxH (bilinear)");
  cmd->add_option("--resize-short", f->resize_short,
                  "Resize the short side to N, keeping the aspect ratio");
  cmd->add_option("--crop", f->crop, "Center crop WxH (after the resize)");
  cmd->add_option("--scale", f->scale, "Multiply pixel values (0..255) by this, e.g. 1/255");
  cmd->add_option("--mean", f->mean, "Subtract per channel, e.g. 0.485,0.456,0.406 (after --scale)");
  cmd->add_option("--std", f->std, "Divide per channel, e.g. 0.229,0.224,0.225");
  cmd->add_option("--layout", f->layout, "Input layout: nchw or nhwc (default: from its shape)");
  cmd->add_option("--channel-order", f->channel_order, "rgb (default) or bgr");
}

Preprocess parse_preprocess(const PreprocessFlags& a, bool* layout_given) {
  Preprocess pre;
  if (!a.resize.empty() && a.resize_short > 0)
    fail("--resize and --resize-short exclude each other");
  if (a.resize_short < 0 || a.resize_short > 65536)
    fail("--resize-short must be between 1 and 65536, got ", a.resize_short);
  if (!a.resize.empty()) {
    auto [w, h] = parse_size(a.resize, "--resize");
    pre.resize_w = w;
    pre.resize_h = h;
  }
  pre.resize_short = a.resize_short;
  if (!a.crop.empty()) {
    auto [w, h] = parse_size(a.crop, "--crop");
    pre.crop_w = w;
    pre.crop_h = h;
  }
  if (!a.mean.empty()) pre.mean = parse_number_list(a.mean, "--mean");
  if (!a.std.empty()) pre.std = parse_number_list(a.std, "--std");
  for (double s : pre.std)
    if (s == 0) fail("--std '", a.std, "': a standard deviation of 0");
  if (!a.scale.empty()) pre.scale = parse_number(a.scale, "--scale");
  *layout_given = false;
  if (!a.layout.empty()) {
    if (a.layout != "nchw" && a.layout != "nhwc")
      fail("--layout '", a.layout, "': expected nchw or nhwc");
    pre.layout = a.layout;
    *layout_given = true;
  }
  if (a.channel_order != "rgb" && a.channel_order != "bgr")
    fail("--channel-order '", a.channel_order, "': expected rgb or bgr");
  pre.bgr = a.channel_order == "bgr";
  return pre;
}

std::string describe_preprocess(const Preprocess& p) {
  std::ostringstream o;
  o.precision(17);
  o << "resize " << p.resize_w << "x" << p.resize_h << " short " << p.resize_short << " crop "
    << p.crop_w << "x" << p.crop_h << " scale " << p.scale << " mean";
  for (double m : p.mean) o << " " << m;
  o << " std";
  for (double s : p.std) o << " " << s;
  o << " " << (p.bgr ? "bgr" : "rgb") << " " << p.layout;
  return o.str();
}
namespace fs = std::filesystem;

namespace {

bool is_sample_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".npy";
}

bool is_npy(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Non-empty, non-comment lines of a text file, with their line numbers.
std::vector<std::pair<int, std::string>> read_lines(const std::string& path, const char* flag) {
  std::ifstream f(path);
  if (!f) fail(path, ": cannot open ", flag, " file");
  std::vector<std::pair<int, std::string>> out;
  std::string line;
  int n = 0;
  while (std::getline(f, line)) {
    ++n;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    out.emplace_back(n, line);
  }
  return out;
}

bool parse_index(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::stoll(s);
  return true;
}

}  // namespace

Dataset load_dataset(const std::vector<std::string>& data, const std::string& labels_file,
                     const std::string& class_names_file) {
  if (data.empty()) fail("--data: give a folder or files");
  Dataset ds;
  std::error_code dir_ec;
  const bool one_dir = data.size() == 1 && fs::is_directory(data[0], dir_ec);
  for (const std::string& d : data) {
    std::error_code ec;
    if (fs::is_directory(d, ec)) {
      for (auto it = fs::recursive_directory_iterator(d, ec); !ec && it != fs::end(it);
           it.increment(ec))
        if (it->is_regular_file() && is_sample_file(it->path()))
          ds.samples.push_back(
              {it->path().string(), it->path().lexically_relative(d).string(), -1});
      if (ec) fail(d, ": cannot read folder (", ec.message(), ")");
    } else if (fs::is_regular_file(d, ec)) {
      if (!is_sample_file(d)) fail(d, ": not a .jpg, .jpeg, .png or .npy file");
      ds.samples.push_back({d, fs::path(d).filename().string(), -1});
    } else {
      fail(d, ": no such file or folder");
    }
  }
  if (ds.samples.empty()) fail(data[0], ": no .jpg, .jpeg, .png or .npy files found");
  std::sort(ds.samples.begin(), ds.samples.end(),
            [](const Sample& a, const Sample& b) { return a.key < b.key; });
  for (size_t i = 1; i < ds.samples.size(); ++i)
    if (ds.samples[i].key == ds.samples[i - 1].key)
      fail(ds.samples[i].path, ": two samples are both called '", ds.samples[i].key, "'");

  std::map<std::string, int64_t> class_index;
  if (!class_names_file.empty()) {
    for (const auto& [line, name] : read_lines(class_names_file, "--class-names")) {
      if (class_index.count(name))
        fail(class_names_file, ":", line, ": class '", name, "' is listed twice");
      class_index[name] = static_cast<int64_t>(ds.classes.size());
      ds.classes.push_back(name);
    }
    if (ds.classes.empty()) fail(class_names_file, ": no class names");
  }

  if (!labels_file.empty()) {
    ds.label_source = "labels file";
    std::map<std::string, int64_t> label_of;
    for (const auto& [line, text] : read_lines(labels_file, "--labels")) {
      const size_t blank = text.find_last_of(" \t");
      if (blank == std::string::npos)
        fail(labels_file, ":", line, ": expected 'PATH LABEL', got '", text, "'");
      const std::string key = trim(text.substr(0, blank)), label = text.substr(blank + 1);
      int64_t idx = -1;
      if (!parse_index(label, &idx)) {
        auto it = class_index.find(label);
        if (it == class_index.end())
          fail(labels_file, ":", line, ": label '", label, "' is not a class index",
               class_names_file.empty() ? " (class names need --class-names)"
                                        : " nor a name in " + class_names_file);
        idx = it->second;
      }
      if (!label_of.emplace(key, idx).second)
        fail(labels_file, ":", line, ": '", key, "' is labelled twice");
    }
    for (Sample& s : ds.samples) {
      auto it = label_of.find(s.key);
      if (it == label_of.end()) fail(labels_file, ": no label for '", s.key, "'");
      s.label = it->second;
    }
    return ds;
  }

  const bool in_subfolders =
      one_dir && std::all_of(ds.samples.begin(), ds.samples.end(),
                             [](const Sample& s) { return fs::path(s.key).has_parent_path(); });
  if (!in_subfolders) {
    if (!class_names_file.empty())
      fail("--class-names: labels come from folder names (DIR/<class>/file) or --labels, but ",
           one_dir ? data[0] + " has files outside class folders" : "no single folder was given");
    ds.label_source = "none";
    return ds;
  }
  ds.label_source = "folder names";
  if (class_names_file.empty()) {
    std::set<std::string> names;
    for (const Sample& s : ds.samples) names.insert(fs::path(s.key).begin()->string());
    for (const std::string& n : names) {
      class_index[n] = static_cast<int64_t>(ds.classes.size());
      ds.classes.push_back(n);
    }
  }
  for (Sample& s : ds.samples) {
    const std::string cls = fs::path(s.key).begin()->string();
    auto it = class_index.find(cls);
    if (it == class_index.end())
      fail(s.path, ": folder '", cls, "' is not a class in ", class_names_file);
    s.label = it->second;
  }
  return ds;
}

Tensor load_sample(const Sample& s, const TensorInfo& input, const Preprocess& pre) {
  if (is_npy(s.path)) {
    Tensor t = read_npy(s.path);
    if (t.dtype() != input.dtype)
      fail(s.path, ": input '", input.name, "' expects ", dtype_name(input.dtype),
           ", the file holds ", dtype_name(t.dtype()));
    if (t.shape() == input.shape) return t;
    Shape batched = t.shape();
    batched.insert(batched.begin(), 1);
    if (batched == input.shape) return t.reshaped(batched);
    fail(s.path, ": shape [", shape_str(t.shape()), "] does not fit input '", input.name, "' [",
         shape_str(input.shape), "]");
  }
  if (input.dtype != DType::kFloat32)
    fail(s.path, ": images feed float32 inputs, input '", input.name, "' is ",
         dtype_name(input.dtype));
  const bool nhwc = pre.layout == "nhwc";
  const int64_t c = input.shape.size() == 4 ? input.shape[nhwc ? 3 : 1] : 0;
  if (c != 1 && c != 3)
    fail(s.path, ": input '", input.name, "' [", shape_str(input.shape), "] in ", pre.layout,
         " layout has ", c, " channels; images give 1 or 3 (see --layout)");
  return preprocess(load_image(s.path, static_cast<int>(c)), pre, input.shape, s.path);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

namespace {

// The layout of an image input when --layout is not given: channels (1 or 3) at dim 1, else 3.
std::string auto_layout(const TensorInfo& in) {
  if (in.shape.size() == 4 && (in.shape[1] == 1 || in.shape[1] == 3)) return "nchw";
  if (in.shape.size() == 4 && (in.shape[3] == 1 || in.shape[3] == 3)) return "nhwc";
  return "nchw";
}

size_t output_index(const Engine& e, const std::string& name, const char* what) {
  const auto& outs = e.outputs();
  if (name.empty()) return 0;
  for (size_t i = 0; i < outs.size(); ++i)
    if (outs[i].name == name) return i;
  std::string names;
  for (const auto& o : outs) names += (names.empty() ? "" : ", ") + o.name;
  fail("--output '", name, "' is not an output of the ", what, " (outputs: ", names, ")");
}

int64_t argmax(const Tensor& t) { return t.numel() ? top_k(t, 1)[0] : -1; }

}  // namespace

EvalResult run_eval(const Engine& model, const Engine* reference, const Dataset& data,
                    const EvalOptions& opts) {
  if (model.inputs().size() != 1)
    fail("eval feeds one input; the model has ", model.inputs().size());
  const TensorInfo& in = model.inputs()[0];
  for (int64_t d : in.shape)
    if (d < 0)
      fail("input '", in.name, "' has a dim known only at run time [", shape_str(in.shape),
           "]: give --input-shape ", in.name, "=...");
  EvalResult r;
  r.input = in.name;
  Preprocess pre = opts.pre;
  if (!opts.layout_given) pre.layout = auto_layout(in);
  r.layout = pre.layout;
  const size_t out_i = output_index(model, opts.output, "model");
  r.output = model.outputs()[out_i].name;
  ContextOptions copts;
  copts.threads = opts.threads;
  auto ctx = model.create_context(copts);
  std::unique_ptr<Context> ref_ctx;
  std::vector<size_t> ref_out;  // per model output: the reference output it is compared with
  if (reference) {
    if (reference->inputs().size() != 1 || reference->inputs()[0].shape != in.shape ||
        reference->inputs()[0].dtype != in.dtype)
      fail("--reference: its input must be one ", dtype_name(in.dtype), "[", shape_str(in.shape),
           "] like the model's");
    r.has_reference = true;
    ref_ctx = reference->create_context(copts);
    const auto& mo = model.outputs();
    const auto& ro = reference->outputs();
    for (size_t i = 0; i < mo.size(); ++i) {
      size_t j = ro.size();
      for (size_t k = 0; k < ro.size(); ++k)
        if (ro[k].name == mo[i].name) j = k;
      if (j == ro.size() && ro.size() == mo.size()) j = i;  // renamed: match by position
      if (j == ro.size()) fail("--reference: it has no output '", mo[i].name, "' to compare with");
      ref_out.push_back(j);
      r.outputs.push_back({mo[i].name, {}});
    }
  }
  const size_t n = data.samples.size();
  for (size_t s = 0; s < n; ++s) {
    const Sample& sample = data.samples[s];
    Tensor x = load_sample(sample, in, pre);
    ctx->set_input(in.name, x);
    if (s == 0) ctx->run();  // warm-up: first-run page faults are not per-image latency
    const auto t0 = std::chrono::steady_clock::now();
    ctx->run();
    r.latency_ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    const Tensor& scores = ctx->output(out_i);
    if (s == 0) r.top_k = static_cast<int>(std::min<int64_t>(opts.top_k, scores.numel()));
    ++r.count;
    if (sample.label >= 0) {
      if (sample.label >= scores.numel())
        fail(sample.path, ": label ", sample.label, " is out of range for output '", r.output,
             "' (", scores.numel(), " classes)");
      ++r.labelled;
      const std::vector<int64_t> top = top_k(scores, r.top_k);
      r.top1 += !top.empty() && top[0] == sample.label;
      r.topk += std::find(top.begin(), top.end(), sample.label) != top.end();
    }
    if (ref_ctx) {
      ref_ctx->set_input(in.name, x);
      ref_ctx->run();
      r.agree_top1 += argmax(scores) == argmax(ref_ctx->output(ref_out[out_i]));
      for (size_t i = 0; i < r.outputs.size(); ++i) {
        const Tensor& got = ctx->output(i);
        const Tensor& want = ref_ctx->output(ref_out[i]);
        if (got.numel() != want.numel())
          fail("--reference: output '", r.outputs[i].name, "' has ", got.numel(),
               " elements, the reference's ", want.numel());
        r.outputs[i].stats.add(agreement(want, got));
      }
    }
    if (opts.progress) opts.progress(s + 1, n);
  }
  return r;
}

CompareResult compare_models(const Engine& a, const Engine& b,
                             const std::map<std::string, Tensor>& inputs,
                             const CompareOptions& opts) {
  ContextOptions copts;
  copts.threads = opts.threads;
  auto bind = [&](const Engine& e, Context& c, const char* which) {
    for (const TensorInfo& in : e.inputs()) {
      auto it = inputs.find(in.name);
      if (it == inputs.end()) fail(which, ": input '", in.name, "' was not given");
      c.set_input(in.name, it->second);
    }
  };
  // A's values, kept (clones) in execution order.
  std::vector<std::pair<std::string, Tensor>> a_vals;
  std::map<std::string, size_t> a_index;
  {
    auto ctx = a.create_context(copts);
    bind(a, *ctx, "A");
    ctx->set_observer([&](const std::string& name, const Tensor& t) {
      if (a_index.emplace(name, a_vals.size()).second) a_vals.emplace_back(name, t.clone());
    });
    ctx->run();
  }
  // B's values are compared as they come: only one of them is held at a time.
  std::vector<char> seen(a_vals.size(), 0);
  std::vector<CompareRow> by_a(a_vals.size());
  CompareResult r;
  std::set<std::string> b_names;
  {
    auto ctx = b.create_context(copts);
    bind(b, *ctx, "B");
    ctx->set_observer([&](const std::string& name, const Tensor& t) {
      if (!b_names.insert(name).second) return;
      auto it = a_index.find(name);
      if (it == a_index.end()) {
        r.only_b_names.push_back(name);
        return;
      }
      const Tensor& want = a_vals[it->second].second;
      CompareRow& row = by_a[it->second];
      seen[it->second] = 1;
      row.name = name;
      row.shape = want.shape();
      if (t.shape() != want.shape())
        row.skipped =
            "shape [" + shape_str(t.shape()) + "] in B, [" + shape_str(want.shape()) + "] in A";
      else if (!t.numel())
        row.skipped = "empty";
      else if (t.dtype() == DType::kString || want.dtype() == DType::kString)
        row.skipped = "strings";
      else
        row.agreement = agreement(want, t);
    });
    ctx->run();
  }
  for (size_t i = 0; i < a_vals.size(); ++i) {
    if (!seen[i]) {
      r.only_a_names.push_back(a_vals[i].first);
      continue;
    }
    r.rows.push_back(std::move(by_a[i]));
  }
  r.only_a = static_cast<int64_t>(r.only_a_names.size());
  r.only_b = static_cast<int64_t>(r.only_b_names.size());
  // The first jump (CompareOptions).
  double prev = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < r.rows.size(); ++i) {
    CompareRow& row = r.rows[i];
    if (!row.skipped.empty()) continue;
    const double snr = row.agreement.snr_db;
    const bool broken = std::isnan(snr) || snr < opts.floor_db ||
                        (snr < opts.noise_db && prev - snr > opts.jump_db);
    if (broken) {
      row.jump = true;
      r.first_jump = static_cast<int>(i);
      break;
    }
    prev = snr;
  }
  return r;
}

std::vector<Tensor> load_calibration(const std::vector<std::string>& data, const Preprocess& pre,
                                     bool layout_given, const TensorInfo& in, int max_samples) {
  const Dataset set = load_dataset(data, "", "");
  if (set.samples.empty()) fail("--calib: no .jpg/.jpeg/.png/.npy files found");
  Preprocess p = pre;
  if (!layout_given) p.layout = auto_layout(in);
  const size_t total = set.samples.size();
  const size_t n = std::min(total, static_cast<size_t>(std::max(1, max_samples)));
  std::vector<Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(load_sample(set.samples[i * total / n], in, p));
  return out;
}

}  // namespace lithe::cli
