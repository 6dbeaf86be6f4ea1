/* cudasim's <cuda_runtime.h>: NVIDIA's own header (the toolkit's include
 * directory comes after tests/cudasim/include on the search path), so every
 * type, signature and enum value is NVIDIA's; libcudasim.a implements the
 * functions. NVIDIA's header leaves the device side to nvcc (threadIdx,
 * __syncthreads, shuffles, atomics, device math, __shared__ storage, the
 * launch): tests/cudasim/cudasim.h supplies those, so it comes along here,
 * as nvcc's implicit cuda_runtime.h brings them to every .cu file. */
#ifndef CUDASIM_CUDA_RUNTIME_WRAPPER
#define CUDASIM_CUDA_RUNTIME_WRAPPER
#include_next <cuda_runtime.h>
#include "../cudasim.h"
#endif
