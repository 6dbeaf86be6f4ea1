#!/usr/bin/env bash
# The first minutes on a GPU go to measuring, not debugging. Two halves:
#
#   bench/gpu-check.sh pack    here (no GPU needed): builds bin/genre, the
#                              kernel tests and build/bench/model_bench for
#                              sm_80/sm_90, downloads the runtime .debs the
#                              GPU machine lacks, and packs a data subset
#                              and all-MiniLM-L6-v2 in F16 into .gpu/ with
#                              the binaries (about 62 MB: under the 64 MiB
#                              that travels with the 2 MB of sources)
#   bench/gpu-check.sh run [GROUP...]
#                              there, with .gpu carried: every step below,
#                              or the groups named (kernels sanitizer parity
#                              nccl minilm stepbench; the device step always),
#                              so that a session's device minutes can split
#                              them over several commands; one results file
#                              $OUT/gpu-check.txt (or .gpu/gpu-check.txt) per
#                              run to paste into bench/RESULTS.md
#
# run, in order, each step's outcome and time in the results file:
#   1. the device and the build (nvidia-smi, genre --version)
#   2. every kernel against the CPU ops on the device (build/tests/kernels-gpu)
#   3. compute-sanitizer memcheck, racecheck, synccheck, initcheck on the
#      kernel tests (quick shapes) and on a tiny --device cuda training run
#   4. backend parity: the tiny model 30 steps with dropout on, cpu and cuda
#      (fp32) on the same batches: per-step losses compared; and 100 steps
#      in bf16 against the cpu's fp32, in a band
#   5. world size 1 through NCCL: the tiny model 6 steps with --dist-alone,
#      unsharded and ZeRO-1, against the plain path: model.safetensors and
#      optimizer.safetensors compared with cmp, NCCL's log checked for a
#      communicator
#   6. a 200-step MiniLM fine-tune on the real-data subset, cpu and cuda (fp32,
#      then bf16) on the same batches: loss curves compared, samples/s of all
#   7. the training step, batch 32 x 128, DistilBERT-base and MiniLM dims:
#      genre's CUDA backend (model_bench: bf16, fp32, tf32) against HuggingFace's
#      model in PyTorch (bf16 autocast, eager and torch.compile): samples/s,
#      tokens/s, MFU, first-step latency, peak device memory, genre/eager and
#      genre/compile against the issue's targets (bench/step_bench_torch.py;
#      its rows also in step-bench.json beside the results file); about 8
#      minutes at most
# It stops at nothing: a failing step is recorded and the next one runs.
set -uo pipefail
cd "$(dirname "$0")/.."
pack=.gpu

pack() {
    set -e
    local bins=(bin/genre build/tests/kernels-gpu build/bench/model_bench)
    make -s -j"$(nproc)" "${bins[@]}"
    mkdir -p "$pack/debs" "$pack/data" "$pack/minilm"
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    # What bin/genre, the tests and the bench link that the GPU machine's image lacks.
    local debs
    debs=$(for b in "${bins[@]}"; do ldd "$b" | awk '/=>/{print $3}'; done | sort -u |
           xargs -n1 readlink -f | xargs -n1 dpkg -S 2>/dev/null | cut -d: -f1 | sort -u |
           grep -v -E '^(libc6|libgcc-s1|libstdc\+\+6|zlib1g)$' || true)
    (cd "$pack/debs" && apt-get download $debs > ../apt.log 2>&1) || { cat "$pack/apt.log" >&2; exit 1; }
    local data=${DATA:-../shared/data/movies}
    rm -rf "$pack/prepared"
    bin/genre prepare --data "$data" --out "$pack/prepared" >/dev/null
    cp "$pack/prepared/labels.txt" "$pack/data/"
    head -n 3200 "$pack/prepared/train.jsonl" > "$pack/data/train.jsonl"
    head -n 400 "$pack/prepared/val.jsonl" > "$pack/data/val.jsonl"
    head -n 400 "$pack/prepared/test.jsonl" > "$pack/data/test.jsonl"
    rm -rf "$pack/prepared"
    local minilm
    minilm=$(models/fetch-minilm)
    cp "$minilm/config.json" "$minilm/vocab.txt" "$pack/minilm/"
    .cache/venv/bin/python - "$minilm/model.safetensors" "$pack/minilm/model.safetensors" <<'PY'
import sys
from safetensors.numpy import load_file, save_file
t = load_file(sys.argv[1])
save_file({k: (v.astype("float16") if v.dtype.kind == "f" else v) for k, v in t.items()}, sys.argv[2],
          metadata={"format": "pt"})
PY
    mkdir -p "$pack/bin"
    cp "${bins[@]}" "$pack/bin/"
    du -sh "$pack"
    echo "device run: carry [\".gpu\"], command: bash bench/gpu-check.sh run"
}

