// A level's exported int8 entry points (declared in kernels.hpp), forwarding to the body
// (q8_x86_256.hpp or q8_x86_512.hpp) the level's q8_<level>.cpp included in its anonymous
// namespace just before. Included inside namespace lithe::kernels::<level>.
void q8_gemm(const Q8GemmArgs& g, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  q8::gemm(g, m0, m1, p0, p1);
}

void q8_dwconv(const Q8DwConvArgs& d, int64_t oy0, int64_t oy1) { q8::dwconv(d, oy0, oy1); }

void q8_binary(const Q8BinaryArgs& a) { q8::binary(a); }
