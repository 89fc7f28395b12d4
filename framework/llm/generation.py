"""Generation in batches: prompts sorted by length (little padding), left-padded, decoded with the
config's settings, cut at EOS and at stop strings, returned in the input's order."""
from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from framework.data.ragged import Ragged


def generation_config(settings: dict, tokenizer):
    from transformers import GenerationConfig

    sampling = {"temperature": settings["temperature"], "top_k": settings["top_k"], "top_p": settings["top_p"]} \
        if settings["do_sample"] else {}
    return GenerationConfig(max_new_tokens=settings["max_new_tokens"], do_sample=settings["do_sample"],
                            num_beams=settings["num_beams"], repetition_penalty=settings["repetition_penalty"],
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                            stop_strings=settings["stop"] or None, **sampling)


def cut_at_stop(text: str, stops: list[str] | None) -> str:
    """The text before the first stop string (stop strings themselves are not part of the answer)."""
    for stop in stops or []:
        position = text.find(stop)
        if position >= 0:
            text = text[:position]
    return text


def until_eos(ids: list[int], eos_id: int, pad_id: int) -> list[int]:
    """Generated ids up to and including the first EOS, without padding."""
    out = []
    for token in ids:
        if token == eos_id:
            out.append(token)
            break
        if token != pad_id or pad_id == eos_id:
            out.append(token)
    return out


@torch.inference_mode()
def generate(model: torch.nn.Module, tokenizer, prompts: Ragged, settings: dict, batch_size: int,
             device: torch.device, progress_bar: bool = False) -> tuple[list[str], list[list[int]]]:
    """(texts, generated ids up to EOS) per prompt, in the prompts' order."""
    model.eval()
    config = generation_config(settings, tokenizer)
    order = np.argsort(prompts.lengths, kind="stable")
    texts: list[str] = [""] * len(prompts)
    ids_out: list[list[int]] = [[] for _ in range(len(prompts))]
    extra = {"tokenizer": tokenizer} if settings["stop"] else {}
    for start in tqdm(range(0, len(prompts), batch_size), disable=not progress_bar, unit="batch", desc="generating"):
        rows = order[start:start + batch_size]
        chunk = prompts[rows]
        ids = torch.from_numpy(chunk.padded()).to(device)
        width = ids.shape[1]
        mask = (torch.arange(width) >= width - torch.from_numpy(chunk.lengths)[:, None]).long().to(device)
        generated = model.generate(input_ids=ids, attention_mask=mask, generation_config=config, **extra)
        new = generated[:, width:].tolist()
        for row, tokens in zip(rows, new):
            kept = until_eos(tokens, tokenizer.eos_token_id, tokenizer.pad_token_id)
            ids_out[row] = kept
            texts[row] = cut_at_stop(tokenizer.decode(kept, skip_special_tokens=True), settings["stop"]).strip()
    return texts, ids_out
