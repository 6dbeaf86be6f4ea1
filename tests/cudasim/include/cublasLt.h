/* cudasim's <cublasLt.h>: NVIDIA's declarations, unchanged (descriptor
 * attributes, epilogues, layouts with their values and sizes); libcudasim.a
 * implements the subset tests/cudasim/cudasim.h lists. A call outside that
 * subset fails to link, naming the function. */
#ifndef CUDASIM_CUBLASLT_WRAPPER
#define CUDASIM_CUBLASLT_WRAPPER
#include <cuda_runtime.h>
#include_next <cublasLt.h>
#endif
