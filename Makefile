# genre: the CPU product always; the CUDA kernels too whenever nvcc is found.
# `make` builds bin/genre, `make test` runs the whole suite (installing what
# it needs), `make demo` runs the main job on the embedded default.

CC       ?= gcc
BUILD    ?= build
OPT      ?= -O2 -g
SAN      ?=
NVCC     ?= $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CUDA_ARCH ?= 80 90

INCLUDES = -Isrc -Itokenizer -Imodels -Ikernels
CFLAGS   = -std=c11 -D_GNU_SOURCE $(OPT) $(SAN) -fopenmp -Wall -Wextra -Werror -MMD -MP $(INCLUDES)
LDLIBS   = -lutf8proc -ljansson -lopenblas -lm
LDFLAGS  = $(SAN) -fopenmp

LIB_SRC  = $(filter-out src/main.c,$(wildcard src/*.c src/*/*.c tokenizer/*.c models/*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_OBJ = $(TEST_SRC:%.c=$(BUILD)/%.o)
BENCH_BIN = $(patsubst %.c,$(BUILD)/%,$(wildcard bench/*.c))

ifneq ($(NVCC),)
CUDA_HOME   ?= $(patsubst %/bin/nvcc,%,$(NVCC))
CUDA_SRC     = $(wildcard kernels/*.cu)
CUDA_OBJ     = $(CUDA_SRC:%.cu=$(BUILD)/%.o)
NVCC_GENCODE = $(foreach a,$(CUDA_ARCH),-gencode arch=compute_$(a),code=sm_$(a))
NVCC_FLAGS   = -O3 -std=c++17 $(NVCC_GENCODE) $(INCLUDES) -Werror all-warnings \
               -Xcompiler -Wall,-Wextra,-Werror -MMD -MP
CFLAGS      += -DGENRE_CUDA -I$(CUDA_HOME)/include
LDLIBS      += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
endif

.PHONY: all deps test demo bench clean fuzz-safetensors
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

tests: $(BUILD)/tests/genre-tests

# Benchmark helpers: bench/NAME.c -> $(BUILD)/bench/NAME, linked with the library.
$(BUILD)/bench/%: bench/%.c $(BUILD)/libgenre.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: $(BENCH_BIN)

deps:
	@bash .ci/deps

test: deps
	@bash tests/run

DATA ?= ../shared/data/movies
demo: deps all
	bin/genre prepare --data $(DATA) --out runs/data

# libFuzzer on the safetensors reader/writer (clang): FUZZ_TIME seconds,
# new inputs kept in $(BUILD)/fuzz/corpus-safetensors, crashes in $(BUILD)/fuzz.
FUZZ_CC   ?= clang-14
FUZZ_TIME ?= 120
$(BUILD)/fuzz/fuzz-safetensors: tests/fuzz/fuzz_safetensors.c src/safetensors.c src/err.c src/atomic.c src/utf8.c src/safetensors.h
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Isrc -o $@ $(filter %.c,$^) -ljansson

fuzz-safetensors: $(BUILD)/fuzz/fuzz-safetensors
	@mkdir -p $(BUILD)/fuzz/corpus-safetensors
	$< -max_total_time=$(FUZZ_TIME) -dict=tests/fuzz/safetensors.dict -artifact_prefix=$(BUILD)/fuzz/ \
		$(BUILD)/fuzz/corpus-safetensors tests/fuzz/corpus_safetensors

clean:
	rm -rf build bin

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(CUDA_OBJ:.o=.d) $(BUILD)/src/main.d
