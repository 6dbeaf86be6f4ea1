/* cudasim's <cublas_v2.h>: NVIDIA's declarations, unchanged (the _v2 names,
 * cublasStatus_t, cublasComputeType_t, cublasGemmAlgo_t with their values);
 * libcudasim.a implements the subset tests/cudasim/cudasim.h lists. A call
 * outside that subset fails to link, naming the function. */
#ifndef CUDASIM_CUBLAS_V2_WRAPPER
#define CUDASIM_CUBLAS_V2_WRAPPER
#include <cuda_runtime.h>
#include_next <cublas_v2.h>
#endif
