// Errors: one exception type inside the library; the API boundary turns it into a status.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace lithe {

/// What kind of failure an Error is; maps onto the CLI's exit codes.
enum class ErrorKind {
  kBadInput = 2,  ///< the model, an input or a flag is wrong (exit code 2)
  kRuntime = 1,   ///< something failed while running (exit code 1)
};

/// Concatenates any streamable values into a string.
template <class... Args>
std::string str_cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

/// `s` on one line: control characters (a newline inside a tensor name read from a model
/// file, say) written as escapes (\n, \r, \t, \xHH).
inline std::string one_line(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

/// The single error type thrown inside lithe. Context is added by catching and rethrowing
/// with `with_context`, so the final message reads outer-to-inner: "file: node n: ...".
/// Messages are always one line (one_line), whatever names a hostile file holds.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& msg) : std::runtime_error(one_line(msg)), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  Error with_context(const std::string& ctx) const { return Error(kind_, ctx + ": " + what()); }

 private:
  ErrorKind kind_;
};

/// Throws a bad-input error built from the arguments.
template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(ErrorKind::kBadInput, str_cat(std::forward<Args>(args)...));
}

/// Throws a runtime error built from the arguments.
template <class... Args>
[[noreturn]] void fail_runtime(Args&&... args) {
  throw Error(ErrorKind::kRuntime, str_cat(std::forward<Args>(args)...));
}

/// Checks a condition that bad input can violate; never compiled out.
#define LITHE_CHECK(cond, ...)                     \
  do {                                             \
    if (!(cond)) ::lithe::fail(__VA_ARGS__);       \
  } while (0)

}  // namespace lithe
