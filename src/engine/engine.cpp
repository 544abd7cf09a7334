// Engine file header, checksum, magic check and atomic write.
#include "engine/engine.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "engine/engine_format.hpp"

namespace lithe::engine {
namespace {

void put_u32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put_u64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
uint32_t get_u32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t get_u64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

constexpr uint64_t kP1 = 11400714785074694791ULL;
constexpr uint64_t kP2 = 14029467366897019727ULL;
constexpr uint64_t kP3 = 1609587929392839161ULL;
constexpr uint64_t kP4 = 9650029242287828579ULL;
constexpr uint64_t kP5 = 2870177450012600261ULL;

inline uint64_t load64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}
inline uint32_t load32(const unsigned char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
  return v;
}
inline uint64_t xxh_round(uint64_t acc, uint64_t in) {
  acc += in * kP2;
  acc = std::rotl(acc, 31);
  return acc * kP1;
}
inline uint64_t xxh_merge(uint64_t acc, uint64_t v) {
  acc ^= xxh_round(0, v);
  return acc * kP1 + kP4;
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

void encode_header(const FileHeader& h, unsigned char* out) {
  std::memcpy(out, kMagic, 8);
  put_u32(out + 8, h.version);
  put_u32(out + 12, h.header_size);
  put_u64(out + 16, h.fb_offset);
  put_u64(out + 24, h.fb_size);
  put_u64(out + 32, h.data_offset);
  put_u64(out + 40, h.data_size);
  put_u64(out + 48, h.file_size);
  put_u64(out + 56, h.checksum);
}

FileHeader decode_header(const unsigned char* in) {
  FileHeader h;
  h.version = get_u32(in + 8);
  h.header_size = get_u32(in + 12);
  h.fb_offset = get_u64(in + 16);
  h.fb_size = get_u64(in + 24);
  h.data_offset = get_u64(in + 32);
  h.data_size = get_u64(in + 40);
  h.file_size = get_u64(in + 48);
  h.checksum = get_u64(in + 56);
  return h;
}

uint64_t xxh64(const void* data, size_t size, uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  const unsigned char* end = p + size;
  uint64_t h;
  if (size >= 32) {
    uint64_t v1 = seed + kP1 + kP2, v2 = seed + kP2, v3 = seed, v4 = seed - kP1;
    const unsigned char* limit = end - 32;
    do {
      v1 = xxh_round(v1, load64(p));
      v2 = xxh_round(v2, load64(p + 8));
      v3 = xxh_round(v3, load64(p + 16));
      v4 = xxh_round(v4, load64(p + 24));
      p += 32;
    } while (p <= limit);
    h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
    h = xxh_merge(h, v1);
    h = xxh_merge(h, v2);
    h = xxh_merge(h, v3);
    h = xxh_merge(h, v4);
  } else {
    h = seed + kP5;
  }
  h += static_cast<uint64_t>(size);
  for (; end - p >= 8; p += 8) {
    h ^= xxh_round(0, load64(p));
    h = std::rotl(h, 27) * kP1 + kP4;
  }
  if (end - p >= 4) {
    h ^= static_cast<uint64_t>(load32(p)) * kP1;
    h = std::rotl(h, 23) * kP2 + kP3;
    p += 4;
  }
  for (; p < end; ++p) {
    h ^= static_cast<uint64_t>(*p) * kP5;
    h = std::rotl(h, 11) * kP1;
  }
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

uint64_t engine_checksum(const unsigned char* file, size_t size) {
  return xxh64(file + kHeaderSize, size - kHeaderSize, xxh64(file, 56));
}

void reseal(std::string& bytes) {
  if (bytes.size() < kHeaderSize) return;
  auto* b = reinterpret_cast<unsigned char*>(bytes.data());
  put_u64(b + 56, engine_checksum(b, bytes.size()));
}

bool is_engine_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[8];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  return n == static_cast<ssize_t>(sizeof buf) && std::memcmp(buf, kMagic, 8) == 0;
}

void write_engine(const std::string& path, const EngineContents& e) {
  // Serialize first: a bad graph fails before anything touches the disk.
  std::string bytes = serialize(e);
  std::string tmp = str_cat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, ": cannot create the engine file (", tmp, "): ", errno_text());
  auto give_up = [&](const char* what) {
    std::string err = errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, ": ", what, " failed while writing the engine file: ", err);
  };
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) give_up("write");
    done += static_cast<size_t>(n);
  }
  // Durable before the rename, so a crash leaves either the old file or the whole new one.
  if (::fsync(fd) != 0) give_up("fsync");
  if (::close(fd) != 0) {
    std::string err = errno_text();
    ::unlink(tmp.c_str());
    fail(path, ": close failed while writing the engine file: ", err);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string err = errno_text();
    ::unlink(tmp.c_str());
    fail(path, ": cannot rename ", tmp, " to the engine file: ", err);
  }
}

}  // namespace lithe::engine
