"""One logit per label of a category output."""
from decoders.regressor import Projection, ProjectionSchema
from framework.registry import register_decoder


@register_decoder("classifier", schema=ProjectionSchema, types=("category",))
class Classifier(Projection):
    """Logits over the output's vocabulary; softmax and argmax happen in the feature type."""
