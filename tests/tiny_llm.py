"""A tiny Llama and a word-level tokenizer, built offline and saved like a hub checkpoint, so tests load
them by path through the framework's real loading code."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
COUNTRIES = ["france", "spain", "italy", "japan", "peru", "chile", "kenya", "egypt", "india", "nepal", "cuba", "fiji"]
CITIES = ["paris", "madrid", "rome", "tokyo", "lima", "santiago", "nairobi", "cairo", "delhi", "kathmandu", "havana",
          "suva"]


def capitals_frame(repeats: int = 4) -> pd.DataFrame:
    """A memorizable task: a country in, its capital out (each pair `repeats` times)."""
    rows = [{"country": country, "capital": city} for country, city in zip(COUNTRIES, CITIES)] * repeats
    return pd.DataFrame(rows)


def build_tiny_llm(directory: Path, words: list[str] | None = None, chat_template: str | None = None,
                   layers: int = 2, hidden: int = 32) -> Path:
    """Saves a random-weight LlamaForCausalLM and its tokenizer to `directory`; returns it."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = words or ["country", "capital", "question", "answer", ":", "?", "the", "of", "is", "what", "a", "b", "c",
                      "user", "assistant", "\n", *COUNTRIES, *CITIES]
    vocab = {token: i for i, token in enumerate(SPECIALS + sorted(set(words) - set(SPECIALS)))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", vocab["<s>"])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                        unk_token="<unk>", pad_token="<pad>")
    if chat_template:
        tokenizer.chat_template = chat_template
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=128, bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"],
                         pad_token_id=vocab["<pad>"], tie_word_embeddings=False,
                         initializer_range=0.3)  # logits wide enough for an adapter to move them
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def llm_config(base_model: Path, **overrides) -> dict:
    config = {
        "model_type": "llm",
        "base_model": str(base_model),
        "input_features": [{"name": "country", "type": "text"}],
        "output_features": [{"name": "capital", "type": "text"}],
        "prompt": {"template": "country : {country} capital :"},
        "adapter": {"type": "lora", "r": 8, "lora_alpha": 16, "lora_dropout": 0.0},
        "generation": {"max_new_tokens": 4},
        "trainer": {"epochs": 30, "batch_size": 8, "learning_rate": 0.01, "progress_bar": False},
        "preprocessing": {"split": {"probabilities": [1.0, 0.0, 0.0]}},
    }
    for key, value in overrides.items():
        config[key] = {**config[key], **value} if isinstance(value, dict) and isinstance(config.get(key), dict) else value
    return config


def build_tiny_bert(directory: Path, words: list[str] | None = None, hidden: int = 32) -> Path:
    """Saves a random-weight BertModel (a bidirectional encoder, [CLS] ... [SEP]) and its tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = words or ["the", "cat", "sat", "a", "dog", "and", "dogs", "cats", "all", "of", "them", "no", "end", "!",
                      ",", "good", "bad", "movie", "film", "great", "awful", *COUNTRIES, *CITIES]
    vocab = {token: i for i, token in enumerate(specials + sorted(set(words) - set(specials)))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                        cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=2 * hidden, max_position_embeddings=128, pad_token_id=vocab["[PAD]"])
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
