"""Large language models: `model_type: llm` fine-tuning (config, loading, adapters, prompts, data,
generation). Everything here imports transformers and peft lazily: `import framework` stays light."""

import logging

# bitsandbytes logs a warning on CPUs with AVX512-BF16 when the optional `kernels` package (which
# would download a kernel from the hub) is absent; its own CPU kernels are used instead. Not the
# user's concern, so that one message is dropped.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    lambda record: "kernels-community" not in record.getMessage())

import warnings

# peft (0.21) still calls transformers' deprecated `is_gradient_checkpointing`; nothing for a user to do
warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
