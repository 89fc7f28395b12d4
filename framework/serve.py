"""A saved model behind a REST API: `framework serve --model dir` (FastAPI app, run by uvicorn).

GET  /health         the model's name, type and features
POST /predict        JSON: one row object (answered with one object) or a list of rows (answered with a
                     list); or a CSV upload as the multipart field `file` (answered with a list)
POST /batch_predict  {"columns": [...], "data": [[...], ...]} (pandas' orient="split"), answered in the
                     same layout

Rows are checked against a pydantic model built from the input features, so a bad value is a 422 that
names its field before any preprocessing runs. An llm row may carry `generation` settings, checked by
the config's own generation schema. fastapi, pydantic and uvicorn load only when serving.
"""

import copy
import functools
import io
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from framework.errors import FrameworkError, ModelDirError

# a feature type's accepted JSON values; its preprocessing parses strings the way it parses a CSV's
FIELD_TYPES: dict[str, Any] = {
    "number": float,
    "binary": bool | float | str,
    "category": str | int,
    "text": str,
    "sequence": str,
    "date": str,
    "set": str | list[str],
    "bag": str | list[str],
    "vector": str | list[float],
    "timeseries": str | list[float],
    "image": str,  # a path or URL, as in a training CSV
    "audio": str,
}
GENERATION = "generation"  # the key of an llm row's per-request generation settings


def row_model(input_features: list[dict]):
    """A pydantic model of one input row: each feature's column, required, its value typed by the
    feature type (null allowed: the feature's missing-value strategy fills it), and the optional
    `generation` settings. Other keys are ignored, so rows that still hold their targets are accepted."""
    from typing import Any as AnyValue
    from typing import Optional

    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    for index, feature in enumerate(input_features):
        kind = FIELD_TYPES.get(feature["type"], AnyValue)  # an unlisted type: its preprocessing checks values
        # positional field names with the column as alias: a column may be any string, even "model_config"
        fields[f"input_{index}"] = (Optional[kind], Field(..., alias=feature["column"]))
    if GENERATION not in {feature["column"] for feature in input_features}:
        fields[GENERATION] = (Optional[dict[str, AnyValue]], Field(None, alias=GENERATION))
    return create_model("Row", __config__=ConfigDict(extra="ignore"), **fields)


def _validation_error(errors: list[dict]):
    from fastapi.exceptions import RequestValidationError

    return RequestValidationError(errors)


def _problem(loc: tuple, message: str, kind: str = "value_error") -> dict:
    return {"loc": ("body", *loc), "msg": message, "type": kind}