# One step: its name, its command; outcome and time into the results file.
step() {
    local name=$1; shift
    local t0=$SECONDS
    echo "== $name" | tee -a "$res"
    if "$@" >> "$res" 2>&1; then echo "-- $name: ok ($((SECONDS - t0)) s)" | tee -a "$res"
    else echo "-- $name: FAILED, exit $? ($((SECONDS - t0)) s)" | tee -a "$res"; fi
}

# The per-step losses of a run's log, one per line.
losses() { sed -n 's/.*"loss": \([-0-9.e]*\).*/\1/p' "$1/log.jsonl"; }

# cpu (fp32) and cuda (at the precision named) runs of the same training,
# losses compared step by step: each within tol relative plus abs.
parity() { # name precision tol abs args...
    local name=$1 prec=$2 tol=$3 abs=$4; shift 4
    local dir=$work/$name
    "$pack"/bin/genre train --out "$dir-cpu" device=cpu "$@" >/dev/null 2>"$dir-cpu.err" || { cat "$dir-cpu.err"; return 1; }
    "$pack"/bin/genre train --out "$dir-cuda" device=cuda precision="$prec" "$@" >/dev/null 2>"$dir-cuda.err" ||
        { cat "$dir-cuda.err"; return 1; }
    paste <(losses "$dir-cpu") <(losses "$dir-cuda") | awk -v tol="$tol" -v abs="$abs" '
        { d = $1 - $2; if (d < 0) d = -d; r = d / ($1 > 1e-12 ? $1 : 1e-12); if (r > worst) worst = r; n++
          if (d > tol * ($1 < 0 ? -$1 : $1) + abs) bad++ }
        END { printf "%d steps, worst relative loss difference %.3g (tolerance %g relative + %g)\n", n, worst, tol, abs
              exit !(n > 0 && !bad) }'
    grep -h samples_per_s "$dir-cpu/log.jsonl" | tail -n 20 | sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p' |
        sort -n | awk '{a[NR]=$1} END {print "cpu samples/s (median of last 20):", a[int((NR+1)/2)]}'
    grep -h samples_per_s "$dir-cuda/log.jsonl" | tail -n 20 | sed -n 's/.*"samples_per_s": \([0-9.]*\).*/\1/p' |
        sort -n | awk '{a[NR]=$1} END {print "cuda samples/s (median of last 20):", a[int((NR+1)/2)]}'
}

# The same run alone through NCCL (--dist-alone), unsharded and sharded,
# against the plain path: the bytes of the plain run, and NCCL_DEBUG=INFO
# lines to show that NCCL made a communicator at all.
alone() { # args...
    local plain=$work/alone-plain how dir
    "$pack"/bin/genre train --out "$plain" device=cuda "$@" >/dev/null 2>"$plain.err" || { cat "$plain.err"; return 1; }
    for how in "" shard_optimizer=true; do
        dir=$work/alone-nccl${how:+-sharded}
        NCCL_DEBUG=INFO "$pack"/bin/genre train --out "$dir" --dist-alone device=cuda "$@" $how > "$dir.log" 2>&1 ||
            { cat "$dir.log"; return 1; }
        grep -q 'NCCL INFO' "$dir.log" || { echo "--dist-alone ${how:-unsharded}: NCCL logged nothing"; return 1; }
        cmp "$plain/last/model.safetensors" "$dir/last/model.safetensors" || return 1
        cmp "$plain/last/optimizer.safetensors" "$dir/last/optimizer.safetensors" || return 1
        echo "--dist-alone ${how:-unsharded}: model and optimizer state byte for byte the plain run's"
    done
}

# The training step, genre against PyTorch: model_bench (20 steps after one
# warm-up) for each model in bf16, fp32 and tf32, then bench/step_bench_torch.py
# (3 warm-up steps, 20 timed; eager and compiled, each run a process of its
# own, 7 minutes for them all: compiling takes about a minute a model),
# which prints the table with genre's outputs beside its own. A failed run
# leaves its row out (genre) or marks it (PyTorch), and the others still run.
step_bench() {
    local m p out args files=() rc=0
    for m in base minilm; do
        for p in bf16 fp32 tf32; do
            out=$work/model-bench-$m-$p.txt
            args=(32 128 20 adamw cuda $p)
            [ "$m" = base ] && args+=(base)
            echo "model_bench ${args[*]}:"
            if "$pack"/bin/model_bench "${args[@]}" > "$out"; then files+=(--genre "$out"); else rc=1; fi
            cat "$out"
        done
    done
    python3 bench/step_bench_torch.py --steps 20 --warmup 3 --budget-s 420 \
        --json "$(dirname "$res")/step-bench.json" "${files[@]}" || rc=1
    return $rc
}

