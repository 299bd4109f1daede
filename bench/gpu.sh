#!/usr/bin/env bash
# The GPU benchmarks, run in one command on a machine with a CUDA GPU (written for the lent H100 of
# the device tool, whose Python has torch but not every vaekit dependency and no network):
#
#   bash bench/gpu.sh STEP...      steps: setup smoke throughput capture moses-smiles moses-selfies pytest family ldm
#                                         reproduce (issue 18's suite in under ten minutes: bench/reproduce.py)
#
# Offline inputs, when the machine lacks them: wheels in .whl/ (pydantic, pydantic-core,
# annotated-types, typing-inspection, selfies), and in .gpu/ the MOSES files
# (.gpu/moses/dataset/data/{train,test}.csv.gz, from the molsets wheel) and Debian's Fashion-MNIST
# files (.gpu/fashion-mnist/*.gz). Results go to $OUT (default bench/results/gpu); MOSES training
# gets MOSES_MINUTES minutes per model (default 5); molecules are measured later with RDKit:
#   python bench/molecules.py --evaluate bench/results/gpu/moses_smiles.json
set -uo pipefail
OUT=${OUT:-bench/results/gpu}
MINUTES=${MOSES_MINUTES:-5}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 TORCHINDUCTOR_CACHE_DIR=$PWD/.torchinductor
log() { echo "== $* ($(date -u +%H:%M:%S))"; }

