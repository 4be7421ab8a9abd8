"""A pytest plugin that runs transformers' own Trainer tests with `AutoAssistTrainer` in place of `Trainer`.

Loaded by `upstream_trainer.py` (`pytest -p benchmarks.upstream_swap`); the environment says what to do:

- `HF_AUTOASSIST_SWAP`: unset or empty runs the tests as written (the plain Trainer, the reference); a strategy name
  (`none`, `autoassist`, ...) makes every `Trainer` the tests build an `AutoAssistTrainer` with that strategy, its
  `TrainingArguments` (or subclass) carried over field by field with the AutoAssist options added.
- `HF_AUTOASSIST_TEST_FILE`: the test file. A test file is written for one transformers version; the names it imports
  that the installed transformers no longer has are bound to a placeholder that raises when used, so the module
  imports and the tests that need those names fail alike in every run (the reference included).
"""

import ast
import dataclasses
import functools
import importlib
import os

ENV_STRATEGY = "HF_AUTOASSIST_SWAP"
ENV_TEST_FILE = "HF_AUTOASSIST_TEST_FILE"


class RemovedName:
    """Stands for a name the test file imports and the installed transformers lacks; any use raises."""

    def __init__(self, module: str, name: str):
        self._where = f"{module}.{name}"

    def __call__(self, *args, **kwargs):
        raise ImportError(f"{self._where} is not in the installed transformers (the test file is for another version)")

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        self()


def imported_transformers_names(source: str) -> list[tuple[str, str]]:
    """`(module, name)` for every `from transformers... import name` in a test file's source.

    >>> imported_transformers_names("from transformers import A, B\\nfrom transformers.utils import C\\nimport os")
    [('transformers', 'A'), ('transformers', 'B'), ('transformers.utils', 'C')]
    """
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "transformers":
            names.extend((node.module, alias.name) for alias in node.names)
    return names


def sibling_test_files(source: str, folder: str) -> list[str]:
    """The files of the test file's own folder that it imports from (`from .test_trainer import ...`): they need the
    same placeholders, or the import fails before any test runs.

    >>> sibling_test_files("from .test_trainer import RegressionDataset\\nfrom transformers import A", "tests/trainer")
    ['tests/trainer/test_trainer.py']
    """
    siblings = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            siblings.append(os.path.join(folder, *node.module.split(".")) + ".py")
    return siblings


def bind_removed_names(test_file: str) -> list[str]:
    """Binds each name the test file (and the files of its folder it imports from) imports from a transformers module
    that lacks it; returns them."""
    with open(test_file, encoding="utf-8") as handle:
        source = handle.read()
    names = imported_transformers_names(source)
    for sibling in sibling_test_files(source, os.path.dirname(test_file)):
        if os.path.isfile(sibling):
            with open(sibling, encoding="utf-8") as handle:
                names += imported_transformers_names(handle.read())
    bound = []
    for module_name, name in dict.fromkeys(names):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # a whole module gone: the test file cannot import, in every run alike
        try:
            getattr(module, name)
        except (AttributeError, ImportError):
            setattr(module, name, RemovedName(module_name, name))
            bound.append(f"{module_name}.{name}")
    return bound


@functools.cache
def with_autoassist_options(arguments_class: type) -> type:
    """The user's arguments class with the AutoAssist options added (one class per arguments class)."""
    from hf_autoassist.config import AutoAssistArguments

    name = f"AutoAssist{arguments_class.__name__}"
    swapped = dataclasses.make_dataclass(name, [], bases=(AutoAssistArguments, arguments_class))
    swapped.__module__ = __name__
    globals()[name] = swapped  # the Trainer pickles its arguments into each checkpoint: pickle finds them here
    return swapped


def swapped_arguments(args, strategy: str):
    """`args` carried over field by field into the class with the AutoAssist options, `autoassist_strategy` set.

    `None` becomes the Trainer's own default (`TrainingArguments(output_dir="tmp_trainer")`).
    """
    from transformers import TrainingArguments

    if args is None:
        args = TrainingArguments(output_dir="tmp_trainer")
    values = {field.name: getattr(args, field.name) for field in dataclasses.fields(args) if field.init}
    values["autoassist_strategy"] = strategy
    return with_autoassist_options(type(args))(**values)


def swapped_trainer_class(strategy: str) -> type:
    """`AutoAssistTrainer` taking the arguments the tests give the plain `Trainer`."""
    from hf_autoassist import AutoAssistTrainer

    class SwappedTrainer(AutoAssistTrainer):
        def __init__(self, model=None, args=None, *positional, **keywords):
            super().__init__(model, swapped_arguments(args, strategy), *positional, **keywords)

    SwappedTrainer.__name__ = SwappedTrainer.__qualname__ = "Trainer"
    return SwappedTrainer


def pytest_configure(config):
    test_file = os.environ.get(ENV_TEST_FILE)
    if test_file:
        bound = bind_removed_names(test_file)
        if bound:
            config.stash[REMOVED_KEY] = bound
    strategy = os.environ.get(ENV_STRATEGY)
    if strategy:
        import transformers

        transformers.Trainer = swapped_trainer_class(strategy)


def pytest_report_header(config):
    strategy = os.environ.get(ENV_STRATEGY) or "(plain Trainer)"
    lines = [f"hf-autoassist swap: autoassist_strategy={strategy}"]
    removed = config.stash.get(REMOVED_KEY, [])
    if removed:
        lines.append("not in this transformers (placeholders): " + ", ".join(removed))
    return lines


try:
    import pytest

    REMOVED_KEY = pytest.StashKey[list]()
except (ImportError, AttributeError):  # pytest is only needed when the plugin runs
    REMOVED_KEY = None