class Predictor:
    """The loaded model and what checks its requests. Predictions run one at a time: the model and its
    tokenizer are shared, and a batch already uses the cores."""

    def __init__(self, model, name: str):
        from pydantic import TypeAdapter

        self.model = model
        self.name = name
        self.rows = row_model(model.config["input_features"])
        self.many = TypeAdapter(list[self.rows])
        self.columns = [feature["column"] for feature in model.config["input_features"]]
        self.lock = threading.Lock()

    def health(self) -> dict:
        from framework.version import __version__

        def describe(features):
            return [{"name": f["name"], "type": f["type"], "column": f["column"]} for f in features]

        return {"status": "ok", "model": {"name": self.name, "type": self.model.config["model_type"]},
                "input_features": describe(self.model.config["input_features"]),
                "output_features": describe(self.model.config["output_features"]), "framework_version": __version__}

    def validate(self, rows: list, loc: tuple, single: bool = False) -> tuple[Any, list[dict | None]]:
        """(a DataFrame of the rows' input columns, each row's generation settings or None). Errors are
        located under `loc` by row number, or without one for a `single` row."""
        import pandas as pd
        from pydantic import ValidationError

        if not rows:
            raise _validation_error([_problem(loc, "no rows to predict", "too_short")])
        try:
            parsed = self.many.validate_python(rows)
        except ValidationError as error:
            errors = error.errors(include_url=False, include_context=False)
            raise _validation_error([{**e, "loc": ("body", *loc, *e["loc"][1 if single else 0:])}
                                     for e in errors]) from None
        records = [row.model_dump(by_alias=True, exclude={GENERATION}) for row in parsed]
        settings = [self.generation(getattr(row, GENERATION, None), loc if single else (*loc, index))
                    for index, row in enumerate(parsed)]
        return pd.DataFrame(records, columns=self.columns), settings

    def generation(self, override: dict | None, loc: tuple) -> dict | None:
        """The model's generation settings with `override` applied, checked as a config's would be."""
        if override is None:
            return None
        if not self.model.is_llm:
            raise _validation_error([_problem((*loc, GENERATION), "generation settings apply to llm models")])
        from framework.config.problems import Problems
        from framework.llm.schemas import GenerationSchema

        problems = Problems()
        merged = problems.load(GenerationSchema, {**self.model.config[GENERATION], **override}, GENERATION)
        if problems.items:
            raise _validation_error([_problem((*loc, *p.path.split(".")), p.message) for p in problems.items])
        return merged

    def predict(self, frame, settings: list[dict | None], index: list | None = None):
        """Predictions of the rows of `frame` (a DataFrame holding the input columns), in row order; rows
        with different generation settings are generated in groups."""
        import pandas as pd

        groups: dict[str, list[int]] = {}
        for row, setting in enumerate(settings):
            groups.setdefault(json.dumps(setting, sort_keys=True), []).append(row)
        parts = []
        with self.lock:
            for key, rows in groups.items():
                setting = json.loads(key)
                model = self.model
                if setting is not None:
                    model = copy.copy(self.model)  # shares the module and tokenizer; only the config differs
                    model.config = {**self.model.config, GENERATION: setting}
                parts.append(model.predict(frame.iloc[rows]))
        predictions = pd.concat(parts).loc[frame.index] if len(parts) > 1 else parts[0]
        if index is not None:
            predictions.index = index
        return predictions


