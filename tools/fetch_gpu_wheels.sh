#!/usr/bin/env bash
# Download the wheels the lent GPU machine lacks (tools/gpu-wheels.txt) into .whl/, for its Python 3.12 on x86-64,
# so that tools/gpu_run.sh can execute lesson 06 there (the machine reaches no network). Run it here, then carry
# .whl (git-ignored) in the device call.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl -r tools/gpu-wheels.txt
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1) in .whl/"
