"""Counting what a frozen encoder computes, for the embedding-cache tests: the rows of each call."""
from framework.data import embedding_cache


def count_embedded_rows(monkeypatch) -> list[int]:
    """Patches the encoder computation so every call appends the number of rows it computes to the list
    returned (an empty list after a run: every vector came from the cache)."""
    computed: list[int] = []
    real = embedding_cache.encoder_computation

    def counted(*args, **kwargs):
        compute = real(*args, **kwargs)
        return lambda rows: computed.append(len(rows)) or compute(rows)

    monkeypatch.setattr(embedding_cache, "encoder_computation", counted)
    return computed
