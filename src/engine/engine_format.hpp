// The engine file's fixed header and checksum, shared by the writer, the reader and the
// corruption tests. Layout of a file:
//   [FileHeader, 64 bytes, little-endian][FlatBuffers root (engine.fbs)][zero padding]
//   [data section: constant blobs, each at a file offset that is a multiple of 64]
// The checksum covers the header's other fields and every byte after the header, so a
// flipped bit anywhere is caught before the FlatBuffers verifier even runs (the checks
// behind it still hold when a checksum is forged; the corruption tests reseal to reach them).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace lithe::engine {

inline constexpr char kMagic[8] = {'L', 'I', 'T', 'H', 'E', 'N', 'G', '\0'};
inline constexpr uint32_t kHeaderSize = 64;
/// Alignment of the data section and of every blob in it (a cache line; enough for any
/// SIMD load).
inline constexpr uint64_t kBlobAlignment = 64;
/// Deepest nesting of subgraphs (If/Loop/Scan bodies) an engine may hold.
inline constexpr int kMaxGraphDepth = 32;

/// The decoded header. On disk every field is little-endian, in this order, with no gaps:
/// magic[8] version:u32 header_size:u32 fb_offset:u64 fb_size:u64 data_offset:u64
/// data_size:u64 file_size:u64 checksum:u64  (64 bytes).
struct FileHeader {
  uint32_t version = 0;
  uint32_t header_size = kHeaderSize;
  uint64_t fb_offset = 0;
  uint64_t fb_size = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  uint64_t file_size = 0;
  /// XXH3-64 of bytes [header_size, file_size), seeded with the XXH3-64 (seed 0) of header
  /// bytes [0, 56) (everything before the checksum field). Versions before 4: XXH64 both.
  uint64_t checksum = 0;
};

/// Encodes `h` with the magic into out[0..64).
void encode_header(const FileHeader& h, unsigned char* out);
/// Decodes the fields (magic not checked) from in[0..64).
FileHeader decode_header(const unsigned char* in);

/// XXH3-64 and XXH64 (xxHash's 64-bit hashes, from Debian's libxxhash-dev). Not
/// cryptographic: they catch corruption, not tampering. XXH3 reads a mapped ResNet-50 engine
/// in about 60% of XXH64's time here (memory-bound; the checksum is most of an engine's load).
uint64_t xxh3(const void* data, size_t size, uint64_t seed = 0);
uint64_t xxh64(const void* data, size_t size, uint64_t seed = 0);

/// The checksum of a whole engine file (`size` >= kHeaderSize), by the algorithm of the
/// version in its header.
uint64_t engine_checksum(const unsigned char* file, size_t size);

/// Recomputes the checksum of a whole engine file held in `bytes` and stores it in the
/// header (tests use it to reach the checks behind the checksum).
void reseal(std::string& bytes);

}  // namespace lithe::engine
