"""The comparator: its entities checked against the model's inputs, the comparison by hand, and
"are these the same item?" learned."""
import pytest
import torch

from combiners.comparator import ComparatorCombiner
from framework.errors import ConfigError
from framework.models.encoded import Encoded

SIZES = {"title": 3, "price": 1, "other_title": 3, "other_price": 1}


def problems(**entities) -> str:
    with pytest.raises(ConfigError) as error:
        ComparatorCombiner(SIZES, **entities)
    return str(error.value)


def test_unknown_names_are_named_with_the_inputs_present():
    message = problems(entity_1=["title", "prise", "colour"], entity_2=["other_title", "other_price"])
    assert ("combiner.entity_1: 'prise', 'colour': no such input feature (did you mean 'price' for 'prise'?); "
            "the inputs are 'title', 'price', 'other_title', 'other_price'") in message


def test_an_input_in_both_entities_is_rejected():
    message = problems(entity_1=["title", "price"], entity_2=["other_title", "other_price", "price"])
    assert "combiner.entity_2: 'price' also in entity_1; an input feature belongs to one entity only" in message


def test_empty_entities_are_rejected_together():
    message = problems()  # the defaults: no model has them right
    assert "2 problems" in message
    assert "combiner.entity_1: must name at least one input feature; the inputs are 'title'" in message
    assert "combiner.entity_2: must name at least one input feature" in message


def test_an_input_in_neither_entity_is_rejected():
    message = problems(entity_1=["title"], entity_2=["other_title", "other_price"])
    assert "combiner: input features 'price': in neither entity_1 nor entity_2" in message


def test_the_comparison_is_e1_e2_their_product_and_distances():
    torch.manual_seed(0)
    combiner = ComparatorCombiner(SIZES, num_fc_layers=0, entity_1=["title", "price"],
                                  entity_2=["other_title", "other_price"], entity_size=2, include_difference=True)
    inputs = {name: Encoded(torch.randn(3, size)) for name, size in SIZES.items()}
    e1 = combiner.projections[0](torch.cat([inputs["title"].pooled, inputs["price"].pooled], dim=1))
    e2 = combiner.projections[1](torch.cat([inputs["other_title"].pooled, inputs["other_price"].pooled], dim=1))
    expected = torch.cat([e1, e2, e1 * e2, (e1 - e2).abs(), e1 - e2], dim=1)
    torch.testing.assert_close(combiner(inputs), expected)


PROTOTYPES = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))


def same_item_batch(n: int, generator: torch.Generator) -> tuple[dict[str, Encoded], torch.Tensor]:
    """Each entity is one of six items seen with noise; label: both are the same item (half the rows)."""
    first = torch.randint(0, 6, (n,), generator=generator)
    same = torch.rand(n, generator=generator) < 0.5
    second = torch.where(same, first, (first + torch.randint(1, 6, (n,), generator=generator)) % 6)
    seen = [PROTOTYPES[i] + 0.1 * torch.randn(n, 4, generator=generator) for i in (first, second)]
    return {"a": Encoded(seen[0]), "b": Encoded(seen[1])}, same.float()


def test_comparator_learns_whether_two_entities_are_the_same(learn):
    combiner = ComparatorCombiner({"a": 4, "b": 4}, output_size=16, entity_1=["a"], entity_2=["b"], entity_size=16)
    assert learn(combiner, same_item_batch, 100) >= 0.97
