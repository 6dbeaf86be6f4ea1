/* OpenBLAS core selection: which detections count as wrong, and that
 * bin/genre ends up on a core that fits this CPU whatever OpenBLAS guessed. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "src/core/blas_arch.h"

Test(blas_arch, old_intel_cores_on_new_cpus_are_misdetections)
{
    cr_assert_str_eq(blas_arch_wanted("Prescott", 1, 1), "SkylakeX");
    cr_assert_str_eq(blas_arch_wanted("prescott", 1, 0), "Haswell");
    cr_assert_str_eq(blas_arch_wanted("Sandybridge", 1, 0), "Haswell");
    cr_assert_str_eq(blas_arch_wanted("Nehalem", 0, 1), "SkylakeX");
}

Test(blas_arch, fitting_or_foreign_choices_stand)
{
    cr_assert_null(blas_arch_wanted("Prescott", 0, 0), "an SSE-only CPU keeps Prescott");
    cr_assert_null(blas_arch_wanted("Haswell", 1, 1), "a user's or OpenBLAS's AVX2 choice stays");
    cr_assert_null(blas_arch_wanted("SkylakeX", 1, 1));
    cr_assert_null(blas_arch_wanted("Zen", 1, 0));
    cr_assert_null(blas_arch_wanted("SapphireRapids", 1, 1));
}

/* Run without OPENBLAS_CORETYPE, the binary reports a core that is no
 * misdetection for this CPU (on a VM hiding its model, it had to re-execute). */
Test(blas_arch, genre_runs_on_a_core_that_fits_this_cpu)
{
    FILE *p = popen("env -u OPENBLAS_CORETYPE bin/genre --version", "r");
    cr_assert_not_null(p);
    char line[256], core[64] = "";
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "blas core: %63s", core) == 1) break;
    while (fgets(line, sizeof line, p)) {}
    cr_assert_eq(pclose(p), 0, "bin/genre --version failed (is bin/genre built?)");
    cr_assert(core[0], "bin/genre --version names no blas core");
    cr_assert_null(blas_arch_wanted_here(core), "bin/genre runs OpenBLAS core %s on this CPU", core);
}
