/* The instrumentation callbacks of kernels compiled with CUDASIM_COUNT_FLAGS
 * (gcc -fsanitize=kernel-address with a call per access): each load and
 * store of such a kernel reaches cudasim's counter (count.cpp), which keeps
 * those into device memory. Linked only into programs that count (never
 * beside AddressSanitizer, which owns these names). */
#include "internal.h"

namespace {
struct Linked {
    Linked() { cudasim::kernel_bytes_counted = true; }
} linked;
} /* namespace */

extern "C" void __asan_load1_noabort(void *p) { cudasim::count_access(p, 1, false); }
extern "C" void __asan_store1_noabort(void *p) { cudasim::count_access(p, 1, true); }
extern "C" void __asan_load2_noabort(void *p) { cudasim::count_access(p, 2, false); }
extern "C" void __asan_store2_noabort(void *p) { cudasim::count_access(p, 2, true); }
extern "C" void __asan_load4_noabort(void *p) { cudasim::count_access(p, 4, false); }
extern "C" void __asan_store4_noabort(void *p) { cudasim::count_access(p, 4, true); }
extern "C" void __asan_load8_noabort(void *p) { cudasim::count_access(p, 8, false); }
extern "C" void __asan_store8_noabort(void *p) { cudasim::count_access(p, 8, true); }
extern "C" void __asan_load16_noabort(void *p) { cudasim::count_access(p, 16, false); }
extern "C" void __asan_store16_noabort(void *p) { cudasim::count_access(p, 16, true); }
extern "C" void __asan_loadN_noabort(void *p, size_t n) { cudasim::count_access(p, n, false); }
extern "C" void __asan_storeN_noabort(void *p, size_t n) { cudasim::count_access(p, n, true); }
/* Emitted before each call that does not return (wmma's kernel_fail). */
extern "C" void __asan_handle_no_return(void) {}
