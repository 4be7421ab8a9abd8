"""How most people fine-tune causal LMs today: a PEFT LoRA model under `AutoAssistTrainer`, and AutoAssist in TRL's
`SFTTrainer` (`hf_autoassist.sft`), each from a saved tiny GPT-2 and tokenizer."""

import gzip

import datasets
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForLanguageModeling, GPT2Config, GPT2LMHeadModel

from hf_autoassist import AutoAssistConfig, AutoAssistTrainer
from hf_autoassist.losses import per_instance_loss_terms

from conftest import DATA_DIR, assert_shrank_and_learned

peft = pytest.importorskip("peft", reason="the LoRA test needs `pip install hf-autoassist[trl]`")
sft = pytest.importorskip("hf_autoassist.sft", reason="the SFT tests need `pip install hf-autoassist[trl]`")

pytestmark = pytest.mark.slow


@pytest.fixture
def gpt2_dir(tmp_path, tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    model_config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64,
                              pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)  # fmt: skip
    GPT2LMHeadModel(model_config).save_pretrained(tmp_path / "gpt2")
    tokenizer.save_pretrained(tmp_path / "gpt2")
    return tmp_path / "gpt2"


def options(tmp_path):
    return dict(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True, per_device_train_batch_size=16,
                num_train_epochs=3, learning_rate=3e-3, save_strategy="no", disable_tqdm=True, seed=0,
                logging_steps=4, autoassist_synchronous=True, autoassist_strategy="autoassist")  # fmt: skip


class RecordingLosses:
    """Wraps a strategy's `observe` to keep the per-instance losses the trainer handed it."""

    def __init__(self, trainer):
        self.losses, self.trainer = [], trainer
        original = type(trainer).compute_loss

        def compute_loss(this, model, inputs, *args, **kwargs):
            strategy = this.selection_run.strategy
            if not hasattr(strategy, "_recorded"):
                observe = strategy.observe
                strategy.observe = lambda i, losses, step: (self.losses.append(losses.clone()), observe(i, losses, step))
                strategy._recorded = True
            return original(this, model, inputs, *args, **kwargs)

        trainer.compute_loss = compute_loss.__get__(trainer)


def test_lora_model_trains_its_adapters_and_reads_next_token_losses(tmp_path, gpt2_dir, sentences):
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    base = AutoModelForCausalLM.from_pretrained(gpt2_dir)
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True))
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    train = datasets.Dataset.from_dict({"text": [p[0] for p in sentences]}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=32), batched=True, remove_columns=["text"]
    )
    trainer = AutoAssistTrainer(
        model=model, args=AutoAssistConfig(**options(tmp_path), autoassist_assistant_lr=0.2), train_dataset=train,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )  # fmt: skip
    # a PeftModel wraps the causal LM: its labels are next tokens, so the per-instance losses are shifted by one
    assert trainer.loss_reader.is_causal_lm(trainer.model)
    recorder = RecordingLosses(trainer)
    assert_shrank_and_learned(trainer)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if n in frozen)  # base weights frozen
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora and all(p.abs().sum() > 0 for p in lora)  # lora_B starts at zero
    # shifted per-instance losses average to the Trainer's loss at the start (~ log of the vocabulary size)
    assert abs(float(recorder.losses[0].mean()) - np.log(len(tokenizer))) < 0.5


def sft_dataset(sentences, prompt_completion: bool):
    if prompt_completion:
        return datasets.Dataset.from_dict({"prompt": [p[0] for p in sentences], "completion": [" " + p[1] for p in sentences]})
    return datasets.Dataset.from_dict({"text": [p[0] + " " + p[1] for p in sentences]})


