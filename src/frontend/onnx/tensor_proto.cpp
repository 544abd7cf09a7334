#include "frontend/onnx/tensor_proto.hpp"

#include <sys/stat.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/tensor_check.hpp"
#include "frontend/onnx/importer.hpp"

namespace lithe::onnx {
namespace fs = std::filesystem;
namespace {

// Copies `count` values from a repeated proto field into the tensor, converting.
template <class Field, class F>
void copy_field(const Field& field, int64_t numel, const std::string& what, const char* fname,
                F&& store) {
  if (static_cast<int64_t>(field.size()) != numel)
    fail(what, ": ", fname, " holds ", field.size(), " values, expected ", numel);
  for (int64_t i = 0; i < numel; ++i) store(i, field.Get(static_cast<int>(i)));
}

// The values an int32_data entry may hold for each element type stored there.
std::pair<int64_t, int64_t> int32_data_range(DType t) {
  switch (t) {
    case DType::kInt16: return {INT16_MIN, INT16_MAX};
    case DType::kInt8: return {INT8_MIN, INT8_MAX};
    case DType::kUInt16: return {0, UINT16_MAX};
    case DType::kUInt8: return {0, UINT8_MAX};
    case DType::kBool: return {0, 1};
    case DType::kFloat16:
    case DType::kBFloat16: return {INT16_MIN, UINT16_MAX};
    default: return {INT32_MIN, INT32_MAX};
  }
}

// Reads [offset, offset+length) of an external data file after checking that its path
// stays inside base_dir (no absolute path, no "..", no symlink escaping it).
std::string read_external(const ::onnx::TensorProto& p, const std::string& base_dir,
                          const std::string& what, size_t expected) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    auto parse_int = [&](const std::string& s, const char* key) -> int64_t {
      if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos)
        fail(what, ": external data ", key, " '", s, "' is not a non-negative integer");
      return std::stoll(s);
    };
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = parse_int(kv.value(), "offset");
    else if (kv.key() == "length") length = parse_int(kv.value(), "length");
  }
  if (location.empty()) fail(what, ": external data has no location");
  if (base_dir.empty()) fail(what, ": external data is not allowed here");
  fs::path loc(location);
  if (loc.is_absolute()) fail(what, ": external data location '", location, "' is absolute");
  for (const auto& part : loc)
    if (part == "..")
      fail(what, ": external data location '", location, "' escapes the model's folder");
  std::error_code ec;
  fs::path base = fs::weakly_canonical(fs::path(base_dir), ec);
  fs::path full = fs::weakly_canonical(fs::path(base_dir) / loc, ec);
  if (ec) fail(what, ": external data file '", location, "' cannot be resolved");
  auto rel = full.lexically_relative(base);
  if (rel.empty() || *rel.begin() == "..")
    fail(what, ": external data location '", location,
         "' resolves outside the model's folder (symlink?)");
  struct stat st {};
  if (stat(full.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    fail(what, ": external data file '", location, "' not found or not a regular file");
  uint64_t fsize = static_cast<uint64_t>(st.st_size);
  uint64_t len = length < 0 ? expected : static_cast<uint64_t>(length);
  if (static_cast<uint64_t>(offset) > fsize || len > fsize - static_cast<uint64_t>(offset))
    fail(what, ": external data range [", offset, ", +", len, ") is past the end of '", location,
         "' (", fsize, " bytes)");
  if (len != expected)
    fail(what, ": external data holds ", len, " bytes, expected ", expected);
  std::ifstream f(full, std::ios::binary);
  if (!f) fail(what, ": cannot open external data file '", location, "'");
  std::string buf(len, '\0');
  f.seekg(offset);
  f.read(buf.data(), static_cast<std::streamsize>(len));
  if (static_cast<uint64_t>(f.gcount()) != len) fail(what, ": short read from '", location, "'");
  return buf;
}

}  // namespace

