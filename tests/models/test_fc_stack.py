"""The fully connected stack shared by combiners and decoders."""
import torch

from framework.models.fc_stack import FCStack


def test_no_layers_is_the_identity():
    stack = FCStack(5, num_fc_layers=0)
    x = torch.randn(3, 5)
    assert stack.output_size == 5 and torch.equal(stack(x), x)


def test_layers_norms_and_widths():
    stack = FCStack(5, num_fc_layers=3, output_size=8, norm="layer", activation="tanh", dropout=0.5)
    assert stack.output_size == 8 and len(stack.layers) == 3
    kinds = [type(m).__name__ for m in stack.layers[0]]
    assert kinds == ["Linear", "LayerNorm", "Tanh", "Dropout"]
    stack.eval()
    assert stack(torch.randn(4, 5)).shape == (4, 8)


def test_residual_adds_the_input_where_widths_match():
    torch.manual_seed(0)
    plain = FCStack(4, num_fc_layers=2, output_size=4, activation="none")
    residual = FCStack(4, num_fc_layers=2, output_size=4, activation="none", residual=True)
    residual.load_state_dict(plain.state_dict())
    x = torch.randn(3, 4)
    first, second = plain.layers
    expected = x + first(x)
    expected = expected + second(expected)
    torch.testing.assert_close(residual(x), expected)
    assert not torch.allclose(plain(x), expected)
