"""Mutation check: inject realistic bugs into utils one at a time and make sure a test fails for each.

    python tests/mutation_check.py            # every mutant (about 20 minutes on 2 cores)
    python tests/mutation_check.py aux1 lrn   # only the mutants whose name contains one of these words

Each mutant is a small text replacement in a copy of the repository (the working tree is never
touched), followed by the tests most likely to catch it. A mutant that no test catches
"survives": the suite would not notice that bug, so write a test that fails on it, checked
against an independent source (the paper, torchvision, a hand computation). Exit status 1 if
any mutant survives.
"""
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (name, file, [(old, new), ...], tests to run)
MUTANTS = [
    ("aux1 after 4b instead of 4a", "utils/models.py",
     [("        x = self.inception4a(x)\n", "        x = self.inception4b(self.inception4a(x))\n"),
      ("self.inception4d(self.inception4c(self.inception4b(x)))", "self.inception4d(self.inception4c(x))")],
     "tests/test_models.py"),
    ("aux head dropout 0.7 -> 0", "utils/models.py", [("aux_dropout=0.7,", "aux_dropout=0.0,")],
     "tests/test_models.py"),
    ("aux head without the ReLU after fc1", "utils/models.py",
     [("self.dropout(F.relu(self.fc1(torch.flatten(x, 1)), inplace=True))",
       "self.dropout(self.fc1(torch.flatten(x, 1)))")],
     "tests/test_models.py"),
    ("lrn alpha not scaled for PyTorch", "utils/models.py", [("alpha=LRN_SIZE * LRN_ALPHA", "alpha=LRN_ALPHA")],
     "tests/test_models.py"),
    ("lrn constants changed", "utils/models.py", [("LRN_SIZE, LRN_ALPHA = 5, 1e-4", "LRN_SIZE, LRN_ALPHA = 5, 2e-4")],
     "tests/test_models.py"),
    ("separable conv1 without depth multiplier 8", "utils/models.py",
     [("depth_multiplier=8,\n", "depth_multiplier=4,\n")],
     "tests/test_models.py"),
    ("fit's default aux weight 0.3 -> 0.5", "utils/train.py",
     [('schedule="onecycle", aux_weight=0.3, label_smoothing=0.0, device=None,',
       'schedule="onecycle", aux_weight=0.5, label_smoothing=0.0, device=None,')], "tests/test_train.py"),
    ("label smoothing dropped for the aux heads", "utils/train.py",
     [("aux_weight * F.cross_entropy(head, targets, label_smoothing=label_smoothing)",
       "aux_weight * F.cross_entropy(head, targets)")], "tests/test_train.py"),
    ("label smoothing dropped for the main head (and a single-head model)", "utils/train.py",
     [("main_loss = F.cross_entropy(main, targets, label_smoothing=label_smoothing)",
       "main_loss = F.cross_entropy(main, targets)")], "tests/test_train.py"),
    ("main-head loss logged with the aux losses", "utils/train.py",
     [("train_main_loss=epoch.main_loss_sum / seen", "train_main_loss=epoch.loss_sum / seen")],
     "tests/test_train.py"),
    ("make_optimizer's default momentum 0.9 -> 0", "utils/train.py",
     [('def make_optimizer(model, name="sgd", lr=0.05, weight_decay=5e-4, momentum=0.9):',
       'def make_optimizer(model, name="sgd", lr=0.05, weight_decay=5e-4, momentum=0.0):')], "tests/test_train.py"),
    ("gradients accumulate across steps (no zero_grad)", "utils/train.py",
     [("opt.zero_grad(set_to_none=True)", "pass")], "tests/test_train.py"),
    ("evaluate leaves the model in eval mode", "utils/train.py",
     [("    finally:\n        model.train(was_training)\n    if not labels:",
       "    finally:\n        pass\n    if not labels:")],
     "tests/test_train.py"),
    ("evaluate returns the summed loss", "utils/train.py",
     [('"loss": total_loss.item() / n', '"loss": total_loss.item()')], "tests/test_train.py"),
    ("bf16 ignored by fit", "utils/train.py",
     [("    precision = resolve_precision(precision, device, bf16)\n    rank, world",
       "    precision = resolve_precision(precision, device)\n    rank, world")], "tests/test_train.py"),
    ("channels_last ignored by fit", "utils/train.py",
     [("    if channels_last:\n        raw.to(memory_format", "    if False:\n        raw.to(memory_format"),
      ("                x = x.contiguous(memory_format=torch.channels_last)\n",
       "                pass\n")], "tests/test_train.py"),
    ("one-cycle schedule ignored by fit", "utils/train.py",
     [("sched=make_schedule(opt, schedule, epochs * steps_per_epoch)",
       'sched=make_schedule(opt, "constant", epochs * steps_per_epoch)')], "tests/test_train.py"),
    ("momentum ignored by fit", "utils/train.py",
     [("opt = make_optimizer(raw, optimizer, lr, weight_decay, momentum)",
       "opt = make_optimizer(raw, optimizer, lr, weight_decay, 0.0)")], "tests/test_train.py"),
    ("no check for a NaN loss", "utils/train.py", [("if not math.isfinite(loss):", "if False:")],
     "tests/test_train.py"),
    ("a host sync every step", "utils/train.py", [("if window.steps >= run.log_every or", "if window.steps >= 1 or")],
     "tests/test_train.py"),
    ("checkpoint written in place, not atomically", "utils/checkpoint.py",
     [("        torch.save(obj, temporary)\n        os.replace(temporary, path)", "        torch.save(obj, path)")],
     "tests/test_train.py"),
    ("budget-cut epoch saved as complete", "utils/train.py",
     [("    if epoch.stopped:\n        save_checkpoint(", "    if False:\n        save_checkpoint(")],
     "tests/test_train.py"),
    ("fit's settings not checked before training", "utils/train.py",
     [("    _check_settings(epochs=epochs,", "    (lambda **settings: None)(epochs=epochs,")], "tests/test_train.py"),
    ("an existing checkpoint overwritten unasked", "utils/train.py",
     [("    if exists and not (resume or overwrite):", "    if False:")], "tests/test_train.py"),
    ("resume=True without a checkpoint starts silently", "utils/train.py",
     [('        say(f"no checkpoint at {checkpoint} yet', '        (f"no checkpoint at {checkpoint} yet')],
     "tests/test_train.py"),
    ("Ctrl-C saves nothing", "utils/train.py",
     [("        _save(checkpoint, run, raw, epoch, history, loader)\n    say(", "        pass\n    say(")],
     "tests/test_train.py"),
    ("Ctrl-C can cut a weights update", "utils/train.py",
     [("    with _uninterrupted():  # a Ctrl-C here waits", "    if True:  # a Ctrl-C here waits")],
     "tests/test_train.py"),
    ("Ctrl-C mid-forward keeps half-updated batch-norm statistics", "utils/train.py",
     [("            torch._foreach_copy_(self.buffers, self.copies)", "            pass")], "tests/test_train.py"),
    ("auto precision trusts is_bf16_supported (bf16 on a T4)", "utils/train.py",
     [('return "bf16" if torch.cuda.get_device_capability(device) >= (8, 0) else "fp16"',
       'return "bf16" if torch.cuda.is_bf16_supported() else "fp16"')], "tests/test_train.py"),
    ("one-cycle cycles around 0.9 whatever the momentum", "utils/train.py",
     [('    centre = group["betas"][0] if "betas" in group else group["momentum"]', "    centre = 0.9")],
     "tests/test_train.py"),
    ("no forecast after the first epoch", "utils/train.py", [("            say(_forecast(", "            (_forecast(")],
     "tests/test_train.py"),
    ("no compile timer", "utils/train.py", [("compiling = run.compiled and", "compiling = False and")],
     "tests/test_train.py"),
    ("a failed save raises torch's bare error", "utils/checkpoint.py",
     [("    except (OSError, RuntimeError) as error:", "    except ZeroDivisionError as error:")],
     "tests/test_train.py"),
    ("--resume without a checkpoint starts a new run", "utils/cli.py",
     [("    if args.resume and not exists:", "    if False:")], "tests/test_train_cli.py"),
    ("the command line shows tracebacks", "utils/cli.py",
     [("        if args.traceback or failure is None:", "        if True:")], "tests/test_train_cli.py"),
    ("DeviceLoader does not reshuffle between epochs", "utils/data.py",
     [("torch.randperm(n, generator=self.generator, device=self.device)",
       "torch.randperm(n, generator=torch.Generator(device=self.device).manual_seed(0), device=self.device)")],
     "tests/test_data.py"),
    ("data cache keyed by folder path only", "utils/data.py",
     [("else _manifest_key(dataset)", 'else hashlib.sha1(str(dataset.root).encode()).hexdigest()[:16]')],
     "tests/test_data.py"),
    ("benchmark.train_throughput returns 0", "utils/benchmark.py",
     [("    return history.images_per_second[-1]", "    return 0.0")], "tests/test_benchmark.py"),
    ("compare_models ignores its interval", "utils/stats.py", [("        if low <= 0 <= high:", "        if False:")],
     "tests/test_stats.py"),
    ("compare_models uses seed 0 alone", "utils/stats.py",
     [('_as_seed_matrix(predictions_a, n, "predictions_a") == labels',
       '_as_seed_matrix(predictions_a, n, "predictions_a")[:1] == labels'),
      ('_as_seed_matrix(predictions_b, n, "predictions_b") == labels',
       '_as_seed_matrix(predictions_b, n, "predictions_b")[:1] == labels')], "tests/test_stats.py"),
    ("compare_models resamples test images only", "utils/stats.py",
     [("np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)", "per_seed.mean(axis=1)")], "tests/test_stats.py"),
    ("compare_models names a winner from two seeds", "utils/stats.py", [("MIN_SEEDS = 3", "MIN_SEEDS = 2")],
     "tests/test_stats.py"),
    ("McNemar one-sided", "utils/stats.py", [("stats.binomtest(only_a_right, n, 0.5).pvalue",
                                              "stats.binomtest(only_a_right, n, 0.5, alternative='greater').pvalue")],
     "tests/test_stats.py"),
    ("cam in train mode", "utils/explain.py",
     [("    was_training = model.training\n    model.eval()\n", "    was_training = model.training\n")],
     "tests/test_explain.py"),
    ("the widely copied wrong CIFAR-10 std", "utils/data.py",
     [("CIFAR10_STD = (0.2470, 0.2435, 0.2616)", "CIFAR10_STD = (0.2023, 0.1994, 0.2010)")], "tests/test_data.py"),
    ("test loader reads the train split", "utils/data.py",
     [('test_x, test_y = cifar10_subset("test", test_per_class, seed)',
       'test_x, test_y = cifar10_subset("train", test_per_class, seed)')], "tests/test_data.py"),
    ("main dropout built but never applied", "utils/models.py",
     [("self.fc(self.dropout(torch.flatten(self.avgpool(x), 1)))", "self.fc(torch.flatten(self.avgpool(x), 1))")],
     "tests/test_models.py"),
    ("aux gradient split without the aux weight", "utils/explain.py",
     [("aux_weight * F.cross_entropy(head.float(), labels,", "F.cross_entropy(head.float(), labels,")],
     "tests/test_explain.py"),
    ("aux gradient split moves batch-norm statistics", "utils/explain.py",
     [("                buffer.copy_(saved[name])", "                pass")], "tests/test_explain.py"),
    ("CAM with the absolute weights", "utils/explain.py",
     [('torch.einsum("ck,nkhw->nchw", weight, features)', 'torch.einsum("ck,nkhw->nchw", weight.abs(), features)')],
     "tests/test_explain.py"),
    ("output size rounds up without ceil_mode", "utils/cost.py",
     [("out = (-(-span // stride) if ceil_mode else span // stride) + 1", "out = -(-span // stride) + 1")],
     "tests/test_cost.py"),
]


def _copy_repository(target):
    for name in ("utils", "tests", "conftest.py", "pyproject.toml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target / name)


def run(selection=()):
    chosen = [m for m in MUTANTS if not selection or any(word in m[0] for word in selection)]
    survivors = []
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder)
        _copy_repository(copy)
        for name, file, replacements, tests in chosen:
            path = copy / file
            original = path.read_text()
            mutated = original
            for old, new in replacements:
                if old not in mutated:
                    raise SystemExit(f"mutant {name!r}: {old!r} is no longer in {file}; update tests/mutation_check.py")
                mutated = mutated.replace(old, new)
            path.write_text(mutated)
            started = time.time()
            result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", tests],
                                    cwd=copy, capture_output=True, text=True)
            path.write_text(original)
            caught = result.returncode != 0
            print(f"{'caught  ' if caught else 'SURVIVED'}  {name:<48} ({tests}, {time.time() - started:.0f} s)",
                  flush=True)
            if not caught:
                survivors.append(name)
    print(f"\n{len(chosen) - len(survivors)} of {len(chosen)} mutants caught"
          + (f"; survivors: {', '.join(survivors)}" if survivors else ""))
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
