#include "core/npy.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/file_io.hpp"
#include "core/tensor_check.hpp"

namespace lithe {
namespace {

struct DescrMap {
  const char* descr;
  DType dtype;
};
constexpr DescrMap kDescr[] = {
    {"<f4", DType::kFloat32},   {"<f8", DType::kFloat64},     {"<f2", DType::kFloat16},
    {"|i1", DType::kInt8},      {"|u1", DType::kUInt8},       {"<i2", DType::kInt16},
    {"<u2", DType::kUInt16},    {"<i4", DType::kInt32},       {"<u4", DType::kUInt32},
    {"<i8", DType::kInt64},     {"<u8", DType::kUInt64},      {"|b1", DType::kBool},
    {"<c8", DType::kComplex64}, {"<c16", DType::kComplex128},
};

// Finds the value text after 'key': in a Python dict literal.
std::string dict_value(const std::string& h, const std::string& key, const std::string& what) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) fail(what, ": .npy header has no '", key, "' entry");
  size_t c = h.find(':', k);
  if (c == std::string::npos) fail(what, ": malformed .npy header");
  size_t s = h.find_first_not_of(" ", c + 1);
  if (s == std::string::npos) fail(what, ": malformed .npy header");
  if (h[s] == '(') {
    size_t e = h.find(')', s);
    if (e == std::string::npos) fail(what, ": malformed shape in .npy header");
    return h.substr(s, e - s + 1);
  }
  size_t e = h.find_first_of(",}", s);
  if (e == std::string::npos) fail(what, ": malformed .npy header");
  std::string v = h.substr(s, e - s);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

}  // namespace

Tensor parse_npy(const std::string& bytes, const std::string& what) {
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0)
    fail(what, ": not a .npy file (bad magic)");
  int major = static_cast<unsigned char>(bytes[6]);
  size_t hlen, hstart;
  if (major == 1) {
    hlen = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(what, ": truncated .npy header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= size_t(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    hstart = 12;
  } else {
    fail(what, ": unsupported .npy version ", major);
  }
  if (hlen > bytes.size() - hstart) fail(what, ": truncated .npy header");
  std::string h = bytes.substr(hstart, hlen);
  std::string descr = dict_value(h, "descr", what);
  if (descr.size() < 2 || (descr[0] != '\'' && descr[0] != '"'))
    fail(what, ": malformed descr in .npy header");
  descr = descr.substr(1, descr.size() - 2);
  if (descr == "=f4") descr = "<f4";
  if (descr == "=f8") descr = "<f8";
  if (descr == "<b1" || descr == "=b1") descr = "|b1";
  if (descr == "<i1") descr = "|i1";
  if (descr == "<u1") descr = "|u1";
  DType dtype = DType::kUndefined;
  for (auto& d : kDescr)
    if (descr == d.descr) dtype = d.dtype;
  if (dtype == DType::kUndefined)
    fail(what, ": .npy element type '", descr,
         "' is not supported (expected little-endian numeric)");
  if (dict_value(h, "fortran_order", what) != "False")
    fail(what, ": Fortran-ordered .npy arrays are not supported (save with C order)");
  std::string sh = dict_value(h, "shape", what);
  Shape shape;
  std::string num;
  for (size_t i = 1; i < sh.size(); ++i) {
    char c = sh[i];
    if (c >= '0' && c <= '9') {
      num += c;
      if (num.size() > 18) fail(what, ": dimension too large in .npy shape");
    } else if (c == ',' || c == ')') {
      if (!num.empty()) shape.push_back(std::stoll(num));
      num.clear();
    } else if (c != ' ' && c != 'L') {
      fail(what, ": malformed shape ", sh, " in .npy header");
    }
  }
  // The size check comes before the allocation: a short file cannot make lithe allocate what
  // its header claims.
  const auto nbytes = static_cast<size_t>(checked_numel(shape, what)) * dtype_size(dtype);
  size_t off = hstart + hlen;
  if (bytes.size() - off < nbytes)
    fail(what, ": .npy data truncated: expected ", nbytes, " bytes for shape ", shape_str(shape),
         ", found ", bytes.size() - off);
  Tensor t(dtype, shape);
  if (nbytes) std::memcpy(t.raw(), bytes.data() + off, nbytes);
  check_bool_bytes(t, what);
  return t;
}

Tensor read_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_npy(ss.str(), path);
}

std::string to_npy(const Tensor& t) {
  const char* descr = nullptr;
  for (auto& d : kDescr)
    if (d.dtype == t.dtype()) descr = d.descr;
  std::string dict;
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    shape += std::to_string(t.shape()[i]);
    shape += (t.shape().size() == 1 || i + 1 < t.shape().size()) ? ", " : "";
  }
  if (t.shape().size() == 1) shape.pop_back();
  shape += ")";
  if (descr == nullptr) {  // bfloat16 has no numpy type: write as float32 values
    return to_npy(t.cast(DType::kFloat32));
  }
  dict = str_cat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  size_t total = 10 + dict.size() + 1;
  size_t pad = (64 - total % 64) % 64;
  dict.append(pad, ' ');
  dict += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(dict.size() & 0xff);
  out += static_cast<char>((dict.size() >> 8) & 0xff);
  out += dict;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& t) { write_file_atomically(path, to_npy(t)); }

}  // namespace lithe
