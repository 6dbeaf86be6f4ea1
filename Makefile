# genre: the CPU product always; the CUDA kernels too whenever nvcc is found.
# `make` builds bin/genre, `make test` runs the whole suite (installing what
# it needs), `make demo` runs the main job on the embedded default.

CC       ?= gcc
CXX      ?= g++
BUILD    ?= build
OPT      ?= -O2 -g
SAN      ?=
NVCC     ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_ARCH ?= 80 90

# One include root: every include names its folder ("src/core/err.h").
INCLUDES = -I.
# -fno-math-errno: no code reads errno after libm calls, and sqrtf without it
# is a call per element that stops vectorization.
CFLAGS   = -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -fopenmp -fno-math-errno -Wall -Wextra -Werror -MMD -MP $(INCLUDES)
# -lisal: CRC32C (ISA-L) for the TensorBoard event files, src/eval/tbevents.c.
CPU_LDLIBS = -lutf8proc -ljansson -lopenblas -lisal -lm
# MPI (src/dist/comm.c) whenever mpicc is found: data parallel over ranks.
MPICC    ?= $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
CFLAGS     += -DGENRE_MPI $(shell $(MPICC) --showme:compile)
CPU_LDLIBS += $(shell $(MPICC) --showme:link)
endif
LDLIBS   = $(CPU_LDLIBS)
LDFLAGS  = $(SAN) -fopenmp