@pytest.mark.parametrize("prompt_completion", [False, True], ids=["language-modeling", "prompt-completion"])
def test_sft_trainer_selects_rows_from_the_losses_of_its_own_forward(tmp_path, gpt2_dir, sentences, prompt_completion):
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    model = AutoModelForCausalLM.from_pretrained(gpt2_dir)
    forwards = []
    model.register_forward_hook(lambda module, args, output: forwards.append(module.training))
    args = sft.AutoAssistSFTConfig(**options(tmp_path), max_length=48, autoassist_assistant_lr=0.2)
    trainer = sft.AutoAssistSFTTrainer(model=model, args=args, train_dataset=sft_dataset(sentences, prompt_completion),
                                       processing_class=tokenizer)  # fmt: skip
    recorder = RecordingLosses(trainer)
    assert_shrank_and_learned(trainer)
    # one forward per training step: the losses come from TRL's fused LM head, not from a second pass for logits
    assert sum(forwards) == trainer.state.global_step
    assert sum(len(losses) for losses in recorder.losses) == trainer.selection_run.instances_backpropagated
    # the first batch's per-row losses are next-token losses of an untrained model: about log(vocabulary size)
    first = recorder.losses[0]
    assert torch.isfinite(first).all() and (first > 0).all()
    assert abs(float(first.mean()) - np.log(len(tokenizer))) < 0.5
    if prompt_completion:  # the prompt is masked out: the Assistant reads the completion as its target tokens
        assert len(trainer.selection_run.assistant.base.tgt) > 0  # the memory Assistant extends the bag of tokens
        assert "labels" in trainer.train_dataset.column_names or "completion_mask" in trainer.train_dataset.column_names


def test_sft_row_losses_equal_the_full_logits_losses(tmp_path, gpt2_dir, sentences):
    """The fused head's per-token log-probabilities give the same per-row loss as the logits would."""
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    model = AutoModelForCausalLM.from_pretrained(gpt2_dir)
    args = sft.AutoAssistSFTConfig(**options(tmp_path), max_length=48)
    trainer = sft.AutoAssistSFTTrainer(model=model, args=args, train_dataset=sft_dataset(sentences[:8], True),
                                       processing_class=tokenizer)  # fmt: skip
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(8)])
    model.eval()  # no dropout: both passes see the same network
    loss, outputs = trainer.loss_reader.loss_and_outputs(model, dict(batch), None)
    sums, counts = trainer.loss_reader.terms(model, outputs, batch["labels"])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    expected_sums, expected_counts = per_instance_loss_terms(logits, batch["labels"], shift_labels=True)
    torch.testing.assert_close(counts.float(), expected_counts.float())
    torch.testing.assert_close(sums.detach(), expected_sums, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(loss.detach(), expected_sums.sum() / expected_counts.sum(), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("option", ["packing", "padding_free"])
def test_sft_packing_is_refused_with_the_fix(tmp_path, option):
    with pytest.raises(ValueError, match="Set `packing=False` and `padding_free=False`"):
        sft.AutoAssistSFTConfig(output_dir=str(tmp_path), **{option: True})


def test_a_one_epoch_sft_run_shrinks_after_its_warmup(tmp_path, gpt2_dir):
    """The usual fine-tune is one epoch: with decisions inside the epoch and a quarter-epoch warmup, SFT skips rows
    from the second quarter on, and its loss still falls."""
    with gzip.open(DATA_DIR / "multi30k" / "raw" / "train.en.gz", "rt") as f:
        text = [next(f).strip() for _ in range(1024)]
    tokenizer = AutoTokenizer.from_pretrained(gpt2_dir)
    model = AutoModelForCausalLM.from_pretrained(gpt2_dir)
    args = sft.AutoAssistSFTConfig(**{**options(tmp_path), "num_train_epochs": 1}, max_length=48,
                                   autoassist_assistant_lr=0.2, autoassist_warmup_epochs=0.25,
                                   autoassist_rescore_every=4)  # fmt: skip
    trainer = sft.AutoAssistSFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_dict({"text": text}),
                                       processing_class=tokenizer)  # fmt: skip
    trainer.train()
    assert trainer.kept_fractions[0] < 0.95, trainer.autoassist_history
    assert trainer.selection_run.instances_backpropagated == round(trainer.kept_fractions[0] * 1024)
    losses = [log["loss"] for log in trainer.state.log_history if "loss" in log]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert trainer.state.global_step == trainer.state.max_steps
