"""`framework serve`: the REST API answers what Model.predict answers, checks rows against the input
features' types (422 naming the field), takes an llm's generation settings per request, and the CLI
refuses a directory that is not a saved model without a traceback."""
import json
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from framework.cli import main
from framework.errors import FrameworkError
from framework.serve import check_port_free, create_app, row_model
from synthetic import synthetic_frame

COLUMNS = ["x", "z", "color", "flag"]


@pytest.fixture(scope="module")
def client(ecd_model_dir):
    return TestClient(create_app(ecd_model_dir))


@pytest.fixture(scope="module")
def rows():
    return synthetic_frame(6, seed=3)


def assert_same(records: list[dict], expected: pd.DataFrame) -> None:
    got = pd.DataFrame(records)
    assert list(got.columns) == list(expected.columns)
    for column in expected.columns:
        if expected[column].dtype.kind == "f":
            np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float), rtol=1e-6)
        else:
            assert got[column].tolist() == expected[column].tolist(), column


def test_health_names_the_model_and_its_features(client):
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model"] == {"name": "tabular_0", "type": "ecd"}
    assert [(f["name"], f["type"]) for f in health["input_features"]] == [
        ("x", "number"), ("z", "number"), ("color", "category"), ("flag", "binary")]
    assert [f["name"] for f in health["output_features"]] == ["label", "tier", "amount"]


def test_one_row_is_answered_with_one_object_equal_to_model_predict(client, ecd_model, rows):
    row = rows.iloc[[0]][COLUMNS]
    response = client.post("/predict", json=json.loads(row.to_json(orient="records"))[0])
    assert response.status_code == 200
    answer = response.json()
    assert isinstance(answer, dict)
    assert_same([answer], ecd_model.predict(row).reset_index(drop=True))


def test_a_list_of_rows_and_a_csv_upload_keep_row_order_and_match_model_predict(client, ecd_model, rows):
    expected = ecd_model.predict(rows).reset_index(drop=True)
    listed = client.post("/predict", json=json.loads(rows.to_json(orient="records")))  # targets too: ignored
    assert listed.status_code == 200
    assert_same(listed.json(), expected)
    uploaded = client.post("/predict", files={"file": ("rows.csv", rows.to_csv(index=False), "text/csv")})
    assert uploaded.status_code == 200
    assert_same(uploaded.json(), expected)


def test_batch_predict_takes_and_returns_pandas_split_layout(client, ecd_model, rows):
    frame = rows[COLUMNS].set_axis([10, 11, 12, 13, 14, 15])
    response = client.post("/batch_predict", content=frame.to_json(orient="split"),
                           headers={"content-type": "application/json"})
    assert response.status_code == 200
    body = response.json()
    assert body["index"] == [10, 11, 12, 13, 14, 15]
    assert_same([dict(zip(body["columns"], values)) for values in body["data"]],
                ecd_model.predict(rows).reset_index(drop=True))


