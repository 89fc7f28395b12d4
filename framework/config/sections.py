"""Schemas of the config's top level, its features and its global preprocessing section."""
from __future__ import annotations

from marshmallow import fields

from framework.config import fields as f


class TopLevelSchema(f.Schema):
    model_type = f.Choice(["ecd", "llm"], "ecd", doc="ecd: encoders -> combiner -> decoders; llm: a causal "
                                                     "language model fine-tuned text to text")
    input_features = fields.List(fields.Raw(), required=True, metadata={"doc": "the model's inputs"})
    output_features = fields.List(fields.Raw(), required=True, metadata={"doc": "what the model predicts"})
    combiner = f.Any_(None, doc="{type: concat, ...its settings}")
    trainer = f.Any_(None, doc="training settings")
    preprocessing = f.Any_(None, doc="split and sampling of the dataset")
    defaults = f.Any_(None, doc="per feature type: preprocessing / encoder / decoder / loss defaults")
    seed = f.Int(42, min=0, doc="seed for splitting, initialisation and shuffling")
    hyperopt = f.Any_(None, doc="a hyperparameter search over this config (`framework hyperopt`): metric, goal, "
                                "parameters, num_samples, sampler, pruner, executor")
    framework_version = f.Str(None, doc="written into saved configs; the version that resolved them")


class FeatureSchema(f.Schema):
    name = f.Str(required=True, doc="the feature's name (unique)")
    type = f.Str(required=True, doc="data type: binary, number, category ...")
    column = f.Str(None, doc="the dataset column (default: name)")
    preprocessing = f.Any_(None, doc="settings of the type's preprocessing")


class InputFeatureSchema(FeatureSchema):
    encoder = f.Any_(None, doc="{type: ..., ...its settings}")


class OutputFeatureSchema(FeatureSchema):
    decoder = f.Any_(None, doc="{type: ..., ...its settings}")
    loss = f.Any_(None, doc="{type: ..., ...its settings}")
    weight = f.Float(1.0, min=0.0, doc="this output's weight in the combined loss")
    metrics = fields.List(fields.String(), load_default=None, allow_none=True,
                          metadata={"doc": "metrics to report (default: all of the type's)"})
    top_k = f.Int(3, min=1, doc="category: k of top_k_accuracy")
    threshold = f.Float(0.5, min=0.0, max=1.0, doc="binary: probability at which a prediction is true")


class PreprocessingSchema(f.Schema):
    split = f.Any_(None, doc="{type: random|fixed|stratify, probabilities, column}")
    sample_ratio = f.Float(1.0, min=0.0, max=1.0, min_inclusive=False, doc="use this fraction of the rows")
    sample_size = f.Int(None, min=1, doc="use at most this many rows")
    cache = f.Bool(True, doc="cache the preprocessed dataset on disk, keyed by data and settings")


DEFAULTS_SECTIONS = ("preprocessing", "encoder", "decoder", "loss")
# the defaults sections that apply to a feature of each role: an input has no decoder or loss, an
# output no encoder
ROLE_DEFAULTS = {"input": ("preprocessing", "encoder"), "output": ("preprocessing", "decoder", "loss")}
