// Compiled with -mavx2 -mfma where the compiler targets x86-64 (see CMakeLists.txt).
#define DI_ROWS_NS rows_avx2
#define DI_ROWS_AVX2 1
#include "transfer_rows_impl.hpp"
