"""The `tones` fixture: tone files written under the test's tmp dir."""
import pytest
from audio_tones import tone_frame


@pytest.fixture
def tones(tmp_path):
    """tones(n, seed): a DataFrame of tone files under this test's tmp dir."""
    return lambda n, seed, sample_rate=16000: tone_frame(tmp_path / f"tones_{seed}", n, seed, sample_rate)
