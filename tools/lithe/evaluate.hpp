// The cores of `lithe eval` (a labelled data set through a model, optionally against a
// reference model) and `lithe compare` (every intermediate tensor of two versions of one
// model), kept apart from the command-line parsing so tests can call them.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "image.hpp"
#include "lithe/lithe.hpp"
#include "metrics.hpp"

namespace CLI {
class App;
}

namespace lithe::cli {

// ---- data sets

struct Sample {
  std::string path;    ///< file to read
  std::string key;     ///< its path relative to the data folder (the file name for a file given)
  int64_t label = -1;  ///< class index, -1: unlabelled
};

struct Dataset {
  std::vector<Sample> samples;       ///< sorted by key
  std::vector<std::string> classes;  ///< class names by index (folder names or --class-names)
  std::string label_source;          ///< "labels file", "folder names" or "none"
};

/// Collects the .jpg/.jpeg/.png/.npy files of `data` (folders, searched recursively, and
/// files). Labels, in this order of precedence:
///  - `labels_file`: one "PATH LABEL" per line (PATH as `key` above, LABEL a class index or,
///    with `class_names_file`, a class name; the label is the text after the last blank;
///    empty lines and lines starting with '#' are ignored); every sample needs a line;
///  - folder names, when one folder is given and every file sits in a subfolder of it
///    (DIR/<class>/...): class index = the folder name's line in `class_names_file`, or its
///    place among the sorted subfolder names;
///  - none: accuracy is not computed.
/// Fails naming the file or line that is wrong.
Dataset load_dataset(const std::vector<std::string>& data, const std::string& labels_file,
                     const std::string& class_names_file);

// ---- preprocessing flags (eval, and build's calibration data)

/// The preprocessing flags as given on the command line.
struct PreprocessFlags {
  std::string resize, crop, mean, std, scale, layout, channel_order = "rgb";
  int resize_short = 0;
};

/// Adds --resize, --resize-short, --crop, --scale, --mean, --std, --layout and
/// --channel-order to `cmd`.
void add_preprocess_flags(CLI::App* cmd, PreprocessFlags* f);
/// The preprocessing the flags describe; fails naming a bad flag. `layout_given` says whether
/// --layout was set (else the layout comes from the input's shape).
Preprocess parse_preprocess(const PreprocessFlags& f, bool* layout_given);
/// One line naming the preprocessing (for calibration cache keys and reports).
std::string describe_preprocess(const Preprocess& p);

/// Calibration samples for `lithe build --precision int8 --calib`: up to `max_samples` files of
/// `data` (evenly spaced over the sorted set when it holds more), each preprocessed for the
/// model's single input `in` (or, .npy, taken as it is). One tensor per sample.
std::vector<Tensor> load_calibration(const std::vector<std::string>& data, const Preprocess& pre,
                                     bool layout_given, const TensorInfo& in, int max_samples);

// ---- eval

struct EvalOptions {
  Preprocess pre;
  bool layout_given = false;  ///< else nchw/nhwc is taken from the input shape
  std::string output;         ///< the scores output ("": the model's first output)
  int top_k = 5;
  int threads = 1;
  /// Called after each sample with (done, total), e.g. for a progress bar.
  std::function<void(size_t, size_t)> progress;
};

struct OutputAgreement {
  std::string name;
  AgreementStats stats;
};

struct EvalResult {
  std::string input, output;  ///< the input fed and the scores output read
  std::string layout;         ///< nchw / nhwc
  int64_t count = 0, labelled = 0;
  int64_t top1 = 0, topk = 0;      ///< hits among the labelled samples
  int top_k = 5;                   ///< k (at most the number of classes)
  std::vector<double> latency_ms;  ///< model run() time per sample
  // With a reference model:
  bool has_reference = false;
  int64_t agree_top1 = 0;
  std::vector<OutputAgreement> outputs;  ///< per model output, in model output order
};

/// The input tensor for one sample (an image preprocessed for `input`, or a .npy file taken
/// as it is; a .npy without the leading batch dim of 1 gets it).
Tensor load_sample(const Sample& s, const TensorInfo& input, const Preprocess& pre);

/// Runs every sample through `model` (and `reference`, if not null) with batch 1: one
/// untimed warm-up run on the first sample, then each sample timed.
EvalResult run_eval(const Engine& model, const Engine* reference, const Dataset& data,
                    const EvalOptions& opts);

double median(std::vector<double> v);

// ---- compare

struct CompareRow {
  std::string name;
  Shape shape;          ///< in the ONNX layout
  Agreement agreement;  ///< valid when skipped is empty
  std::string skipped;  ///< why the tensor was not compared ("" when it was)
  bool jump = false;    ///< the first tensor whose error jumps (see CompareOptions)
};

/// A tensor's error "jumps" when its SNR is below floor_db, or when it is below
/// noise_db and more than jump_db below the previous compared tensor's SNR (a tensor equal
/// in both has SNR +inf). noise_db (60 dB, a relative error of 1e-3) keeps FP32 rounding
/// differences between two correct runs from counting as jumps.
struct CompareOptions {
  double floor_db = 40;
  double jump_db = 20;
  double noise_db = 60;
  int threads = 1;
};

struct CompareResult {
  std::vector<CompareRow> rows;    ///< the tensors A and B both report, in A's execution order
  int64_t only_a = 0, only_b = 0;  ///< tensors reported by one side only
  std::vector<std::string> only_a_names, only_b_names;
  int first_jump = -1;  ///< index into rows, -1: none
};

/// Runs `a` and `b` on `inputs` (by input name) and compares every intermediate tensor both
/// report (Context::set_observer: the ONNX value names the build kept, in the ONNX layout).
CompareResult compare_models(const Engine& a, const Engine& b,
                             const std::map<std::string, Tensor>& inputs,
                             const CompareOptions& opts);

}  // namespace lithe::cli
