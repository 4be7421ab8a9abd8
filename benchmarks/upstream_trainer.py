#!/usr/bin/env python
"""transformers' own Trainer tests, run against the swap to `AutoAssistTrainer`.

The test file is not part of this repository (nor of the transformers wheel): point `--test_file` at
`tests/trainer/test_trainer.py` in a transformers checkout, as close to the installed version as you have. It runs
with pytest once as written (the plain `Trainer`: the reference) and once per strategy with every `Trainer` it
builds swapped for `AutoAssistTrainer` (`upstream_swap.py`), offline. Then:

    python benchmarks/upstream_trainer.py --test_file ../transformers/tests/trainer/test_trainer.py \
        --source "huggingface/transformers@<commit> (<its version>)"

writes `benchmarks/results/upstream-trainer.json` (`upstream-trainer-callback.json` for `test_trainer_callback.py`,
which imports its models from `test_trainer.py`): the command, the environment, each run's outcome per test and the
first line of each failure. The file's own test needs (`parameterized`, `sentencepiece`: without it most of the
file skips) must be installed. A run already recorded for the same test file, transformers version and commit
of this code is kept; `--fresh` runs it again.
"""

import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.runs import commit_measured, environment  # noqa: E402
from benchmarks.upstream_swap import ENV_STRATEGY, ENV_TEST_FILE  # noqa: E402

PLAIN = "plain"
MESSAGE_CHARS = 300


@dataclass
class UpstreamArguments:
    test_file: str = field(
        metadata={"help": "transformers' tests/trainer/test_trainer.py (or test_trainer_callback.py), from a checkout."}
    )
    source: str = field(
        default="", metadata={"help": "Where the test file comes from (repository, commit, version), recorded."}
    )
    strategies: list[str] = field(
        default_factory=lambda: ["none", "autoassist"],
        metadata={"help": "The swapped runs, each beside the plain one."},
    )
    output_dir: str = field(default="benchmarks/results")
    fresh: bool = field(default=False, metadata={"help": "Run again the runs already recorded."})


def outcomes_of(junit_xml: str) -> tuple[dict[str, str], dict[str, str]]:
    """`{test: passed | failed | error | skipped}` and `{test: first line of its failure}` from a JUnit XML report.

    >>> import tempfile
    >>> report = '''<testsuites><testsuite>
    ...   <testcase classname="tests.t.A" name="test_ok"/>
    ...   <testcase classname="tests.t.A" name="test_bad"><failure message="AssertionError: 1 != 2&#10;more"/></testcase>
    ...   <testcase classname="tests.t.A" name="test_gpu"><skipped message="needs a GPU"/></testcase>
    ... </testsuite></testsuites>'''
    >>> with tempfile.NamedTemporaryFile("w", suffix=".xml", delete=False) as handle:
    ...     _ = handle.write(report)
    >>> outcomes_of(handle.name)
    ({'A::test_ok': 'passed', 'A::test_bad': 'failed', 'A::test_gpu': 'skipped'}, {'A::test_bad': 'AssertionError: 1 != 2'})
    """
    outcomes, messages = {}, {}
    for case in ElementTree.parse(junit_xml).iter("testcase"):
        test = f"{case.get('classname').rsplit('.', 1)[-1]}::{case.get('name')}"
        outcomes[test] = "passed"
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                outcomes[test] = {"failure": "failed"}.get(kind, kind)
                if kind != "skipped":
                    message = (found.get("message") or found.text or "").strip().splitlines()
                    messages[test] = (message[0] if message else "")[:MESSAGE_CHARS]
                break
    return outcomes, messages