def test_bad_rows_are_422_naming_the_field(client, rows):
    good = json.loads(rows[COLUMNS].to_json(orient="records"))
    wrong_type = client.post("/predict", json=[good[0], {**good[1], "x": "not a number"}])
    assert wrong_type.status_code == 422
    assert [(e["loc"], e["type"]) for e in wrong_type.json()["detail"]] == [(["body", 1, "x"], "float_parsing")]

    missing = client.post("/predict", json={k: v for k, v in good[0].items() if k != "color"})
    assert missing.status_code == 422
    assert [(e["loc"], e["type"]) for e in missing.json()["detail"]] == [(["body", "color"], "missing")]

    csv = client.post("/predict", files={"file": ("rows.csv", rows.drop(columns="flag").to_csv(index=False))})
    assert csv.status_code == 422 and csv.json()["detail"][0]["loc"] == ["body", "file", "flag"]

    short = client.post("/batch_predict", json={"columns": COLUMNS, "data": [[0.1, 0.2, "red"]]})
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "data", 0]

    typed = client.post("/batch_predict", json={"columns": COLUMNS, "data": [[0.1, 0.2, "red", True], [0.1, [1], "red", 1]]})
    assert typed.status_code == 422 and typed.json()["detail"][0]["loc"] == ["body", "data", 1, "z"]

    empty = client.post("/predict", json=[])
    assert empty.status_code == 422 and empty.json()["detail"][0]["msg"] == "no rows to predict"

    not_a_row = client.post("/predict", json=5)
    assert not_a_row.status_code == 422 and not_a_row.json()["detail"][0]["loc"] == ["body"]

    not_json = client.post("/predict", content=b"{x: 1", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and not_json.json()["detail"][0]["type"] == "json_invalid"

    generation = client.post("/predict", json={**good[0], "generation": {"max_new_tokens": 2}})
    assert generation.status_code == 422 and "llm" in generation.json()["detail"][0]["msg"]


def test_row_model_types_follow_the_feature_types():
    from pydantic import ValidationError

    features = [{"name": n, "type": t, "column": c} for n, t, c in [
        ("x", "number", "x"), ("flag", "binary", "flag"), ("color", "category", "color"),
        ("review", "text", "review text"), ("embedding", "vector", "embedding"), ("tags", "set", "model_config")]]
    Row = row_model(features)
    row = Row.model_validate({"x": "1.5", "flag": "yes", "color": 3, "review text": "good", "embedding": [1, 2],
                              "model_config": ["a", "b"], "target": "ignored"})
    assert row.model_dump(by_alias=True, exclude={"generation"}) == {
        "x": 1.5, "flag": "yes", "color": 3, "review text": "good", "embedding": [1.0, 2.0], "model_config": ["a", "b"]}
    assert Row.model_validate({"x": None, "flag": None, "color": None, "review text": None, "embedding": None,
                               "model_config": None}).model_dump(by_alias=True)["x"] is None  # missing values
    with pytest.raises(ValidationError) as error:
        Row.model_validate({"x": 1, "flag": True, "color": "red", "review text": ["not", "a", "string"],
                            "embedding": "1 2", "model_config": "a b"})
    assert {e["loc"][0] for e in error.value.errors()} == {"review text"}
    schema = Row.model_json_schema(by_alias=True)
    assert schema["required"] == ["x", "flag", "color", "review text", "embedding", "model_config"]


def test_llm_generation_settings_are_overridable_per_request_and_checked(llm_model_dir):
    from framework.api import Model

    client = TestClient(create_app(llm_model_dir))
    assert client.get("/health").json()["model"]["type"] == "llm"
    model = Model.load(llm_model_dir)
    expected = model.predict(pd.DataFrame({"country": ["france", "peru"]}))["capital_predictions"].tolist()
    model.config = {**model.config, "generation": {**model.config["generation"], "max_new_tokens": 1}}
    one_token = model.predict(pd.DataFrame({"country": ["france", "peru"]}))["capital_predictions"].tolist()

    plain = client.post("/predict", json=[{"country": "france"}, {"country": "peru"}]).json()
    assert [row["capital_predictions"] for row in plain] == expected
    mixed = client.post("/predict", json=[{"country": "france", "generation": {"max_new_tokens": 1}},
                                          {"country": "peru"}]).json()  # generated in two groups, order kept
    assert [row["capital_predictions"] for row in mixed] == [one_token[0], expected[1]]
    batch = client.post("/batch_predict", json={"columns": ["country"], "data": [["france"], ["peru"]],
                                                "generation": {"max_new_tokens": 1}}).json()
    assert [values[0] for values in batch["data"]] == one_token

    bad = client.post("/predict", json={"country": "france", "generation": {"temprature": 0.5, "max_new_tokens": 0}})
    assert bad.status_code == 422
    detail = {tuple(e["loc"]): e["msg"] for e in bad.json()["detail"]}
    assert "did you mean 'temperature'" in detail[("body", "generation", "temprature")]
    assert ("body", "generation", "max_new_tokens") in detail


def test_serving_a_directory_that_is_not_a_model_exits_2_without_a_traceback(tmp_path, capsys):
    (tmp_path / "config.yaml").write_text("input_features: []\n")
    assert main(["serve", "--model", str(tmp_path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "is not a saved model" in err and "Traceback" not in err
    assert main(["serve", "--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_taken_port_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FrameworkError, match=f"cannot listen on 127.0.0.1:{port}"):
            check_port_free("127.0.0.1", port)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_real_server_answers_over_http(ecd_model_dir, ecd_model, rows):
    import httpx

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "framework", "serve", "--model", str(ecd_model_dir),
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        response = httpx.post(f"{url}/predict", json=json.loads(rows[COLUMNS].to_json(orient="records")), timeout=30)
        assert response.status_code == 200
        assert_same(response.json(), ecd_model.predict(rows).reset_index(drop=True))
    finally:
        server.terminate()
        server.wait(timeout=30)
