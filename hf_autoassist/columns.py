"""Reading whole columns of a training set at train start: what the Assistants and the report learn each instance's
features from (labels, pixels, tokens). Stored columns are read in bulk from Arrow without running a `set_transform`;
anything else item by item, once. Within `columns_read_once()` a column read twice is read once."""

import math
from contextlib import contextmanager

import datasets
import numpy as np
import pyarrow as pa
import torch
from PIL import Image
from torch.utils.data import Dataset

LABEL_COLUMNS = ("labels", "label", "label_ids")


def column_names(dataset: Dataset) -> list[str]:
    """The stored columns, plus those a `set_transform` makes (read from one transformed item)."""
    names = getattr(dataset, "column_names", None)
    if names is None:
        return list(dataset[0].keys()) if len(dataset) else []
    names = list(names)
    if getattr(dataset, "format", {}).get("type") == "custom" and len(dataset):
        names += [name for name in dataset[0] if name not in names]
    return names


# (id(dataset), column) -> (dataset, values) while `columns_read_once` is open; the dataset is held so its id stays
_column_cache: dict | None = None


@contextmanager
def columns_read_once():
    """Within the block, each column of a dataset is read once: at train start the Assistant's builder and the
    report's grouping read the same label and token columns."""
    global _column_cache
    _column_cache = {}
    try:
        yield
    finally:
        _column_cache = None


def read_column(dataset: Dataset, column: str) -> list:
    """A whole column: straight from Arrow when it is stored there (also under `set_transform`, whose transform is
    not run), else item by item (once)."""
    if _column_cache is None:
        return _read_column_now(dataset, column)
    key = (id(dataset), column)
    if key not in _column_cache:
        _column_cache[key] = (dataset, _read_column_now(dataset, column))
    return _column_cache[key][1]


def _read_column_now(dataset: Dataset, column: str) -> list:
    if isinstance(dataset, datasets.Dataset) and column in dataset.column_names:
        fixed = _buffer_column(dataset, column)
        if fixed is not None:
            return fixed
        # reads this column only, as one numpy array (an object array of arrays when ragged); `with_format` drops
        # any transform, so augmentations and decoding do not run for it
        return dataset.with_format("numpy")[column][:]
    return [dataset[i][column] for i in range(len(dataset))]


_FIXED_SHAPE_FEATURES = (datasets.Array2D, datasets.Array3D, datasets.Array4D, datasets.Array5D)


def _buffer_column(dataset: datasets.Dataset, column: str) -> np.ndarray | None:
    """A fixed-width numeric column as one `(N, *shape)` array read from the Arrow buffers: a number per row (class
    labels, `Value("int64")`, `ClassLabel`) or a fixed-shape array (`datasets.Array2D` to `Array5D`, e.g. stored
    `pixel_values`); None for any other column, or one with missing rows. The numpy format builds an array column
    row by row (0.54 s for 8,000 Fashion-MNIST images, against 4 ms here) and took 50-260 ms for the 20,000 labels
    of a `select`ed set (0.2 ms here): a short run pays that at every `train()`."""
    feature = dataset.features.get(column)
    table_column = dataset.data.column(column)  # every row of the table, before any `select` / `shuffle`
    if isinstance(feature, _FIXED_SHAPE_FEATURES):
        shape = feature.shape
    elif pa.types.is_integer(table_column.type) or pa.types.is_floating(table_column.type):
        shape = ()
    else:
        return None
    if table_column.null_count:
        return None
    flat = [_flat_values(chunk) for chunk in table_column.chunks]
    values = np.concatenate(flat) if flat else np.empty(0)
    if values.size != len(table_column) * math.prod(shape):  # missing values inside rows: read row by row
        return None
    rows = values.reshape(len(table_column), *shape)
    indices = getattr(dataset, "_indices", None)  # the rows a `select` / `shuffle` / `filter` kept, in order
    return rows if indices is None else rows[indices.column(0).to_numpy()]


