"""Fine-tuning a saved checkpoint exactly as a user fine-tunes a Hub id: `save_pretrained` a tiny model with its
tokenizer or image processor, then `Auto*.from_pretrained(local_path)` and `AutoAssistTrainer` (the Hub is offline
here; a local folder takes the same code path)."""

import datasets
import pytest
from transformers import (
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    DataCollatorForLanguageModeling,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    GPT2Config,
    GPT2LMHeadModel,
    T5Config,
    T5ForConditionalGeneration,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
)

from hf_autoassist import AutoAssistConfig, AutoAssistSeq2SeqConfig, AutoAssistSeq2SeqTrainer, AutoAssistTrainer

from conftest import assert_shrank_and_learned, tiny_resnet

pytestmark = pytest.mark.slow


def config(tmp_path, cls=AutoAssistConfig, **kwargs):
    defaults = dict(output_dir=str(tmp_path / "run"), report_to="none", use_cpu=True, per_device_train_batch_size=16,
                    num_train_epochs=3, learning_rate=3e-3, save_strategy="no", disable_tqdm=True, seed=0,
                    logging_steps=4, autoassist_strategy="autoassist")  # fmt: skip
    return cls(**{**defaults, **kwargs})


def test_seq2seq_checkpoint(tmp_path, tokenizer_dir, sentences):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_config = T5Config(vocab_size=len(tokenizer), d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16,
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                            decoder_start_token_id=tokenizer.pad_token_id)  # fmt: skip
    T5ForConditionalGeneration(model_config).save_pretrained(tmp_path / "t5")
    tokenizer.save_pretrained(tmp_path / "t5")

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "t5")
    model = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "t5")
    train = datasets.Dataset.from_dict({"en": [p[0] for p in sentences], "de": [p[1] for p in sentences]}).map(
        lambda b: tokenizer(b["en"], text_target=b["de"], truncation=True, max_length=32), batched=True,
        remove_columns=["en", "de"],
    )  # fmt: skip
    # the Assistant by name: on token-id pairs the default ("auto") is the pairs check alone, which never shrinks
    trainer = AutoAssistSeq2SeqTrainer(
        model=model, args=config(tmp_path, AutoAssistSeq2SeqConfig, autoassist_strategy="autoassist"), train_dataset=train,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model), processing_class=tokenizer,
    )  # fmt: skip
    assert_shrank_and_learned(trainer)


def test_causal_lm_checkpoint_with_language_modeling_collator(tmp_path, tokenizer_dir, sentences):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=64,
                              pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    GPT2LMHeadModel(model_config).save_pretrained(tmp_path / "gpt2")
    tokenizer.save_pretrained(tmp_path / "gpt2")

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "gpt2")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "gpt2")
    train = datasets.Dataset.from_dict({"text": [p[0] for p in sentences]}).map(
        lambda b: tokenizer(b["text"], truncation=True, max_length=32), batched=True, remove_columns=["text"]
    )
    trainer = AutoAssistTrainer(
        model=model, args=config(tmp_path), train_dataset=train,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )  # fmt: skip
    assert_shrank_and_learned(trainer)


def test_sequence_classifier_checkpoint(tmp_path, tokenizer_dir, sentences):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    model_config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=64, num_labels=2, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    BertForSequenceClassification(model_config).save_pretrained(tmp_path / "bert")
    tokenizer.save_pretrained(tmp_path / "bert")

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "bert")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "bert")
    # the task: is the English caption about a man? (a real signal in the words)
    texts = [p[0] for p in sentences]
    train = datasets.Dataset.from_dict({"text": texts, "label": [int(" man " in f" {t.lower()} ") for t in texts]})
    train = train.map(lambda b: tokenizer(b["text"], truncation=True, max_length=32), batched=True, remove_columns=["text"])
    trainer = AutoAssistTrainer(
        model=model, args=config(tmp_path, num_train_epochs=8, learning_rate=1e-3), train_dataset=train,
        data_collator=DataCollatorWithPadding(tokenizer),
    )  # fmt: skip
    assert_shrank_and_learned(trainer)


@pytest.mark.parametrize("family", ["resnet", "vit"])
def test_image_classifier_checkpoint_with_its_image_processor(tmp_path, fashion_mnist, family):
    if family == "resnet":
        model = tiny_resnet()
    else:
        model = ViTForImageClassification(ViTConfig(image_size=28, patch_size=7, num_channels=1, hidden_size=32,
                                                    num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                                                    num_labels=10))  # fmt: skip
    model.save_pretrained(tmp_path / family)
    ViTImageProcessor(size={"height": 28, "width": 28}, image_mean=[0.5], image_std=[0.5], do_rescale=True).save_pretrained(tmp_path / family)

    processor = AutoImageProcessor.from_pretrained(tmp_path / family)
    model = AutoModelForImageClassification.from_pretrained(tmp_path / family)
    raw = fashion_mnist["train"].select(range(512)).with_format("numpy")[:]
    pixels = processor(list(raw["pixel_values"].transpose(0, 2, 3, 1)), input_data_format="channels_last", return_tensors="np")["pixel_values"]
    train = datasets.Dataset.from_dict({"pixel_values": pixels.astype("float32"), "labels": raw["labels"]}).with_format("torch")
    trainer = AutoAssistTrainer(model=model, args=config(tmp_path, learning_rate=2e-3), train_dataset=train)
    assert_shrank_and_learned(trainer)
    assert trainer.selection_run.assistant.base.features.shape == (512, 49)  # 7x7 pooled pixels of the processed images