# Whether the run's groups (none named: all) include $1.
want() { [ ${#groups[@]} -eq 0 ] || [[ " ${groups[*]} " == *" $1 "* ]]; }

run() {
    groups=("$@")
    local g
    for g in "${groups[@]}"; do
        case " kernels sanitizer parity nccl minilm stepbench " in
            *" $g "*) ;;
            *) echo "gpu-check: no group $g (kernels sanitizer parity nccl minilm stepbench)" >&2; exit 2 ;;
        esac
    done
    res=${OUT:-$pack}/gpu-check.txt
    work=$(mktemp -d)
    : > "$res"
    # The Debian runtime libraries, unpacked into a prefix (never over /).
    local prefix=/tmp/genre-debs
    for d in "$pack"/debs/*.deb; do dpkg -x "$d" "$prefix"; done
    export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu:$prefix/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
    # bin/genre links NCCL (too large to carry): the toolkit's if it has one,
    # else the one PyTorch's wheels bring.
    local nccl
    nccl=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
    [ -n "$nccl" ] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$nccl
    local sanitizer
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
    echo "gpu-check $(date -u +%Y-%m-%dT%H:%MZ)" >> "$res"
    step "device" bash -c 'set -e; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; .gpu/bin/genre --version'
    want kernels && step "kernels on the device" "$pack"/bin/kernels-gpu --jobs 1
    for tool in memcheck racecheck synccheck initcheck; do
        want sanitizer && step "compute-sanitizer $tool: kernels" env GENRE_KERNELS_QUICK=1 "$sanitizer" \
            --tool "$tool" --error-exitcode 1 "$pack"/bin/kernels-gpu --jobs 1
    done
    local tiny=(data=tests/fixtures/tiny_data init=tests/fixtures/tiny_init max_len=16 batch_size=4 lr=3e-3 seed=7)
    mkdir -p tests/fixtures/tiny_init tests/fixtures/tiny_data
    make_tiny
    for tool in memcheck racecheck synccheck initcheck; do
        want sanitizer && step "compute-sanitizer $tool: tiny training" "$sanitizer" --tool "$tool" \
            --error-exitcode 1 "$pack"/bin/genre train --out "$work/san-$tool" device=cuda "${tiny[@]}" max_steps=6
    done
    want parity && step "parity: tiny, 30 steps, dropout on" parity tiny fp32 1e-5 0 "${tiny[@]}" max_steps=30 epochs=3
    # bf16 against fp32: the band tests/sim/test_cli.c's bf16 test holds in the simulator
    want parity && step "parity: tiny bf16, 100 steps, dropout on" parity tiny-bf16 bf16 0.05 0.01 "${tiny[@]}" \
        max_steps=100 epochs=9
    want nccl && step "world 1 through NCCL: tiny, 6 steps" alone "${tiny[@]}" max_steps=6 grad_accum=2 \
        max_grad_norm=0.03
    local real=(data="$pack/data" init="$pack/minilm" max_len=64 batch_size=16 lr=1e-4 loss.type=focal max_steps=200
                limit_eval=200)
    want minilm && step "parity: MiniLM, 200 steps, real data" parity minilm fp32 1e-3 0 "${real[@]}"
    want minilm && step "parity: MiniLM bf16, 200 steps, real data" parity minilm-bf16 bf16 0.05 0.01 "${real[@]}"
    want stepbench && step "training step: genre against PyTorch eager and compiled" step_bench
    rm -rf "$work" tests/fixtures/tiny_init tests/fixtures/tiny_data
    echo "results in $res"
}

# The tiny fixture model with a 100-token vocabulary and a small dataset
# whose genres follow from its words (as tests/unit/test_train.c makes).
make_tiny() {
    cp tests/fixtures/tiny_distilbert/config.json tests/fixtures/tiny_distilbert/model.safetensors tests/fixtures/tiny_init/
    { printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n'; for i in $(seq 0 94); do echo "w$i"; done; } > tests/fixtures/tiny_init/vocab.txt
    printf 'Alpha\nBeta\nGamma\n' > tests/fixtures/tiny_data/labels.txt
    awk 'BEGIN { split("Alpha Beta Gamma", g, " "); x = 12345
        n["train"] = 48; n["val"] = 12; n["test"] = 12
        for (p in n) { f = "tests/fixtures/tiny_data/" p ".jsonl"
            for (i = 0; i < n[p]; i++) { a = i % 3; b = int(i / 3) % 3; t = ""
                for (w = 0; w < 6; w++) { x = (x * 1103515245 + 12345) % 4294967296
                    t = t (w ? " " : "") "w" (30 * (w < 4 ? a : b) + int(x / 65536) % 30) }
                l = "\"" g[a + 1] "\"" (b != a ? ", \"" g[b + 1] "\"" : "")
                printf "{\"title\": \"m%d\", \"year\": 2000, \"text\": \"%s\", \"labels\": [%s]}\n", i, t, l > f } } }'
}

case "${1:-}" in
    pack) pack ;;
    run) shift; run "$@" ;;
    *) echo "usage: bench/gpu-check.sh pack | run [GROUP...]" >&2; exit 2 ;;
esac
