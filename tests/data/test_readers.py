"""Reading datasets from DataFrames and files, chosen by extension; every failure a DataError."""
import pandas as pd
import pytest

from framework.data.readers import read_dataset
from framework.errors import DataError

FRAME = pd.DataFrame({"x": [1.5, 2.0, -3.25], "color": ["red", "green", "blue"], "label": [True, False, True]})

WRITERS = {
    "data.csv": lambda frame, path: frame.to_csv(path, index=False),
    "data.tsv": lambda frame, path: frame.to_csv(path, index=False, sep="\t"),
    "data.csv.gz": lambda frame, path: frame.to_csv(path, index=False, compression="gzip"),
    "data.parquet": lambda frame, path: frame.to_parquet(path, index=False),
    "data.json": lambda frame, path: frame.to_json(path, orient="records"),
    "data.jsonl": lambda frame, path: frame.to_json(path, orient="records", lines=True),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_each_format_reads_back_the_same_values(tmp_path, name):
    path = tmp_path / name
    WRITERS[name](FRAME, path)
    frame = read_dataset(path)
    assert list(frame.columns) == ["x", "color", "label"]
    assert frame["x"].tolist() == [1.5, 2.0, -3.25]
    assert frame["color"].astype(str).tolist() == ["red", "green", "blue"]
    assert [bool(v) for v in frame["label"]] == [True, False, True]
    assert read_dataset(str(path)).shape == (3, 3)  # a str path too


def test_a_dataframe_is_used_as_it_is():
    assert read_dataset(FRAME) is FRAME


def test_a_missing_file_names_the_file_and_role(tmp_path):
    with pytest.raises(DataError, match=r"validation dataset file '.*nope\.csv' does not exist"):
        read_dataset(tmp_path / "nope.csv", role="validation dataset")


def test_an_unsupported_extension_lists_the_supported_ones(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(DataError) as caught:
        read_dataset(path)
    assert "unsupported format '.xlsx'" in str(caught.value)
    assert ".csv, .json, .jsonl" in str(caught.value)


def test_a_directory_is_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_dataset(tmp_path)


def test_neither_frame_nor_path():
    with pytest.raises(DataError, match="must be a pandas DataFrame or a file path, got list"):
        read_dataset([1, 2])


def test_duplicate_columns_in_a_dataframe():
    frame = pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"])
    with pytest.raises(DataError, match=r"duplicated column names: \['a'\]"):
        read_dataset(frame)


@pytest.mark.parametrize("name, text", [("dup.csv", "a,b,a\n1,2,3\n"), ("dup.tsv", "a\tb\ta\n1\t2\t3\n")])
def test_duplicate_columns_in_a_csv_file(tmp_path, name, text):
    """pandas would rename the second 'a' to 'a.1'; a feature on 'a' must not silently read one of two."""
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=r"duplicated column names: \['a'\]"):
        read_dataset(tmp_path / name)


def test_a_csv_column_named_like_a_renamed_duplicate_is_kept(tmp_path):
    (tmp_path / "ok.csv").write_text("a,a.1\n1,2\n")
    assert list(read_dataset(tmp_path / "ok.csv").columns) == ["a", "a.1"]


def test_an_unreadable_file_is_a_data_error(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="could not be read"):
        read_dataset(path)
