"""The transformer combiner: one token per input, the [CLS] token, the heads check, and XOR learned."""
import torch

from combiners.transformer import TransformerCombiner
from framework.models.encoded import Encoded


def test_each_input_is_one_token_and_cls_prepends_one_more():
    torch.manual_seed(0)
    inputs = {"a": Encoded(torch.randn(2, 3)), "b": Encoded(torch.randn(2, 5))}
    seen = []
    for reduce_output in ("mean", "cls"):
        combiner = TransformerCombiner({"a": 3, "b": 5}, hidden_size=8, num_heads=2, reduce_output=reduce_output)
        combiner.transformer.register_forward_hook(lambda module, args, output: seen.append(tuple(output.shape)))
        combiner(inputs)
    assert seen == [(2, 2, 8), (2, 3, 8)]
    assert TransformerCombiner({"a": 3, "b": 5}).cls is None


def test_mean_reduction_is_the_mean_of_the_transformer_tokens():
    torch.manual_seed(0)
    combiner = TransformerCombiner({"a": 3, "b": 5}, num_fc_layers=0, hidden_size=8, num_heads=2).eval()
    inputs = {"a": Encoded(torch.randn(2, 3)), "b": Encoded(torch.randn(2, 5))}
    tokens = torch.stack([combiner.projections["a"](inputs["a"].pooled), combiner.projections["b"](inputs["b"].pooled)], 1)
    torch.testing.assert_close(combiner(inputs), combiner.transformer(tokens).mean(dim=1))


def test_hidden_size_must_be_a_multiple_of_the_heads(config_error):
    message = config_error({"type": "transformer", "hidden_size": 30, "num_heads": 4})
    assert "combiner.hidden_size: must be a multiple of num_heads (4) (got 30)" in message


def test_transformer_learns_xor(learn, xor):
    sizes, batch = xor
    combiner = TransformerCombiner(sizes, output_size=16, hidden_size=16, num_heads=2, feed_forward_size=32)
    assert learn(combiner, batch, 100) >= 0.97