async def _json_body(request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError as error:
        raise _validation_error([_problem((), f"the body is not valid JSON: {error}", "json_invalid")]) from None


async def _csv_rows(request, predictor: Predictor) -> tuple[Any, list]:
    """The uploaded CSV's input columns (each read as the file types it, a missing value as None) and each
    row's generation settings; the missing columns are a 422."""
    import pandas as pd

    form = await request.form()
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise _validation_error([_problem(("file",), "upload the CSV as the multipart file field 'file'", "missing")])
    try:
        frame = pd.read_csv(io.BytesIO(await upload.read()))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise _validation_error([_problem(("file",), f"the file is not a readable CSV: {error}")]) from None
    missing = [column for column in predictor.columns if column not in frame.columns]
    if missing:
        raise _validation_error([_problem(("file", column), "Field required", "missing") for column in missing])
    frame = frame[predictor.columns]
    # missing values as None, each column's dtype inferred again: the frame a list of JSON rows makes
    frame = frame.astype(object).where(frame.notna(), None).infer_objects()
    settings = predictor.generation(json.loads(form[GENERATION]) if GENERATION in form else None, (GENERATION,))
    return frame, [settings] * len(frame)


def _openapi_body(predictor: Predictor) -> dict:
    row = predictor.rows.model_json_schema(by_alias=True)
    rows = {"type": "array", "items": row}
    split = {"type": "object", "required": ["columns", "data"],
             "properties": {"columns": {"type": "array", "items": {"type": "string"}},
                            "data": {"type": "array", "items": {"type": "array"}}, "index": {"type": "array"}}}
    return {
        "predict": {"requestBody": {"required": True, "content": {
            "application/json": {"schema": {"oneOf": [row, rows]}},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"}}}}}}},
        "batch_predict": {"requestBody": {"required": True, "content": {"application/json": {"schema": split}}}},
    }


def model_name(directory: Path) -> str:
    """The run's name for a run's model/ folder (results/<name>_<n>/model), else the folder's own."""
    directory = directory.resolve()
    return directory.parent.name if directory.name == "model" and directory.parent.name else directory.name


def load_predictor(model_dir: str | os.PathLike) -> Predictor:
    from framework.api import Model

    directory = Path(model_dir)
    if not directory.is_dir():
        raise ModelDirError(f"model directory '{directory}' does not exist")
    return Predictor(Model.load(directory), model_name(directory))


def create_app(model_dir: str | os.PathLike):
    """The FastAPI app serving the model saved in `model_dir` (loaded now: a bad directory fails here)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, Response
    from starlette.concurrency import run_in_threadpool

    from framework.version import __version__

    predictor = load_predictor(model_dir)
    app = FastAPI(title=f"framework: {predictor.name}", version=__version__,
                  description=f"Predictions of the {predictor.model.config['model_type']} model '{predictor.name}'.")
    bodies = _openapi_body(predictor)

    async def run(frame, settings: list, index: list | None = None):
        return await run_in_threadpool(predictor.predict, frame, settings, index)

    @app.exception_handler(FrameworkError)
    async def _user_error(request, error):  # values that passed the schema but not preprocessing (a vector's width)
        return JSONResponse(status_code=422, content={"detail": str(error)})

    @app.get("/health")
    def health() -> dict:
        return predictor.health()

    @app.post("/predict", openapi_extra=bodies["predict"])
    async def predict(request: Request):
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            frame, settings = await _csv_rows(request, predictor)
            single = False
        else:
            body = await _json_body(request)
            single = isinstance(body, dict)
            if not single and not isinstance(body, list):
                raise _validation_error([_problem((), "expected a row object or a list of row objects", "type_error")])
            frame, settings = predictor.validate([body] if single else body, (), single=single)
        predictions = await run(frame, settings)
        if single:
            return Response(predictions.iloc[0].to_json(double_precision=15), media_type="application/json")
        return Response(predictions.to_json(orient="records", double_precision=15), media_type="application/json")

    @app.post("/batch_predict", openapi_extra=bodies["batch_predict"])
    async def batch_predict(request: Request):
        body = await _json_body(request)
        frame, settings, index = _split_rows(body, predictor)
        predictions = await run(frame, settings, index)
        return Response(predictions.to_json(orient="split", double_precision=15), media_type="application/json")

    return app


@functools.cache
def _split_body():
    """The pydantic model of a /batch_predict body, built once (pydantic loads only when serving)."""
    from pydantic import BaseModel, ConfigDict

    class Split(BaseModel):
        model_config = ConfigDict(extra="forbid")
        columns: list[str]
        data: list[list[Any]]
        index: list[Any] | None = None
        generation: dict[str, Any] | None = None

    return Split


def _split_rows(body: Any, predictor: Predictor) -> tuple[Any, list, list | None]:
    """A DataFrame of a {"columns", "data", "index"} body's rows, each checked like a /predict row."""
    from pydantic import ValidationError

    try:
        split = _split_body().model_validate(body)
    except ValidationError as error:
        raise _validation_error([{**e, "loc": ("body", *e["loc"])}
                                 for e in error.errors(include_url=False, include_context=False)]) from None
    width = len(split.columns)
    bad = [_problem(("data", row), f"has {len(values)} values for {width} columns")
           for row, values in enumerate(split.data) if len(values) != width]
    if split.index is not None and len(split.index) != len(split.data):
        bad.append(_problem(("index",), f"has {len(split.index)} labels for {len(split.data)} rows"))
    if bad:
        raise _validation_error(bad)
    rows = [dict(zip(split.columns, values)) for values in split.data]
    frame, _ = predictor.validate(rows, ("data",))
    setting = predictor.generation(split.generation, ())
    return frame, [setting] * len(frame), split.index


def check_port_free(host: str, port: int) -> None:
    """Fails with a clear message now rather than after the model has loaded, if the port is taken."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise FrameworkError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None


def serve(model_dir: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Loads the model, then serves it until interrupted."""
    try:
        import uvicorn
    except ImportError:
        raise FrameworkError("serving needs fastapi and uvicorn: pip install 'framework[serve]'") from None
    check_port_free(host, port)
    app = create_app(model_dir)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
