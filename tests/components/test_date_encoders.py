"""Date encoders over [B, 9] calendar components."""
import math

import torch

from encoders.date import DateEmbedEncoder, DateWaveEncoder, cyclic
from framework.registry import encoders

DATES = torch.tensor([[2021, 3, 4, 3, 63, 10, 11, 12, 36672], [1999, 12, 31, 4, 365, 23, 59, 59, 86399],
                      [2020, 2, 29, 5, 60, 0, 0, 0, 0]])


def test_registered_for_dates():
    assert encoders.get("embed", "date").cls is DateEmbedEncoder
    assert encoders.get("wave", "date").cls is DateWaveEncoder


def test_output_shapes_with_and_without_an_fc_stack():
    for cls in (DateEmbedEncoder, DateWaveEncoder):
        encoder = cls(output_size=16)
        assert encoder(DATES).shape == (3, 16) and encoder.output_size == 16
    assert DateEmbedEncoder(num_fc_layers=0, embedding_size=4)(DATES).shape == (3, 7 * 4 + 3)
    assert DateWaveEncoder(num_fc_layers=0)(DATES).shape == (3, 2 * 7 + 3)


def test_wave_features_are_points_on_each_cycle():
    features = DateWaveEncoder(num_fc_layers=0).eval()(DATES)
    # [year, sin, cos of the second of the day, then sin, cos of month, day, weekday, ...]
    torch.testing.assert_close(features[:, 0], (DATES[:, 0] - 2000).float() / math.sqrt(1 + 1e-5))
    torch.testing.assert_close(features[0, 3:5], torch.tensor([math.sin(2 * math.pi * 3 / 12),
                                                                math.cos(2 * math.pi * 3 / 12)]))
    torch.testing.assert_close(cyclic(torch.tensor([0, 6]), 12), torch.tensor([[0.0, 1.0], [0.0, -1.0]]),
                               atol=1e-6, rtol=0)


def test_year_is_standardised_by_batch_statistics_in_training():
    encoder = DateWaveEncoder(num_fc_layers=0).train()
    years = encoder(DATES)[:, 0]
    assert abs(years.mean().item()) < 1e-5 and abs(years.std(unbiased=False).item() - 1) < 1e-3
