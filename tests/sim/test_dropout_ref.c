/* The CUDA backend, in the simulated CUDA runtime, against PyTorch with
 * dropout on at every site (tests/model/dropout_ref.h): logits, loss and
 * every gradient of every layer, full forward and cls_only, to the same
 * tolerances as the CPU backend. */
#include "kernels/cuda_common.h"
#include "tests/model/dropout_ref.h"

TestSuite(dropout_ref_cuda, .init = setup, .fini = teardown);

static void device_copy(float *dst, const float *src, size_t n)
{
    cr_assert_eq(cudaMemcpy(dst, src, n * sizeof *dst, cudaMemcpyDeviceToHost), cudaSuccess);
}

Test(dropout_ref_cuda, cuda_logits_and_every_gradient_match_pytorch, .timeout = 300)
{
    check_backend("cuda", device_copy);
}