# models/backend_cuda.c is host C for the CUDA backend: built with nvcc's toolkit only.
LIB_SRC  = $(filter-out src/main.c $(if $(NVCC),,models/backend_cuda.c),$(wildcard src/*/*.c tokenizer/*.c models/*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC = $(wildcard tests/unit/*.c tests/model/*.c)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)

# The CUDA simulator (tests/cudasim): CUDA sources compiled by the host
# compilers against NVIDIA's own headers (the toolkit's include directory,
# SIM_CUDA_INCLUDE; no nvcc or GPU needed) and linked with $(SIM_LIB)
# instead of cudart, cuBLAS and cuBLASLt. Any source builds for it as
# $(BUILD)/sim/PATH.o (.c with SIM_CFLAGS, .cu and .cpp with SIM_CXXFLAGS,
# all defining CUDASIM, GENRE_CUDA and GENRE_CUDA_BACKEND). Link those
# ahead of $(BUILD)/libgenre.a, with $(SIM_KERNEL_OBJ) and $(SIM_LIB), by
# $(SIM_LDLIBS), never with the real CUDA libraries:
#   bin/genre-sim: $(BUILD)/sim/src/main.o $(BUILD)/sim/models/backend.o \
#                  $(BUILD)/sim/models/backend_cuda.o $(SIM_KERNEL_OBJ) \
#                  $(BUILD)/libgenre.a $(SIM_LIB)
#   	$(CC) $(LDFLAGS) -o $@ $^ $(SIM_LDLIBS)
SIM_CUDA_INCLUDE ?= $(or $(CUDA_HOME),/usr/local/cuda)/include
# Ours first: they #include_next NVIDIA's.
SIM_INCLUDES = -Itests/cudasim/include -Itests/cudasim -I$(SIM_CUDA_INCLUDE)
SIM_DEFS     = -DCUDASIM -DGENRE_CUDA -DGENRE_CUDA_BACKEND $(if $(MPICC),-DGENRE_NCCL $(shell $(MPICC) --showme:compile))
SIM_CXXFLAGS = -std=c++17 $(SIM_DEFS) $(OPT) $(SAN) $(if $(SAN),-fsanitize-sections=cudasim_shared) \
               -Wall -Wextra -Werror -MMD -MP $(SIM_INCLUDES) $(INCLUDES)
SIM_CFLAGS   = $(SIM_INCLUDES) $(CFLAGS) $(SIM_DEFS)
SIM_LIB      = $(BUILD)/sim/libcudasim.a
# nccl.cpp carries NCCL's collectives over MPI: built when MPI is.
# count_access.cpp is linked only where kernels are counted (below).
SIM_LIB_OBJ  = $(patsubst %.cpp,$(BUILD)/sim/%.o,$(filter-out tests/cudasim/count_access.cpp $(if $(MPICC),,tests/cudasim/nccl.cpp),$(wildcard tests/cudasim/*.cpp)))
SIM_LDLIBS   = $(CPU_LDLIBS) -lstdc++
SIM_KERNEL_OBJ = $(patsubst %.cu,$(BUILD)/sim/%.o,$(wildcard kernels/*.cu))
# Counted kernels (cudasim_count_begin): each load and store calls cudasim's
# counter, through the callbacks of gcc's kernel-address instrumentation
# (tests/cudasim/count_access.cpp); never with ASan, which owns them.
CUDASIM_COUNT_FLAGS = -fsanitize=kernel-address --param asan-instrumentation-with-call-threshold=0 \
                      --param asan-stack=0 --param asan-globals=0
COUNT_ACCESS_OBJ = $(if $(SAN),,$(BUILD)/simcount/tests/cudasim/count_access.o)
SIM_OBJ   = $(SIM_KERNEL_OBJ) $(patsubst %.cu,$(BUILD)/sim/%.o,$(filter-out tests/cudasim/counted.cu,$(wildcard tests/cudasim/*.cu))) \
            $(if $(SAN),,$(BUILD)/simcount/tests/cudasim/counted.o $(COUNT_ACCESS_OBJ))
KTEST_SRC = tests/kernels/test_kernels.c
KSIM_OBJ  = $(patsubst %.c,$(BUILD)/sim/%.o,$(KTEST_SRC) $(wildcard tests/cudasim/test_*.c))

ifneq ($(NVCC),)
CUDA_HOME   ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_SRC     = $(wildcard kernels/*.cu)
CUDA_OBJ     = $(CUDA_SRC:%.cu=$(BUILD)/%.o)
NVCC_GENCODE = $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a))
NVCC_FLAGS   = -O3 -std=c++17 $(NVCC_GENCODE) $(INCLUDES) -Werror all-warnings \
               -Xcompiler -Wall,-Wextra,-Werror -MMD -MP
CFLAGS      += -DGENRE_CUDA -DGENRE_CUDA_BACKEND -I$(CUDA_HOME)/include
LDLIBS      += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
# NCCL sums the CUDA backend's gradients on the device; its unique id goes
# to the ranks over MPI, so it needs both.
ifneq ($(MPICC),)
ifneq ($(wildcard $(CUDA_HOME)/lib64/libnccl.so $(CUDA_HOME)/include/nccl.h),)
CFLAGS      += -DGENRE_NCCL
LDLIBS      += -lnccl
endif
endif
endif

.PHONY: all deps test test-gpu demo bench clean fuzz-safetensors sim
all: bin/genre

bin/genre: $(BUILD)/src/main.o $(BUILD)/libgenre.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libgenre.a: $(LIB_OBJ) $(CUDA_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -c -o $@ $<

$(BUILD)/tests/genre-tests: $(TEST_OBJ) $(BUILD)/libgenre.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

$(BUILD)/sim/%.o: %.cu
	@test -f $(SIM_CUDA_INCLUDE)/cuda_runtime_api.h || { echo "cudasim needs the CUDA toolkit's headers: set SIM_CUDA_INCLUDE"; exit 1; }
	@mkdir -p $(@D)
	$(CXX) $(SIM_CXXFLAGS) -x c++ -include tests/cudasim/cudasim.h -c -o $@ $<

$(BUILD)/sim/%.o: %.cpp
	@test -f $(SIM_CUDA_INCLUDE)/cuda_runtime_api.h || { echo "cudasim needs the CUDA toolkit's headers: set SIM_CUDA_INCLUDE"; exit 1; }
	@mkdir -p $(@D)
	$(CXX) $(SIM_CXXFLAGS) -c -o $@ $<

$(BUILD)/sim/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(SIM_CFLAGS) -c -o $@ $<

$(BUILD)/simcount/%.o: %.cu
	@mkdir -p $(@D)
	$(CXX) $(SIM_CXXFLAGS) $(CUDASIM_COUNT_FLAGS) -x c++ -include tests/cudasim/cudasim.h -c -o $@ $<

$(BUILD)/simcount/%.o: %.cpp
	@mkdir -p $(@D)
	$(CXX) $(SIM_CXXFLAGS) -c -o $@ $<

$(SIM_LIB): $(SIM_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

sim: $(SIM_LIB)

$(BUILD)/tests/kernels-sim: $(KSIM_OBJ) $(SIM_OBJ) $(BUILD)/libgenre.a $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(SIM_LDLIBS)

# The CLI with --device cuda running in the simulator, and the CUDA backend's
# parity tests against the CPU backend (tests/sim), both built without nvcc.
SIM_HOST_OBJ = $(BUILD)/sim/models/backend.o $(BUILD)/sim/models/backend_cuda.o
bin/genre-sim: $(BUILD)/sim/src/main.o $(SIM_HOST_OBJ) $(SIM_KERNEL_OBJ) $(BUILD)/libgenre.a $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(SIM_LDLIBS)

# The step plan: the CUDA backend's training step in the simulator with
# counted kernels (not in ASan builds: see CUDASIM_COUNT_FLAGS).
COUNT_KERNEL_OBJ = $(patsubst %.cu,$(BUILD)/simcount/%.o,$(wildcard kernels/*.cu))
$(BUILD)/bench/step_plan: $(BUILD)/sim/bench/step_plan.o $(SIM_HOST_OBJ) $(COUNT_KERNEL_OBJ) \
                          $(BUILD)/simcount/tests/cudasim/count_access.o $(BUILD)/libgenre.a $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(SIM_LDLIBS)

# tests/model/test_backend.c runs on both devices: here as suite backend_cuda.
PSIM_OBJ = $(patsubst %.c,$(BUILD)/sim/%.o,$(wildcard tests/sim/*.c) tests/model/test_backend.c)
$(BUILD)/tests/backend-sim: $(PSIM_OBJ) $(SIM_HOST_OBJ) $(SIM_KERNEL_OBJ) $(BUILD)/libgenre.a $(SIM_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(SIM_LDLIBS)

# The tool that exports genre's dropout masks for
# tests/reference/make_dropout_fixture.py; built with the tests so it keeps compiling.
$(BUILD)/tests/dropout-masks: $(BUILD)/tests/tools/dropout_masks.o $(BUILD)/libgenre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Every collective of src/dist/comm.h, run under mpirun by tests/unit/test_dist.c.
$(BUILD)/tests/comm-check: $(BUILD)/tests/tools/comm_check.o $(BUILD)/libgenre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The simulated NCCL under mpirun (tests/unit/test_dist.c), when MPI is built in.
$(BUILD)/tests/nccl-check: $(BUILD)/sim/tests/tools/nccl_check.o $(SIM_LIB) $(BUILD)/libgenre.a
	$(CC) $(LDFLAGS) -o $@ $^ $(SIM_LDLIBS)

tests: $(BUILD)/tests/genre-tests $(BUILD)/tests/kernels-sim $(BUILD)/tests/backend-sim $(BUILD)/tests/dropout-masks \
       $(BUILD)/tests/comm-check $(if $(MPICC),$(BUILD)/tests/nccl-check)

# On a GPU: the kernel tests against the CPU ops, the same under
# compute-sanitizer (fewer big shapes: GENRE_KERNELS_QUICK), then the
# benchmark and PyTorch's own ops, same GPU, same run.
ifneq ($(NVCC),)
SANITIZER ?= $(shell command -v compute-sanitizer 2>/dev/null || ls $(CUDA_HOME)/bin/compute-sanitizer 2>/dev/null)

$(BUILD)/tests/kernels-gpu: $(BUILD)/tests/kernels/test_kernels.o $(BUILD)/libgenre.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

$(BUILD)/bench/kernels_bench: $(BUILD)/bench/kernels_bench.o $(BUILD)/libgenre.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

test-gpu: $(BUILD)/tests/kernels-gpu $(BUILD)/bench/kernels_bench
	$(BUILD)/tests/kernels-gpu --jobs 1
	@test -n "$(SANITIZER)" || { echo "compute-sanitizer not found (set SANITIZER=)"; exit 1; }
	for tool in memcheck racecheck synccheck; do \
	    GENRE_KERNELS_QUICK=1 $(SANITIZER) --tool $$tool --target-processes all --error-exitcode 1 \
	        $(BUILD)/tests/kernels-gpu --jobs 1 || exit 1; done
	$(BUILD)/bench/kernels_bench
	python3 bench/kernels_torch.py
else
test-gpu:
	@echo "make test-gpu needs nvcc (the CUDA toolkit) and a GPU"; exit 1
endif

# Benchmark programs bench/NAME.c -> $(BUILD)/bench/NAME (the C side of
# bench/NAME.py); kernels_bench needs a GPU and is built by test-gpu;
# step_plan runs the CUDA backend in the simulator (its rule above).
BENCH_BIN = $(patsubst bench/%.c,$(BUILD)/bench/%,$(filter-out bench/kernels_bench.c bench/step_plan.c,$(wildcard bench/*.c))) \
            $(BUILD)/bench/step_plan
$(BUILD)/bench/%: bench/%.c $(BUILD)/libgenre.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: $(BENCH_BIN)

deps:
	@bash .ci/deps

# The real data for `make test` (tests/run reads GENRE_DATA) and `make demo`.
DATA ?= $(or $(GENRE_DATA),../shared/data/movies)
test: deps
	@GENRE_DATA='$(DATA)' bash tests/run

demo: deps all
	bin/genre prepare --data $(DATA) --out runs/data
	bin/genre tokenize --vocab $$(models/fetch-minilm) --stats runs/data
	bin/genre train --config configs/train/cpu.json --out runs/demo

# libFuzzer on the safetensors reader/writer (clang): FUZZ_TIME seconds,
# new inputs kept in $(BUILD)/fuzz/corpus-safetensors, crashes in $(BUILD)/fuzz.
FUZZ_CC   ?= clang-14
FUZZ_TIME ?= 120
$(BUILD)/fuzz/fuzz-safetensors: tests/fuzz/fuzz_safetensors.c src/io/safetensors.c src/core/err.c src/core/atomic.c src/core/utf8.c src/io/safetensors.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I. -o $@ $(filter %.c,$^) -ljansson

fuzz-safetensors: $(BUILD)/fuzz/fuzz-safetensors
	@mkdir -p $(BUILD)/fuzz/corpus-safetensors
	$< -max_total_time=$(FUZZ_TIME) -dict=tests/fuzz/safetensors.dict -artifact_prefix=$(BUILD)/fuzz/ \
		$(BUILD)/fuzz/corpus-safetensors tests/fuzz/corpus_safetensors

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(BUILD)/tests/tools/dropout_masks.d $(BUILD)/tests/tools/comm_check.d $(CUDA_OBJ:.o=.d) $(BUILD)/src/main.d
-include $(PSIM_OBJ:.o=.d) $(SIM_HOST_OBJ:.o=.d) $(BUILD)/sim/src/main.d
-include $(SIM_OBJ:.o=.d) $(SIM_LIB_OBJ:.o=.d) $(COUNT_KERNEL_OBJ:.o=.d) $(BUILD)/sim/bench/step_plan.d $(KSIM_OBJ:.o=.d) $(BUILD)/tests/kernels/test_kernels.d $(BUILD)/bench/kernels_bench.d
