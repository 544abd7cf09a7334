// Engine file header, checksum, magic check and atomic write.
// xxHash is used header-only (Debian libxxhash-dev), so the runtime links nothing for it.
#define XXH_INLINE_ALL
#include <xxhash.h>

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
  return XXH64(data, size, seed);
}

uint64_t xxh3(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

uint64_t engine_checksum(const unsigned char* file, size_t size) {
  if (get_u32(file + 8) >= kFormatVersionXxh3)
    return xxh3(file + kHeaderSize, size - kHeaderSize, xxh3(file, 56));
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
