"""The speed check runs and prints a throughput per model (numbers are not asserted: machines differ)."""
import re

from utils import benchmark


def test_benchmark_prints_throughput(capsys):
    benchmark.main(["--model", "tiny_cnn", "--batch-size", "8", "--batches", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert re.search(r"augment \(crop\+flip\):\s+[\d,]+ img/s", out)
    assert re.search(r"tiny_cnn:\s+[\d,]+ img/s training \(94,538 params\)", out)
