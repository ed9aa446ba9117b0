"""Mutation testing of utils' pure logic with mutmut, scored against the survivors justified in writing.

    pip install "mutmut>=3.8.1"                # once; not in requirements.txt (Linux or macOS: mutmut forks)
    python tests/mutmut_run.py                 # every mutant in scope, then the score (hours on 2 cores)
    python tests/mutmut_run.py train explain   # only these parts of the scope (SCOPE's keys below)
    python tests/mutmut_run.py --quick         # QUICK below: about 120 mutants whose tests are fast
    python tests/mutmut_run.py --score         # the score of the last run, running nothing

mutmut (configured in pyproject.toml, [tool.mutmut]) copies utils/ and tests/ into mutants/ (git-ignored),
rewrites every function of the modules it mutates into a switch between the original and each of its mutants
(an operator flipped, a constant changed, an argument dropped, ...), and runs, for each mutant, the unit tests
that call that function, stopping at the first failure. A mutant no test fails "survives".

The scope is the course's pure logic: all of utils/stats.py, cost.py, data.py and explain.py, and in
utils/train.py the loss, the learning-rate schedule and the optimizer (:data:`SCOPE`). Every survivor is either
killed by a test (checked against an independent source: a hand computation, a paper, torch itself) or
justified in tests/mutation_survivors.md: equivalent to the original, a speed or memory choice that no
caller can observe in a result (a chunk size, an integer width that never overflows), or a change seen only
on a CUDA GPU, which a named test fails where a GPU is (it skips on a CPU). Each justification
names the mutant and a piece of the line it writes, and this script checks that the named mutant still writes
it, so that a justification cannot drift onto another mutant when a function changes and mutmut renumbers
its mutants.

Exit status 0 when every mutant in the chosen scope was run and is killed or justified; 1 otherwise, listing
each unjustified survivor with its diff (``mutmut show NAME`` prints one again). tests/mutation_check.py is
the other, hand-written mutation check: realistic bugs in every module, train's loop and the models included.
"""
import argparse
import re
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JUSTIFIED = ROOT / "tests" / "mutation_survivors.md"

#: mutmut's mutant names are "<module>.x_<function>__mutmut_<n>", "<module>.xǁ<Class>ǁ<method>__mutmut_<n>".
SCOPE = {
    "stats": ["utils.stats.*"],
    "cost": ["utils.cost.*"],
    "data": ["utils.data.*"],
    "explain": ["utils.explain.*"],
    "train": [f"utils.train.x_{function}__mutmut_*" for function in
              ("classification_loss", "_losses", "make_optimizer", "make_schedule", "_momentum_cycle")],
}
#: The quick subset: functions whose tests are fast and whose mutants a wrong test would let through (the loss with
#: and without aux heads, the one-cycle momentum range, McNemar and the verdict's rules, the CAM arithmetic).
QUICK = [f"utils.train.x_{name}__mutmut_*" for name in ("classification_loss", "_losses", "_momentum_cycle")] + [
    "utils.stats.x_mcnemar_exact__mutmut_*", "utils.stats.xǁComparisonǁreasons__mutmut_*",
    "utils.explain.x_class_activation_maps__mutmut_*"]
#: What mutmut reports for a mutant that a test detected (a failure, a hang past its time limit, a crash).
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}


def mutmut(*arguments, **options):
    return subprocess.run([sys.executable, "-m", "mutmut", *arguments], cwd=ROOT, text=True, **options)


def results(patterns):
    """{mutant name: status} of every mutant matching ``patterns``, from mutmut's last run."""
    listing = mutmut("results", "--all", "true", capture_output=True, check=True).stdout
    found = dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+)$", listing, re.M))
    return {name: status.strip() for name, status in found.items() if any(fnmatch(name, p) for p in patterns)}


def added_lines(name):
    """The lines mutant ``name`` writes (its diff's + lines, whitespace collapsed)."""
    diff = mutmut("show", name, capture_output=True, check=True).stdout
    return [" ".join(line[1:].split()) for line in diff.splitlines() if line.startswith("+") and
            not line.startswith("+++")]


def justifications():
    """{mutant name: the piece of code its justification says it writes}, from tests/mutation_survivors.md.

    One line per mutant: - `utils.stats.xǁComparisonǁreport__mutmut_8` writes `... and False` (why)"""
    entries = re.findall(r"^- `(\S+__mutmut_\d+)` writes `(.+?)`", JUSTIFIED.read_text(), re.M)
    return {name: " ".join(code.split()) for name, code in entries}


def score(patterns):
    statuses = results(patterns)
    justified = justifications()
    unchecked = sorted(name for name, status in statuses.items() if status in ("not checked", "skipped"))
    survivors = sorted(name for name, status in statuses.items() if status not in DETECTED and name not in unchecked)
    detected = len(statuses) - len(survivors) - len(unchecked)
    unjustified, stale = [], []
    for name in survivors:
        if name not in justified:
            unjustified.append(name)
        elif not any(justified[name] in line for line in added_lines(name)):
            stale.append(name)
    wrongly_listed = sorted(name for name in justified if name in statuses and statuses[name] in DETECTED)
    total = len(statuses)
    print(f"\nmutmut, {total} mutants in scope: {detected} killed ({100 * detected / max(total, 1):.1f}%), "
          f"{len(survivors)} survived, {len(survivors) - len(unjustified) - len(stale)} of them justified in "
          f"{JUSTIFIED.relative_to(ROOT)}" + (f"; {len(unchecked)} not run" if unchecked else ""))
    for name in unjustified:
        print(f"\nUNJUSTIFIED survivor ({statuses[name]}): {name}")
        print("\n".join("    " + line for line in mutmut("show", name, capture_output=True).stdout.splitlines()[2:]))
    for name in stale:
        print(f"\nSTALE justification: {name} no longer writes `{justified[name]}`; mutmut renumbered its function's "
              f"mutants: find the mutant that does (mutmut show), or remove the entry")
    for name in wrongly_listed:
        print(f"\nNo longer a survivor (a test kills it now): remove {name} from {JUSTIFIED.relative_to(ROOT)}")
    for name in unchecked[:10]:
        print(f"not run: {name}")
    return 1 if unjustified or stale or unchecked else 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help=f"parts of the scope to run: {', '.join(SCOPE)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="only the quick subset (QUICK)")
    parser.add_argument("--score", action="store_true", help="only report the last run's results")
    parser.add_argument("--max-children", type=int, default=2, help="mutants run at once (default 2)")
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in SCOPE]
    if unknown:
        parser.error(f"unknown part {', '.join(unknown)}: choose from {', '.join(SCOPE)}")
    if args.quick and args.parts:
        parser.error("--quick is its own subset: give it no parts")
    patterns = QUICK if args.quick else [p for part in (args.parts or SCOPE) for p in SCOPE[part]]
    if not args.score:
        started = time.monotonic()
        run = mutmut("run", "--max-children", str(args.max_children), *patterns)
        print(f"\nmutmut run took {(time.monotonic() - started) / 60:.0f} minutes")
        if run.returncode:
            return run.returncode
    return score(patterns)


if __name__ == "__main__":
    sys.exit(main())