Tensor tensor_from_proto(const ::onnx::TensorProto& p, const std::string& base_dir,
                         const std::string& what) {
  if (!p.has_data_type() || p.data_type() == 0) fail(what, ": tensor has no element type");
  if (p.data_type() == ::onnx::TensorProto::STRING)
    fail(what, ": string tensors are not supported");
  DType dtype = dtype_from_onnx(p.data_type(), what);
  if (p.has_segment()) fail(what, ": segmented tensors are not supported");
  Shape shape(p.dims().begin(), p.dims().end());
  int64_t numel = checked_numel(shape, what);
  // Every size is checked before the tensor is allocated: a small file cannot make lithe
  // allocate what its dims claim.
  const size_t nbytes = static_cast<size_t>(numel) * dtype_size(dtype);
  const bool external = p.data_location() == ::onnx::TensorProto::EXTERNAL;
  if (external || p.has_raw_data()) {
    std::string ext;
    const std::string* raw = &p.raw_data();
    if (external) {
      ext = read_external(p, base_dir, what, nbytes);
      raw = &ext;
    }
    if (raw->size() != nbytes)
      fail(what, ": raw_data holds ", raw->size(), " bytes, expected ", nbytes, " for ",
           dtype_name(dtype), "[", shape_str(shape), "]");
    Tensor t(dtype, shape);
    if (nbytes) std::memcpy(t.raw(), raw->data(), nbytes);
    check_bool_bytes(t, what);
    return t;
  }
  // A value of a typed field takes at least one byte of the message.
  if (static_cast<uint64_t>(numel) > p.ByteSizeLong())
    fail(what, ": ", dtype_name(dtype), "[", shape_str(shape), "] has ", numel,
         " elements but the tensor's ", p.ByteSizeLong(), " bytes cannot hold them");
  Tensor t(dtype, shape);
  if (numel == 0) return t;
  switch (dtype) {
    case DType::kFloat32:
      copy_field(p.float_data(), numel, what, "float_data",
                 [&](int64_t i, float v) { t.data<float>()[i] = v; });
      break;
    case DType::kFloat64:
      copy_field(p.double_data(), numel, what, "double_data",
                 [&](int64_t i, double v) { t.data<double>()[i] = v; });
      break;
    case DType::kInt64:
      copy_field(p.int64_data(), numel, what, "int64_data",
                 [&](int64_t i, int64_t v) { t.data<int64_t>()[i] = v; });
      break;
    case DType::kUInt32:
    case DType::kUInt64:
      copy_field(p.uint64_data(), numel, what, "uint64_data", [&](int64_t i, uint64_t v) {
        if (dtype == DType::kUInt32) t.data<uint32_t>()[i] = static_cast<uint32_t>(v);
        else t.data<uint64_t>()[i] = v;
      });
      break;
    case DType::kComplex64:
      copy_field(p.float_data(), numel * 2, what, "float_data", [&](int64_t i, float v) {
        reinterpret_cast<float*>(t.raw())[i] = v;
      });
      break;
    case DType::kComplex128:
      copy_field(p.double_data(), numel * 2, what, "double_data", [&](int64_t i, double v) {
        reinterpret_cast<double*>(t.raw())[i] = v;
      });
      break;
    default:
      // int32, int16, int8, uint16, uint8, bool, float16, bfloat16 live in int32_data
      // (the 16-bit floats as their bit patterns).
      copy_field(p.int32_data(), numel, what, "int32_data", [&](int64_t i, int32_t v) {
        // A value the element type cannot hold (a uint8 zero point of 300) is refused, not
        // wrapped. The 16-bit float bit patterns may come zero- or sign-extended.
        auto [lo, hi] = int32_data_range(dtype);
        if (v < lo || v > hi)
          fail(what, ": int32_data value ", v, " at index ", i, " does not fit ", dtype_name(dtype),
               " (", lo, " to ", hi, ")");
        switch (dtype) {
          case DType::kInt32: t.data<int32_t>()[i] = v; break;
          case DType::kInt16: t.data<int16_t>()[i] = static_cast<int16_t>(v); break;
          case DType::kInt8: t.data<int8_t>()[i] = static_cast<int8_t>(v); break;
          case DType::kUInt16: t.data<uint16_t>()[i] = static_cast<uint16_t>(v); break;
          case DType::kUInt8: t.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
          case DType::kBool: t.data<bool>()[i] = v != 0; break;
          case DType::kFloat16: t.data<Half>()[i].bits = static_cast<uint16_t>(v); break;
          case DType::kBFloat16: t.data<BFloat16>()[i].bits = static_cast<uint16_t>(v); break;
          default: fail(what, ": unsupported element type ", dtype_name(dtype));
        }
      });
  }
  return t;
}

Tensor read_tensor_pb(const std::string& path, std::string* name) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open file");
  std::stringstream ss;
  ss << f.rdbuf();
  std::string bytes = ss.str();
  ::onnx::TensorProto p;
  if (!p.ParseFromString(bytes)) fail(path, ": not a valid serialized TensorProto");
  if (name) *name = p.name();
  fs::path dir = fs::path(path).parent_path();
  return tensor_from_proto(p, dir.string(), path);
}

}  // namespace lithe::onnx
