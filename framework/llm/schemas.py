"""The sections of a `model_type: llm` config: the base model, prompt, quantization, generation and the
trainer's extra settings. The adapter section is checked by peft itself (see adapters.py)."""
from __future__ import annotations

from marshmallow import fields

from framework.config import fields as f
from framework.training.settings import TrainerSchema


class LLMTopLevelSchema(f.Schema):
    model_type = f.Choice(["ecd", "llm"], "ecd", doc="llm: a causal language model fine-tuned text to text")
    base_model = f.Str(required=True, doc="a Hugging Face model name or a local directory holding one")
    trust_remote_code = f.Bool(False, doc="run the model repository's own Python code (off unless you trust it)")
    model_dtype = f.Choice(["auto", "float32", "bfloat16", "float16"], "auto",
                           doc="weights' dtype: auto is bfloat16 on a GPU that supports it, else float32")
    attention = f.Choice(["auto", "sdpa", "eager", "flash_attention_2"], "auto",
                         doc="attention kernel (flash_attention_2 needs a GPU and the flash-attn package)")
    input_features = fields.List(fields.Raw(), required=True, metadata={"doc": "text columns the prompt reads"})
    output_features = fields.List(fields.Raw(), required=True, metadata={"doc": "the one text column to generate"})
    prompt = f.Any_(None, doc="{template, task, examples, retrieve, chat_template}")
    adapter = f.Any_(None, doc="{type: lora|dora|rslora|lora+|ia3|prompt_tuning|prefix_tuning|p_tuning|adalora|"
                               "loha|lokr|none, ...peft settings}")
    quantization = f.Any_(None, doc="{bits: 4|8, ...bitsandbytes settings}")
    generation = f.Any_(None, doc="decoding settings for predict and evaluate")
    trainer = f.Any_(None, doc="training settings")
    preprocessing = f.Any_(None, doc="split and sampling of the dataset")
    defaults = f.Any_(None, doc="(ecd only)")
    combiner = f.Any_(None, doc="(ecd only)")
    seed = f.Int(42, min=0, doc="seed for splitting, initialisation and shuffling")
    hyperopt = f.Any_(None, doc="a hyperparameter search over this config (`framework hyperopt`), optimizing one "
                                "of the metrics each epoch reports: loss, perplexity or token_accuracy")
    framework_version = f.Str(None, doc="written into saved configs; the version that resolved them")


class LLMFeatureSchema(f.Schema):
    name = f.Str(required=True, doc="the feature's name, the {slot} the prompt template fills")
    type = f.Choice(["text"], "text", doc="text: an LLM reads and writes text")
    column = f.Str(None, doc="the dataset column (default: name)")


class LLMOutputFeatureSchema(LLMFeatureSchema):
    metrics = fields.List(fields.String(), load_default=None, allow_none=True,
                          metadata={"doc": "metrics to report (default: all)"})


class PromptSchema(f.Schema):
    template = f.Str(None, doc="the prompt with {input feature name} slots; default: the input alone, or each "
                               "input on a line of its own after its name")
    task = f.Str(None, doc="an instruction said once at the start, before any few-shot example (a {task} slot "
                           "puts it inside the template instead, and so into every example)")
    examples = fields.List(fields.Dict(), load_default=None, allow_none=True,
                           metadata={"doc": "fixed few-shot examples: mappings of the input and output columns"})
    retrieve = f.Int(0, min=0, doc="few-shot examples retrieved per row from the training split: the most similar "
                                   "by TF-IDF cosine of the filled templates (never the row itself), after the "
                                   "fixed examples; the training examples are saved with the model for predict "
                                   "(0: none)")
    chat_template = f.Choice(["auto", True, False], "auto",
                             doc="wrap the prompt in the tokenizer's chat template (auto: when it has one)")


class QuantizationSchema(f.Schema):
    bits = f.Choice([4, 8], 4, doc="4-bit (NF4/FP4, QLoRA with an adapter) or 8-bit (LLM.int8) weights")
    quant_type = f.Choice(["nf4", "fp4"], "nf4", doc="4-bit data type")
    double_quant = f.Bool(True, doc="also quantize the 4-bit quantization constants")
    compute_dtype = f.Choice(["auto", "float32", "bfloat16", "float16"], "auto",
                             doc="dtype of 4-bit matmuls (auto: the model's dtype)")
    llm_int8_threshold = f.Float(6.0, min=0.0, doc="8-bit: outlier threshold above which a value stays in fp16")
    skip_modules = fields.List(fields.String(), load_default=None, allow_none=True,
                               metadata={"doc": "modules left unquantized (default: the output layer)"})


class GenerationSchema(f.Schema):
    max_new_tokens = f.Int(64, min=1, doc="the most tokens generated per row")
    do_sample = f.Bool(False, doc="sample (with temperature, top_k, top_p) instead of greedy / beam search")
    temperature = f.Float(1.0, min=0.0, min_inclusive=False, doc="sampling temperature")
    top_k = f.Int(50, min=0, doc="sample among the k most likely tokens (0: all)")
    top_p = f.Float(1.0, min=0.0, max=1.0, min_inclusive=False, doc="nucleus sampling mass")
    num_beams = f.Int(1, min=1, doc="beam search width (1: greedy or sampling)")
    repetition_penalty = f.Float(1.0, min=0.0, min_inclusive=False, doc="penalty on repeated tokens (1: none)")
    stop = fields.List(fields.String(), load_default=None, allow_none=True,
                       metadata={"doc": "strings that end generation; the text is cut before them"})


class LLMTrainerSchema(TrainerSchema):
    epochs = f.Int(3, min=1, doc="passes over the training split")
    batch_size = f.Int(4, min=1, doc="examples (or packed rows) per forward/backward pass")
    eval_batch_size = f.Int(16, min=1, doc="rows per batch in evaluation and generation")
    learning_rate = f.Float(2e-4, min=0.0, min_inclusive=False, doc="base learning rate")
    early_stop = f.Int(0, min=0, doc="evaluations without improvement before stopping (0: never stop early)")
    max_sequence_length = f.Int(None, min=2, doc="tokens per example, prompt + response + EOS (default: the "
                                                 "model's limit); longer examples lose the start of the prompt, "
                                                 "then the end of the response, and are counted")
    packing = f.Bool(False, doc="pack several examples into each row of max_sequence_length tokens (each still "
                                "attends only to itself) instead of padding to the batch's longest example")
    neftune_noise_alpha = f.Float(None, min=0.0, doc="NEFTune: uniform noise of this scale on the input "
                                                      "embeddings while training (5 is typical)")
    gradient_checkpointing = f.Bool(False, doc="recompute activations in the backward pass: less memory, "
                                               "about a third more compute")
