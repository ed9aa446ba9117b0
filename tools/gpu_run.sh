#!/usr/bin/env bash
# Lesson 06's GPU part, in at most two commands on a lent GPU machine (one H100/H200, about 15 minutes of
# device time in all, one command at most 10 minutes):
#
#   tools/gpu_run.sh notebook OUT      # lesson 06 executed in full mode, one top-to-bottom run: OUT/06_googlenet_training.ipynb
#   tools/gpu_run.sh benchmarks OUT    # python -m utils.benchmark --ablation --compare-torchvision (224x224, same
#                                      #   settings), then the T4 path (15 GB cap, fp16 + GradScaler): OUT/benchmark.json, OUT/t4.json
#   tools/gpu_run.sh all OUT           # both, in one command
#   tools/gpu_run.sh --dry-run all OUT # the same on this machine's CPU with tiny sizes and no compile: a check of
#                                      #   the script itself, not a measurement (tests/test_gpu_run.py runs it)
#
# Prepare here first (the GPU machine reaches no network): tools/fetch_gpu_wheels.sh (Jupyter's kernel stack as
# wheels for its Python 3.12, into .whl/), and the offline CIFAR-10 copy into .gpu/ (both git-ignored):
#   mkdir -p .gpu && cp ../shared/data/cifar10-jpeg.zip ../shared/data/unpack_cifar10.py .gpu/
# then call the device tool with carry [".whl", ".gpu"] and a command such as
#   set -o pipefail; PYTHONUNBUFFERED=1 tools/gpu_run.sh notebook $OUT 2>&1 | tee $OUT/notebook.log
# Afterwards commit OUT/06_googlenet_training.ipynb as notebooks/06_googlenet_training.ipynb and the JSON files
# in results/ (lesson 06 reads them).
set -euo pipefail
cd "$(dirname "$0")/.."
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then dry_run=1; shift; fi
what=${1:?usage: tools/gpu_run.sh [--dry-run] notebook|benchmarks|all OUT}
out=${2:?usage: tools/gpu_run.sh [--dry-run] notebook|benchmarks|all OUT}
mkdir -p "$out"
started=$SECONDS
python=${PYTHON:-python3}  # the machine's Python (the GPU machine's python3 holds torch); tests pass their own
say() { echo "=== $* ($((SECONDS - started)) s)"; }

if [ "$dry_run" = 0 ] && ls .whl/*.whl >/dev/null 2>&1; then  # the carried wheels (for the GPU machine's Python 3.12)
  say "installing the carried wheels into /tmp/site"
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$dry_run" = 0 ] && [ -f .gpu/cifar10-jpeg.zip ]; then  # the offline CIFAR-10 copy, carried
  "$python" .gpu/unpack_cifar10.py .data/cifar10
  export COURSE_DATA_DIR="$PWD/.data/cifar10"
fi
"$python" -c "import torch; print('torch', torch.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"

if [ "$dry_run" = 1 ]; then
  export COURSE_SMOKE=1 CUDA_VISIBLE_DEVICES=""
  bench=(--device cpu --model tiny_cnn --batches 1 --batch-size 2)
  t4=(--device cpu --dry-run --epochs 1)
else
  export COURSE_SMOKE=0
  bench=(--precision auto --channels-last)
  t4=()
fi

status=0
if [ "$what" = notebook ] || [ "$what" = all ]; then
  say "lesson 06, executed top to bottom (COURSE_SMOKE=$COURSE_SMOKE)"
  "$python" tools/execute_notebook.py notebooks/06_googlenet_training.ipynb "$out/06_googlenet_training.ipynb" || status=1
fi
if [ "$what" = benchmarks ] || [ "$what" = all ]; then
  say "benchmark: the ablation and ours against torchvision's GoogLeNet at 224x224"
  "$python" -m utils.benchmark --ablation --compare-torchvision "${bench[@]}" --json "$out/benchmark.json" || status=1
  say "the T4 path: memory capped at 15 GB, fp16 + GradScaler, the batch the memory estimate picks"
  "$python" -m utils.benchmark --t4 "${t4[@]}" --json "$out/t4.json" || status=1
fi
say "done, exit status $status"
exit $status
