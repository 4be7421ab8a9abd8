"""The harness that runs transformers' own Trainer tests against `AutoAssistTrainer` (benchmarks/upstream_*.py): the
swap must carry the tests' arguments over unchanged, and a test file written for another transformers version must
still import."""

import dataclasses
import json

import pytest
import torch
import transformers
from transformers import TrainingArguments

from benchmarks import upstream_swap, upstream_trainer
from hf_autoassist import AutoAssistTrainer
from hf_autoassist.config import AutoAssistArguments


@dataclasses.dataclass
class ArgumentsWithExtras(TrainingArguments):
    """As transformers' tests subclass `TrainingArguments` (their `RegressionTrainingArguments`)."""

    a: float = 0.0
    keep_report_to: bool = False


def test_swapped_arguments_keep_every_value_of_the_tests_arguments_and_add_the_strategy(tmp_path):
    args = ArgumentsWithExtras(str(tmp_path), a=2.5, learning_rate=0.125, num_train_epochs=2, report_to="none")
    swapped = upstream_swap.swapped_arguments(args, "none")
    assert isinstance(swapped, AutoAssistArguments) and isinstance(swapped, ArgumentsWithExtras)
    assert swapped.autoassist_strategy == "none"
    for field in dataclasses.fields(args):
        if field.init:
            assert getattr(swapped, field.name) == getattr(args, field.name), field.name
    assert type(upstream_swap.swapped_arguments(args, "random")) is type(swapped)  # one class per arguments class
    torch.save(swapped, tmp_path / "training_args.bin")  # as the Trainer saves them into each checkpoint
    assert torch.load(tmp_path / "training_args.bin", weights_only=False).autoassist_strategy == "none"


def test_the_swapped_trainer_takes_plain_arguments_or_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `args=None` writes to ./tmp_trainer, as the Trainer does
    trainer_class = upstream_swap.swapped_trainer_class("autoassist")
    model = torch.nn.Linear(1, 1)
    trainer = trainer_class(model, TrainingArguments(str(tmp_path / "out"), report_to="none"))
    assert isinstance(trainer, AutoAssistTrainer) and trainer.args.autoassist_strategy == "autoassist"
    assert trainer_class(model).args.output_dir.endswith("tmp_trainer")


def test_names_a_test_file_imports_that_transformers_lacks_are_placeholders_that_raise(tmp_path):
    test_file = tmp_path / "test_old.py"
    test_file.write_text("from transformers import Trainer, NoLongerThere\nfrom transformers.utils import Gone\n")
    try:
        assert upstream_swap.bind_removed_names(str(test_file)) == ["transformers.NoLongerThere", "transformers.utils.Gone"]
        assert transformers.Trainer.__module__ == "transformers.trainer"  # what exists is left alone
        with pytest.raises(ImportError, match="transformers.NoLongerThere is not in the installed transformers"):
            transformers.NoLongerThere()
    finally:
        vars(transformers).pop("NoLongerThere", None)
        vars(transformers.utils).pop("Gone", None)


def test_the_summary_lists_every_test_the_plain_trainer_passes_and_a_swap_does_not():
    result = {"runs": {
        "plain": {"outcomes": {"A::x": "passed", "A::y": "passed", "A::z": "skipped"}, "messages": {}},
        "none": {"outcomes": {"A::x": "passed", "A::y": "passed", "A::z": "skipped"}, "messages": {}},
        "autoassist": {"outcomes": {"A::x": "failed", "A::y": "passed", "A::z": "failed"},
                       "messages": {"A::x": "TypeError: no", "A::z": "skipped upstream"}},
    }}  # fmt: skip
    assert upstream_trainer.summary_lines(json.loads(json.dumps(result))) == [
        "plain Trainer: 2 passed of 3",
        "none: 2 of the plain Trainer's 2 pass",
        "autoassist: 1 of the plain Trainer's 2 pass",
        "  A::x: failed: TypeError: no",
    ]


def test_a_missing_test_file_names_where_to_find_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="tests/trainer/test_trainer.py"):
        upstream_trainer.main(["--test_file", str(tmp_path / "absent.py"), "--output_dir", str(tmp_path)])


def test_recorded_runs_are_kept_only_for_the_same_test_file_transformers_and_commit(tmp_path, monkeypatch):
    test_file = tmp_path / "test_trainer.py"
    test_file.write_text("def test_ok():\n    pass\n")
    runs = []

    def fake_run(path, strategy):
        runs.append(strategy)
        return {"seconds": 1.0, "outcomes": {"A::test_ok": "passed"}, "messages": {}}

    monkeypatch.setattr(upstream_trainer, "run_tests", fake_run)
    argv = ["--test_file", str(test_file), "--output_dir", str(tmp_path), "--strategies", "none"]
    monkeypatch.setattr(upstream_trainer, "commit_measured", lambda: "a" * 40)
    upstream_trainer.main(argv)
    upstream_trainer.main(argv)  # the same code: both runs kept
    assert runs == [None, "none"]
    monkeypatch.setattr(upstream_trainer, "commit_measured", lambda: "b" * 40)
    upstream_trainer.main(argv)  # other code: run again
    assert runs == [None, "none", None, "none"]
    monkeypatch.setattr(upstream_trainer, "commit_measured", lambda: None)
    upstream_trainer.main(argv)  # code it cannot name: run again
    assert runs[4:] == [None, "none"]
    assert json.loads((tmp_path / "upstream-trainer.json").read_text())["commit"] is None
