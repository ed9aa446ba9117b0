"""Execute a notebook top to bottom in one kernel and save it with its outputs, for a machine without Jupyter's
command line (the lent GPU machine has nbclient only as carried wheels).

    python tools/execute_notebook.py notebooks/06_googlenet_training.ipynb OUT/06_googlenet_training.ipynb

The kernel starts in the notebook's own folder, as JupyterLab starts it. The executed notebook is written
even when a cell fails (the error is then its last output), so that a failed run still shows how far it got.
"""
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def execute(source, target, timeout=3600):
    """Run ``source`` and write it, outputs included, to ``target``; returns True when every cell ran."""
    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(Path(source).resolve().parent)}})
    started, ok = time.monotonic(), True
    try:
        client.execute()
    except CellExecutionError as error:
        ok = False
        print(f"a cell failed: {str(error)[-2000:]}", file=sys.stderr)
    finally:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, target)
        print(f"{source} -> {target}: {'every cell ran' if ok else 'STOPPED AT AN ERROR'}, "
              f"{time.monotonic() - started:.0f} s")
    return ok


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python tools/execute_notebook.py NOTEBOOK OUTPUT")
    sys.exit(0 if execute(sys.argv[1], sys.argv[2]) else 1)
