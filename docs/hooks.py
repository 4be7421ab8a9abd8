"""mkdocs hooks: the options page is written from the config's field help at build time (so it cannot drift from
the code), and the pages and pictures the repository keeps beside the code (benchmarks/README.md, the results'
plots) are served from where they are instead of being copied into docs/."""

import dataclasses
import re
from pathlib import Path

from mkdocs.structure.files import File

REPO = Path(__file__).resolve().parents[1]
# files outside docs/ that the site serves under their repository path
SERVED = ("benchmarks/README.md", "benchmarks/results/*.png", "benchmarks/results/archive/**/*.png",
          "examples/linear_svm/results/*")  # fmt: skip
OPTIONS = re.compile(r"<!-- options -->.*?<!-- /options -->", re.S)


def options_markdown() -> str:
    """One entry per `autoassist_*` field of `AutoAssistConfig`: its name, default, choices and help."""
    from hf_autoassist import AutoAssistConfig

    entries = []
    for field in dataclasses.fields(AutoAssistConfig):
        if not field.name.startswith("autoassist_"):
            continue
        default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        choices = field.metadata.get("choices")
        facts = f"Default: `{default!r}`" + (f" · choices: {', '.join(f'`{c!r}`' for c in choices)}" if choices else "")
        entries.append(f"### `{field.name}`\n\n{facts}\n\n{field.metadata.get('help', '(no help written)')}\n")
    return "\n".join(entries)


def on_files(files, config):
    for pattern in SERVED:
        for path in sorted(REPO.glob(pattern)):
            if path.is_file():
                files.append(File(str(path.relative_to(REPO)), str(REPO), config.site_dir, config.use_directory_urls))
    return files


def on_page_markdown(markdown, page, config, files):
    if not (REPO / "docs" / page.file.src_uri).is_file():  # a page served from beside the code: links into docs/
        markdown = markdown.replace("](../docs/", "](../")  # lead to the site's root
    if "<!-- options -->" in markdown:
        markdown = OPTIONS.sub(lambda _: f"<!-- options -->\n{options_markdown()}\n<!-- /options -->", markdown)
    return markdown
