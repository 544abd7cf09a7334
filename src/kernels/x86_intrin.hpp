// <immintrin.h> for the x86 kernel translation units. GCC 12's AVX-512 intrinsics read a
// deliberately uninitialized __Y (GCC PR 105593), which -Wuninitialized /
// -Wmaybe-uninitialized report at the header's lines once inlined.
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // clang has no such warning (and none to silence here)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop
