"""The flagged instances a person should look at first, drawn: `autoassist_plausibility.png` beside the JSONL report.

The least plausible flagged images as thumbnails, each with its label and the label its neighbours favour, or the
least plausible flagged pairs as text, source above target (the way cleanlab shows label issues). A convenience like
the diagnostics plot: written only when matplotlib is installed, and only when something was flagged.
"""

import os

import numpy as np

from ..columns import LABEL_COLUMNS
from . import Plausibility

GALLERY_NAME = "autoassist_plausibility.png"
# instances shown: a 4 x 4 sheet of thumbnails, or as many pairs as a page holds
SHOWN = 16
# characters of a sentence shown before it is cut
MAX_CHARS = 110


def thumbnail(example: dict) -> np.ndarray | None:
    """An instance's image as `(H, W)` or `(H, W, 3)` in [0, 1]: its `pixel_values` (channels first, normalized
    as the model reads them, so rescaled here) or a stored `image`; None when it has neither."""
    pixels = example.get("pixel_values", example.get("image"))
    if pixels is None:
        return None
    pixels = np.asarray(pixels, dtype=np.float32)
    if pixels.ndim == 3 and pixels.shape[0] in (1, 3) and pixels.shape[-1] not in (1, 3):
        pixels = pixels.transpose(1, 2, 0)  # channels last
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    if pixels.ndim not in (2, 3):
        return None
    low, high = float(pixels.min()), float(pixels.max())
    return (pixels - low) / (high - low) if high > low else np.zeros_like(pixels)


def pair_lines(example: dict, tokenizer) -> tuple[str, str] | None:
    """A pair's source and target as text, decoded with the tokenizer that made their ids (ignored labels left out),
    each cut to `MAX_CHARS`; None without `input_ids` and token-sequence `labels`, or without a tokenizer."""
    source, target = example.get("input_ids"), example.get("labels")
    if tokenizer is None or not hasattr(tokenizer, "decode") or source is None or np.ndim(target) != 1:
        return None

    def text(ids) -> str:
        decoded = tokenizer.decode([int(t) for t in ids if int(t) >= 0], skip_special_tokens=True)
        return decoded if len(decoded) <= MAX_CHARS else decoded[: MAX_CHARS - 1] + "…"

    return text(source), text(target)


def label_names(dataset) -> list[str] | None:
    """The class names of a `datasets.ClassLabel` label column (`LABEL_COLUMNS`), else None."""
    features = getattr(dataset, "features", None) or {}
    for column in LABEL_COLUMNS:
        names = getattr(features.get(column), "names", None)
        if names:
            return list(names)
    return None


def write_gallery(
    plausibility: Plausibility, dataset, output_dir: str, tokenizer=None, count: int = SHOWN
) -> str | None:  # fmt: skip
    """Draws the `count` flagged instances most likely implausible into `output_dir/autoassist_plausibility.png`.
    Returns its path, or None when nothing was flagged, the instances are not dicts of images or of decodable pairs,
    or matplotlib is not installed."""
    shown = plausibility.least_plausible(count)
    if not shown:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    examples = [dataset[i] for i in shown]
    if not all(isinstance(example, dict) for example in examples):  # e.g. a torch Dataset of tuples
        return None
    images = [thumbnail(example) for example in examples]
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, GALLERY_NAME)
    if all(image is not None for image in images):
        figure = _image_sheet(plausibility, shown, examples, images, label_names(dataset), plt)
    else:
        pairs = [pair_lines(example, tokenizer) for example in examples]
        if any(pair is None for pair in pairs):
            return None
        figure = _pair_page(plausibility, shown, pairs, plt)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _image_sheet(plausibility, shown, examples, images, names, plt):
    columns = min(4, len(shown))
    rows = -(-len(shown) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(2.4 * columns, 2.6 * rows + 0.5), squeeze=False)
    name = (lambda i: names[i] if 0 <= i < len(names) else str(i)) if names else str
    for axis in axes.flat:
        axis.axis("off")
    for axis, index, example, image in zip(axes.flat, shown, examples, images):
        axis.imshow(image, cmap="gray" if image.ndim == 2 else None)
        label = next(example[column] for column in LABEL_COLUMNS if column in example)
        title = f"#{index}  p={plausibility.posterior[index]:.2f}\nlabel {name(int(label))}"
        if plausibility.suggested is not None:
            title += f" → {name(int(plausibility.suggested[index]))}?"
        axis.set_title(title, fontsize=8)
    figure.suptitle(f"The {len(shown)} flagged instances most likely implausible ({plausibility.method} check): "
                    "label given → the label its neighbours favour", fontsize=9)  # fmt: skip
    figure.tight_layout()
    return figure


def _pair_page(plausibility, shown, pairs, plt):
    figure = plt.figure(figsize=(11, 0.55 * len(shown) + 0.8))
    figure.text(0.01, 0.99, f"The {len(shown)} flagged pairs most likely misaligned ({plausibility.method} check): "
                "source, then target", va="top", fontsize=10, weight="bold")  # fmt: skip
    step = 1.0 / (len(shown) + 1.5)
    for row, (index, (source, target)) in enumerate(zip(shown, pairs)):
        top = 1.0 - (row + 1.3) * step
        name = f"#{index}  p={plausibility.posterior[index]:.2f}"
        figure.text(0.01, top, name, va="top", fontsize=8, family="monospace")
        figure.text(0.16, top, source, va="top", fontsize=8)
        figure.text(0.16, top - step * 0.42, f"→ {target}", va="top", fontsize=8, color="firebrick")
    return figure