def run_tests(test_file: str, strategy: str | None) -> dict:
    """One pytest run of the test file, from its checkout's root, with the swap (or none: `strategy=None`)."""
    test_path = Path(test_file).resolve()
    checkout = next((parent for parent in test_path.parents if (parent / "tests").is_dir()), test_path.parent)
    environment_variables = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "HF_HUB_OFFLINE": "1",
        ENV_TEST_FILE: str(test_path),
        ENV_STRATEGY: strategy or "",
    }
    with tempfile.TemporaryDirectory() as scratch:
        report = os.path.join(scratch, "report.xml")
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pytest", str(test_path), "-p", "benchmarks.upstream_swap", "-p", "no:cacheprovider",
             "-q", f"--junitxml={report}"],
            cwd=checkout, env=environment_variables, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if not os.path.exists(report):
            raise RuntimeError(f"pytest wrote no report for {test_path}: run it by hand to see why it cannot import")
        outcomes, messages = outcomes_of(report)
    return {"seconds": round(seconds, 1), "outcomes": outcomes, "messages": messages}


def result_file_name(test_file: str) -> str:
    """`upstream-<the file's name without test_>.json`, one per test file.

    >>> result_file_name("tests/trainer/test_trainer.py"), result_file_name("tests/trainer/test_trainer_callback.py")
    ('upstream-trainer.json', 'upstream-trainer-callback.json')
    """
    return f"upstream-{Path(test_file).stem.removeprefix('test_').replace('_', '-')}.json"


def file_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> dict:
    (args,) = HfArgumentParser(UpstreamArguments).parse_args_into_dataclasses(args=argv)
    if not os.path.isfile(args.test_file):
        raise FileNotFoundError(
            f"No test file at {args.test_file}: pass --test_file <a transformers checkout>/tests/trainer/test_trainer.py"
        )
    output = os.path.join(args.output_dir, result_file_name(args.test_file))
    # what a recorded run must share to be kept: the test file, transformers and this code (a commit it can name)
    measured = {"test_file_sha256": file_digest(args.test_file), "transformers": environment()["transformers"],
                "commit": commit_measured()}  # fmt: skip
    result = {"runs": {}}
    if os.path.exists(output) and not args.fresh and measured["commit"] is not None:
        with open(output) as handle:
            recorded = json.load(handle)
        if all(recorded.get(key) == value for key, value in measured.items()):
            result = recorded
    result.update(measured, source=args.source, environment=environment(),
                  command="python benchmarks/upstream_trainer.py " + shlex.join(argv if argv is not None else sys.argv[1:]))  # fmt: skip
    for strategy in [PLAIN, *args.strategies]:
        if strategy in result["runs"]:
            continue
        print(f"running the test file with {'the plain Trainer' if strategy == PLAIN else strategy} ...", flush=True)
        result["runs"][strategy] = run_tests(args.test_file, None if strategy == PLAIN else strategy)
        os.makedirs(args.output_dir, exist_ok=True)
        with open(output, "w") as handle:
            json.dump(result, handle, indent=1, sort_keys=True)
    for line in summary_lines(result):
        print(line)
    return result


def plain_passes(result: dict) -> list[str]:
    """The tests the plain Trainer passes: the reference each swap is held to."""
    return sorted(test for test, outcome in result["runs"][PLAIN]["outcomes"].items() if outcome == "passed")


def lost_tests(result: dict, strategy: str) -> list[str]:
    """The tests the plain Trainer passes and the swap under `strategy` does not."""
    outcomes = result["runs"][strategy]["outcomes"]
    return [test for test in plain_passes(result) if outcomes.get(test) != "passed"]


def summary_lines(result: dict) -> list[str]:
    """Each swapped run's passes among the plain run's, and every test plain passes that it does not."""
    passed = plain_passes(result)
    lines = [f"plain Trainer: {len(passed)} passed of {len(result['runs'][PLAIN]['outcomes'])}"]
    for strategy, run in result["runs"].items():
        if strategy == PLAIN:
            continue
        lost = lost_tests(result, strategy)
        lines.append(f"{strategy}: {len(passed) - len(lost)} of the plain Trainer's {len(passed)} pass")
        lines.extend(f"  {test}: {run['outcomes'].get(test, 'not run')}: {run['messages'].get(test, '')}" for test in lost)
    return lines


if __name__ == "__main__":
    main()
