"""Vector encoders: the number encoders' fc stack and passthrough, over all D values of a row."""
from encoders.dense import DenseEncoder, DenseSchema
from encoders.passthrough import PassthroughEncoder, PassthroughSchema
from framework.registry import register_encoder


@register_encoder("dense", schema=DenseSchema, types=("vector",))
class VectorDenseEncoder(DenseEncoder):
    """An fc stack over the [B, D] vectors."""


@register_encoder("passthrough", schema=PassthroughSchema, types=("vector",))
class VectorPassthroughEncoder(PassthroughEncoder):
    """The [B, D] vectors as they are (already standardised, or learned elsewhere)."""
