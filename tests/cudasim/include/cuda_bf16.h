/* cudasim's <cuda_bf16.h>: NVIDIA's header serves unchanged under g++ (its
 * host code paths give __nv_bfloat16, the round-to-nearest-even conversions
 * and the arithmetic operators exactly as the device computes them), so the
 * simulator only makes sure its runtime header is in as well. */
#ifndef CUDASIM_CUDA_BF16_WRAPPER
#define CUDASIM_CUDA_BF16_WRAPPER
#include <cuda_runtime.h>
#include_next <cuda_bf16.h>
#endif
