/* cudasim's <nccl.h>: NVIDIA's declarations, unchanged (ncclResult_t,
 * ncclDataType_t, ncclRedOp_t, ncclUniqueId with their values);
 * libcudasim.a implements the subset tests/cudasim/nccl.cpp lists, its
 * collectives carried by MPI between the simulated processes. */
#ifndef CUDASIM_NCCL_WRAPPER
#define CUDASIM_NCCL_WRAPPER
#include <cuda_runtime.h>
#include_next <nccl.h>
#endif
