"""Pairs scored by a pretrained sentence encoder (`autoassist_plausibility_encoder`), for users who have one: the
cosine of each source's and target's embeddings, against the null of each source with another pair's target, in the
same calibrated mixture (`mixture.py`). A multilingual encoder (LaBSE and its kin, on the Hub or on disk) reads
meaning rather than shared tokens, so it need not learn anything from the corpus; it never trained on these pairs, so
no cross-fitting is needed. The training set holds token ids of the Boss's tokenizer: they are decoded back to text
with it, then tokenized with the encoder's own.
"""

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel, AutoTokenizer

from .pairs import PairScores, cosine_scores

# sentences per forward of the encoder, and tokens read per sentence
BATCH_SIZE = 64
MAX_LENGTH = 128


def check_sentence_encoder(name_or_path: str) -> None:
    """Its config and tokenizer load (cheap, on every rank before the main process loads the weights), else an error
    that names the path tried."""
    try:
        AutoConfig.from_pretrained(name_or_path)
        AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"`autoassist_plausibility_encoder`: could not load a sentence encoder from {name_or_path!r} (a folder "
            f"written by `save_pretrained` with its tokenizer, or a Hub id): {error}"
        ) from error


def sentence_embeddings(texts: list[str], tokenizer, model, device) -> torch.Tensor:
    """`(N, dim)` unit-length means of the encoder's last hidden states over each text's tokens."""
    embeddings = []
    with torch.no_grad():
        for start in range(0, len(texts), BATCH_SIZE):
            batch = tokenizer(
                texts[start : start + BATCH_SIZE], padding=True, truncation=True, max_length=MAX_LENGTH,
                return_tensors="pt",
            ).to(device)  # fmt: skip
            hidden = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)
            embeddings.append(F.normalize(mean.float(), dim=-1).cpu())
    return torch.cat(embeddings)


def encoder_pair_scores(
    sources: list[str], targets: list[str], name_or_path: str, seed: int = 0, device: str | torch.device = "cpu"
) -> PairScores:
    """Every pair's cosine under the pretrained encoder at `name_or_path`, and its null score. The global RNG is left
    as it was (loading a model may initialise weights before it reads them)."""
    check_sentence_encoder(name_or_path)
    with torch.random.fork_rng(devices=[]):
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModel.from_pretrained(name_or_path).eval().to(device)
    if getattr(model.config, "is_encoder_decoder", False):
        model = model.get_encoder()  # e.g. a T5-style encoder: only its encoder reads a sentence
    x = sentence_embeddings(sources, tokenizer, model, device)
    y = sentence_embeddings(targets, tokenizer, model, device)
    return cosine_scores(x, y, torch.Generator().manual_seed(seed))
