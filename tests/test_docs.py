"""The documentation a newcomer reads first cannot rot: README stays a front page, its links and the getting-started
page's lead somewhere, every Python snippet in them runs (on 64 real Fashion-MNIST images), the options page holds
every option with its help, and the site builds in strict mode."""

import dataclasses
import importlib.util
import re
import subprocess
import sys

import pytest

from conftest import REPO, tiny_resnet

SNIPPET_PAGES = (REPO / "README.md", REPO / "docs" / "getting-started.md")
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_snippets(path):
    return PYTHON_BLOCK.findall(path.read_text())


def test_readme_is_a_front_page_with_the_table_and_the_plot():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "<!-- first-screen -->" in text and "benchmarks/results/first-screen.png" in text
    assert "<!-- test-command -->" in text and "mkdocs serve" in text


@pytest.mark.parametrize("path", [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_lead_to_files_of_the_repository(path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target:
            continue
        assert (path.parent / target).exists() or (REPO / target).exists(), f"{path.name} links to {target}"


@pytest.mark.parametrize("path", SNIPPET_PAGES, ids=lambda p: p.name)
def test_every_python_snippet_runs(path, tmp_path, monkeypatch, fashion_mnist, vision_example):
    snippets = python_snippets(path)
    assert snippets, f"{path.name} has no Python snippet to check"
    monkeypatch.chdir(tmp_path)  # the snippets write to out/
    images = fashion_mnist["train"].select(range(64)).with_format("numpy")
    namespace = {"model": tiny_resnet(), "train": images, "test": images.select(range(16)),
                 "collate": vision_example.collate_images}  # fmt: skip
    for snippet in snippets:
        exec(compile(snippet, f"{path.name} snippet", "exec"), namespace)
    if "trainer" in namespace:  # a snippet that trains: it ran to its end
        assert namespace["trainer"].state.global_step == namespace["trainer"].state.max_steps > 0


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", REPO / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_options_page_holds_every_option_with_its_help():
    from hf_autoassist import AutoAssistConfig

    page = _hooks().options_markdown()
    options = [f for f in dataclasses.fields(AutoAssistConfig) if f.name.startswith("autoassist_")]
    assert len(options) > 20
    for field in options:
        assert f"### `{field.name}`" in page
        assert field.metadata.get("help") and field.metadata["help"] in page, f"{field.name} has no help to show"


@pytest.mark.slow
def test_the_site_builds_in_strict_mode(tmp_path):
    # broken links, missing pages and docstrings that do not parse fail the build
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                           cwd=REPO, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""})  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "options" / "index.html").read_text().count("autoassist_strategy") >= 1
    assert (tmp_path / "site" / "benchmarks" / "results" / "first-screen.png").is_file()
