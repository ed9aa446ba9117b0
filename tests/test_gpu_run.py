"""tools/gpu_run.sh, the prepared GPU run of lesson 06, tried end to end on the CPU (--dry-run): tiny sizes, no
compile, every step and every output file, so that the first command on a lent GPU does not fail on a typo."""
import json
import os
import subprocess
import sys

import nbformat
import pytest

from utils.config import REPO_ROOT


@pytest.mark.skipif(not os.environ.get("COURSE_DATA_DIR"), reason="needs the offline CIFAR-10 copy in COURSE_DATA_DIR")
def test_the_gpu_run_script_runs_end_to_end_on_a_cpu(tmp_path):
    run = subprocess.run(["bash", "tools/gpu_run.sh", "--dry-run", "all", str(tmp_path)], cwd=REPO_ROOT,
                         env={**os.environ, "PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "done, exit status 0" in run.stdout
    notebook = nbformat.read(tmp_path / "06_googlenet_training.ipynb", as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    assert all(cell.execution_count for cell in code)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    benchmark = json.loads((tmp_path / "benchmark.json").read_text())
    assert benchmark["ablation"] and len(benchmark["compare_torchvision"]) == 2
    t4 = json.loads((tmp_path / "t4.json").read_text())["t4"]
    assert t4["batch_size"] in (8, 16) and "dry run" in t4["label"]