setup() {
    if ls .whl/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
        export PYTHONPATH=/tmp/site
    fi
    if [ -d .gpu/moses ]; then export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/.gpu; fi  # found, never imported
    if [ -d .gpu/fashion-mnist ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then
        mkdir -p /usr/share/datasets && cp -r .gpu/fashion-mnist /usr/share/datasets/
    fi
    python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
        || export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv
    python3 -c "import torch, vaekit; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name(), 'vaekit', vaekit.__version__)"
}

smoke() {  # every family member's step on the GPU, each in its own process, and the CLI end to end
    rm -rf /tmp/smoke /tmp/smoke-run  # a machine still warm from an earlier call keeps them
    python3 -c "from vaekit.presets import PRESETS; print(*sorted(PRESETS))" | tr ' ' '\n' | \
        xargs -P 8 -I{} timeout 150 python3 bench/gpu_smoke.py {}
    python3 -m vaekit train --data digits --set train.epochs=2 --device cuda --out /tmp/smoke-run >/dev/null && \
        python3 -m vaekit sample /tmp/smoke-run --n 16 --out /tmp/smoke.png && echo "CLI ok"
}

throughput() {
    timeout 240 python3 bench/train_throughput.py --device cuda --epochs 6 --models mlp,conv \
        --contenders vaekit,vaekit-unfused-adam,minimal --out "$OUT/train_throughput_gpu.json"
}

capture() {  # issue 18: the captured step against the eager one (same loss curves?), then their throughput
    timeout 120 python3 -m pytest -q -rf -p no:cacheprovider tests/unit/test_capture.py  # its CUDA cases too
    timeout 170 python3 bench/capture_check.py --device cuda --data fashion-mnist --samples 53760 \
        --out "$OUT/capture_check.json"
    timeout 240 python3 bench/train_throughput.py --device cuda --epochs 4 --models mlp,conv \
        --contenders vaekit-eager,vaekit-captured --out "$OUT/train_throughput_capture.json"
}

moses() {
    timeout $(( MINUTES * 60 + 200 )) python3 bench/molecules.py --tokens "$1" --train 0 --epochs 100 \
        --max-minutes "$MINUTES" --batch-size 512 --kl-warmup-epochs 1 --device cuda --runs /tmp/moses_runs \
        --out "$OUT/moses_$1.json"
}

family() {  # issue 16's goals, every run in parallel: hvae vs vae at equal parameters, cvae's classes
    local epochs=${FAMILY_EPOCHS:-50} k=${FAMILY_K:-1000} cvae_epochs=${CVAE_EPOCHS:-10} data=${FAMILY_DATA:-fashion-mnist}
    local dir=/tmp/family; rm -rf $dir; mkdir -p $dir
    local wide="model.hidden=[716, 358]"  # the vae's widths at the hvae's parameter count (1.673 M vs 1.676 M)
    local warm="train.kl_warmup=linear" bal="model.kl_balance=true" bn="model.norm=batch"
    local budget="train.max_minutes=${FAMILY_TRAIN_MINUTES:-5.5}"  # a safety net: epochs_trained says if it cut
    nll() { local name=$1 preset=$2; shift 2; local sets=(); for s in "$@"; do sets+=(--set "$s"); done
        timeout "${FAMILY_SECONDS:-480}" python3 bench/family_nll.py --data "$data" --epochs "$epochs" --k "$k" \
            --presets "$preset" \
            "${sets[@]}" --set "$budget" --out $dir/nll_$name.json > $dir/nll_$name.log 2>&1 & }
    if [ "${FAMILY_ROWS:-main}" = main ]; then
        nll vae vae
        nll vae-wide vae "$wide"
        nll vae-wide-warm vae "$wide" "$warm"
        nll vae-wide-bn-warm vae "$wide" "$bn" "$warm"
        nll hvae hvae
        nll hvae-warm hvae "$warm"
        nll hvae-warm-balance hvae "$warm" "$bal"
        nll hvae-bn-warm hvae "$bn" "$warm"
        nll hvae-bn-warm-balance hvae "$bn" "$warm" "$bal"
        for prior in standard_normal class_conditional; do
            timeout "${FAMILY_SECONDS:-480}" python3 bench/cvae_classes.py --data "$data" --epochs "$cvae_epochs" \
                --set model.prior=$prior ${CVAE_ARGS:-} --out $dir/cvae_$prior.json > $dir/cvae_$prior.log 2>&1 &
        done
    else  # second round: three layers at equal parameters, and seed 1 for the noise
        local wide3="model.hidden=[818, 409]"  # the vae at the 3-layer hvae's parameter count (1.994 M vs 1.997 M)
        nll hvae3-warm hvae model.stochastic_layers=3 "$warm"
        nll vae-wide3 vae "$wide3"
        nll hvae-warm-seed1 hvae "$warm" train.seed=1
        nll vae-wide-seed1 vae "$wide" train.seed=1
        timeout "${FAMILY_SECONDS:-480}" python3 bench/cvae_classes.py --data "$data" --epochs "$cvae_epochs" \
            --set model.prior=class_conditional --seed 1 --out $dir/cvae_class_conditional_seed1.json \
            > $dir/cvae_class_conditional_seed1.log 2>&1 &
    fi
    wait
    python3 - "$dir" "$OUT/family.json" <<'PY'
import json, pathlib, sys
folder, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
results = {}
for path in sorted(folder.glob("*.log")):
    report = path.with_suffix(".json")
    results[path.stem] = json.loads(report.read_text()) if report.exists() else {"log_tail": path.read_text()[-1500:]}
out.write_text(json.dumps(results, indent=1))
for name, r in results.items():
    rows = r.get("rows") or [{k: r.get(k) for k in ("classifier_test_accuracy", "reconstruction_accuracy")} |
                             {"generated": {t: v["accuracy"] for t, v in r.get("generated", {}).items()}}]
    print(name, json.dumps(rows) if "log_tail" not in r else "FAILED: " + r["log_tail"][-600:])
PY
}

for step in "$@"; do
    log "$step"
    case $step in
        setup) setup ;;
        smoke) smoke ;;
        throughput) throughput ;;
        capture) capture ;;
        moses-smiles) moses smiles ;;
        moses-selfies) moses selfies ;;
        family) family ;;
        ldm) for b in 8 16; do timeout 240 python3 bench/ldm_throughput.py --device cuda --side 256 --batch $b \
                 --images 256 --out "$OUT/ldm_throughput_b$b.json"; done ;;  # issue 21: SD-size kl-f8 at 256x256
        reproduce) timeout 590 python3 bench/reproduce.py --minutes "${REPRODUCE_MINUTES:-9.5}" --out "$OUT" ;;
        pytest) timeout "${PYTEST_SECONDS:-300}" python3 -m pytest -q -rf tests/unit tests/cli \
                    -p no:cacheprovider 2>&1 | tail -60 ;;  # "auto" is the GPU here: CUDA paths of the suite
        *) echo "unknown step $step"; exit 2 ;;
    esac
    log "$step done: exit $?"
done