def _flat_values(chunk: pa.Array) -> np.ndarray:
    """The innermost values of a chunk of (nested) lists, in row order."""
    values = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
    nested = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    while any(is_list(values.type) for is_list in nested):
        values = values.flatten()
    return values.to_numpy(zero_copy_only=False)


def image_column(dataset: Dataset) -> str | None:
    """The stored column of `datasets.Image` type, if any: what a `set_transform` turns into `pixel_values`."""
    if not isinstance(dataset, datasets.Dataset) or "pixel_values" in dataset.column_names:
        return None
    return next((name for name, feature in dataset.features.items() if isinstance(feature, datasets.Image)), None)


def pooled_images(dataset: datasets.Dataset, column: str, pool_size: int) -> torch.Tensor:
    """`(N, C, pool_size, pool_size)`: the stored images decoded and box-filtered straight to the pooled size,
    without the dataset's transform (its augmentations are for the Boss) and without holding full-size pixels."""
    raw = dataset.with_format(None).select_columns([column])
    mode = None
    pooled = []
    for batch in raw.iter(batch_size=256):
        for image in batch[column]:
            mode = mode or ("L" if image.mode in ("L", "1", "I;16") else "RGB")
            pooled.append(np.asarray(image.convert(mode).resize((pool_size, pool_size), Image.BOX)))
    pixels = torch.as_tensor(np.stack(pooled))
    return pixels.unsqueeze(1) if pixels.dim() == 3 else pixels.permute(0, 3, 1, 2)


# more distinct class ids than this (and than instances) is not a classification set: regression targets, say
MAX_CLASSES = 1000


def class_ids(dataset: Dataset) -> torch.Tensor | None:
    """The label column as `(N,)` class ids, or None when there is none or it does not hold class ids: sequences
    (seq2seq targets), values that are not integers (regression targets), negative ones, or a range larger than both
    `MAX_CLASSES` and the dataset (integer regression targets)."""
    columns, stored = column_names(dataset), getattr(dataset, "column_names", None) or []
    # a stored label column first: it is read without running a transform
    name = next((n for n in [*[n for n in LABEL_COLUMNS if n in stored], *LABEL_COLUMNS] if n in columns), None)
    if name is None or not len(dataset):
        return None
    column = read_column(dataset, name)
    if not (isinstance(column, np.ndarray) and column.dtype != object):
        if any(np.ndim(value) != 0 for value in column):
            return None
        column = np.asarray([np.asarray(value).item() for value in column])
    if column.ndim != 1 or column.dtype.kind not in "iu":
        return None
    if column.min() < 0 or column.max() >= max(MAX_CLASSES, len(column)):
        return None
    return torch.as_tensor(column, dtype=torch.long)


def token_lists(dataset: Dataset, column: str) -> list[list[int]]:
    """Each row's token ids as one list; a row of several sequences (a multiple-choice instance's choices) is
    concatenated."""
    return [_flat_ints(row) for row in read_column(dataset, column)]


def _flat_ints(row) -> list[int]:
    if len(row) and np.ndim(row[0]) > 0:
        return [token for item in row for token in _flat_ints(item)]
    return list(map(int, row))


def holds_token_ids(dataset: Dataset, column: str = "input_ids") -> bool:
    """Whether a column holds token ids (integers), not features that happen to be called `input_ids` (floats)."""
    return np.asarray(dataset[0][column]).dtype.kind in "iu"


def labels_are_sequences(dataset: Dataset) -> bool:
    """Seq2seq (and token classification) labels are lists of ids; classification labels are one int, regression and
    multi-label rows hold floats."""
    first = dataset[0]["labels"]
    if getattr(first, "ndim", None) == 0:  # a 0-d tensor or numpy scalar (a "torch" or "numpy" format) has __len__
        return False
    if not hasattr(first, "__len__") or isinstance(first, str):
        return False
    return len(first) == 0 or np.asarray(first).dtype.kind in "iu"
