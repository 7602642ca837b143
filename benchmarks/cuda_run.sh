#!/usr/bin/env bash
# Everything symkl measures on a GPU, in one call, for a machine with a CUDA device and
# torch, sympy, mpmath, numpy, rich, pytest and hypothesis installed (symkl itself is
# used from this checkout, not installed):
#   1. the CUDA tests (pytest -m cuda),
#   2. `symkl verify --all --device all` (CPU and CUDA against the same references),
#   3. benchmarks/accuracy.py --device cuda  -> docs/accuracy-cuda.md,
#   4. benchmarks/speed.py --device cuda     -> docs/speed-cuda.md.
# 1-3 are CPU-heavy (mpmath references, eager calls); they run while speed.py's processes
# compile (also CPU work), and speed.py starts timing only once they are done (--gate).
# Logs and outputs go to $OUT (default ./cuda-run). Every part has its own time limit, so
# one failure leaves the others' results. PARTS selects parts (default: all four).
#
#     SYMKL_REVISION=$(git rev-parse --short=12 HEAD) bash benchmarks/cuda_run.sh
#     PARTS="tests speed" bash benchmarks/cuda_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/cuda-run}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 SYMKL_CACHE_DIR=${SYMKL_CACHE_DIR:-/tmp/symkl-cache}
GATE=$(mktemp -u)
LIMIT=${LIMIT:-480}  # seconds for the whole script
PARTS=${PARTS:-tests verify accuracy speed}
want() { [[ " $PARTS " == *" $1 "* ]]; }

nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1
$PY -c "import platform, torch, sympy, mpmath, numpy; print('python', platform.python_version(), \
'torch', torch.__version__, 'cuda', torch.version.cuda, 'sympy', sympy.__version__, \
'mpmath', mpmath.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())" \
    | tee "$OUT/versions.txt"

# The compiles: one process per (pair, dtype, mode); inductor's own compile workers off, so
# that 20 processes do not start 16 workers each.
if want speed; then
    (cd benchmarks && TORCHINDUCTOR_COMPILE_THREADS=1 timeout $((LIMIT - 20)) \
        $PY speed.py --device cuda --gate "$GATE") >"$OUT/speed.log" 2>&1 &
    speed=$!
fi
if want tests; then
    # -o addopts: the project's `-n auto` needs pytest-xdist, which a GPU machine may not have
    timeout 300 $PY -m pytest -o addopts=-ra -m cuda -q -p no:cacheprovider tests >"$OUT/pytest-cuda.log" 2>&1 &
    tests=$!
fi
if want verify; then
    timeout 360 $PY -m symkl verify --all --device all --workers 4 --json "$OUT/verification-cuda.json" \
        --markdown "$OUT/verification-cuda.md" >"$OUT/verify.log" 2>&1 &
    verify=$!
fi
if want accuracy; then
    (cd benchmarks && timeout 360 $PY accuracy.py --device cuda --jobs 4) >"$OUT/accuracy.log" 2>&1 &
    accuracy=$!
fi

for job in tests verify accuracy; do
    want $job || continue
    wait "${!job}"
    echo "$job exit $? at ${SECONDS}s" | tee -a "$OUT/status.txt"
done
touch "$GATE"
if want speed; then
    wait "$speed"
    echo "speed exit $? at ${SECONDS}s" | tee -a "$OUT/status.txt"
fi
rm -f "$GATE"

cp docs/speed-cuda.md docs/accuracy-cuda.md "$OUT/" 2>/dev/null
tail -n 3 "$OUT/pytest-cuda.log"
grep -E "units|failed|passed" "$OUT/verify.log" | tail -n 3
grep -A 12 "Where symkl misses" "$OUT/accuracy-cuda.md" 2>/dev/null
sed -n '/## Ratios/,/## First call/p' "$OUT/speed-cuda.md" 2>/dev/null
tail -n 5 "$OUT/speed.log"
