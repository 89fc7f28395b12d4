"""Set outputs: one logit per vocabulary label; each label is predicted on its own (sigmoid)."""
from decoders.regressor import Projection, ProjectionSchema
from framework.registry import register_decoder


@register_decoder("classifier", schema=ProjectionSchema, types=("set",))
class MultiLabelClassifier(Projection):
    """Logits [B, vocabulary]; sigmoid and the threshold happen in the set feature type."""
