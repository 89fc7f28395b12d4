"""The command line: framework train | predict | evaluate | collect_activations | check | config-reference.

User errors print one clear message and exit 2 (add --debug for the traceback). Only argparse is
imported up front so `framework --help` answers at once.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_USER_ERROR = 2


def _common(debug_default: bool = False) -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=debug_default,
                        help="show the full traceback of an error")
    return parent


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="framework", parents=[common],
        description="Declarative deep learning: a YAML config names your columns and their types; "
                    "framework preprocesses, trains, evaluates and predicts.")
    from framework.version import __version__

    parser.add_argument("--version", action="version", version=f"framework {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", parents=[common], help="train a model from a config and a dataset")
    train.add_argument("--config", required=True, help="YAML config file")
    train.add_argument("--dataset", required=True, help="csv, tsv, parquet, json or jsonl file")
    train.add_argument("--validation", help="a separate validation file (otherwise the dataset is split)")
    train.add_argument("--test", help="a separate test file (otherwise the dataset is split)")
    train.add_argument("--output-dir", default="results", help="where run directories go (default: results)")
    train.add_argument("--experiment-name",
                       help="run directory name prefix (default: the config file's name, or its folder's for config.yaml)")
    train.add_argument("--resume", action="store_true", help="continue the newest run of this experiment")
    train.add_argument("--cache-dir", help="preprocessing cache directory")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    for name, text in (("predict", "predict with a trained model"), ("evaluate", "compute metrics on a labelled dataset"),
                       ("collect_activations", "write the outputs of named layers")):
        sub = commands.add_parser(name, parents=[common], help=text)
        sub.add_argument("--model", required=True, help="a model directory (results/<run>/model)")
        sub.add_argument("--dataset", required=name != "collect_activations" or None, help="data file")
        sub.add_argument("--batch-size", type=int, help="rows per batch (default: trainer.eval_batch_size)")
        if name == "predict":
            sub.add_argument("--output", default="predictions.csv", help="csv, tsv, parquet, json or jsonl file")
        elif name == "evaluate":
            sub.add_argument("--output", help="also write the metrics to this JSON file")
        else:
            sub.add_argument("--layers", nargs="+", help="layer names (see --list-layers)")
            sub.add_argument("--list-layers", action="store_true", help="print the layer names and exit")
            sub.add_argument("--output-dir", default="activations", help="one .npy file per layer goes here")

    check = commands.add_parser("check", parents=[common], help="validate a config and print it resolved")
    check.add_argument("--config", required=True, help="YAML config file")

    reference = commands.add_parser("config-reference", parents=[common],
                                    help="print every config setting with its default")
    reference.add_argument("--output", help="write to this file instead of printing")
    return parser


def _experiment_name(config_path: Path) -> str:
    """The config file's name, or its folder's for the conventional examples/<name>/config.yaml."""
    stem = config_path.stem
    folder = config_path.resolve().parent.name
    return folder if stem == "config" and folder else stem


def _train(args) -> None:
    from framework.api import Model
    from framework.config import read_yaml
    from framework.report import format_metrics

    raw = read_yaml(args.config)
    if args.no_progress and isinstance(raw, dict):
        raw.setdefault("trainer", {})
        if isinstance(raw["trainer"], dict):
            raw["trainer"]["progress_bar"] = False
    model = Model(raw)
    name = args.experiment_name or _experiment_name(Path(args.config))
    result = model.train(args.dataset, args.validation, args.test, output_dir=args.output_dir,
                         experiment_name=name, resume=args.resume, cache_dir=args.cache_dir)
    if result.test_metrics:
        print(format_metrics("Test metrics", result.test_metrics))
    elif result.validation_metrics:
        print(format_metrics("Validation metrics", result.validation_metrics))
    print(f"Run directory: {result.output_dir}\nModel: {result.output_dir / 'model'}")


def _predict(args) -> None:
    from framework.api import Model
    from framework.report import write_frame

    predictions = Model.load(args.model).predict(args.dataset, batch_size=args.batch_size)
    write_frame(predictions, args.output)
    print(f"{len(predictions)} predictions written to {args.output}")


def _evaluate(args) -> None:
    from framework import atomic
    from framework.api import Model
    from framework.report import format_metrics

    metrics = Model.load(args.model).evaluate(args.dataset, batch_size=args.batch_size)
    print(format_metrics("Metrics", metrics))
    if args.output:
        atomic.write_json(args.output, metrics)


def _collect_activations(args) -> None:
    import numpy as np

    from framework import atomic
    from framework.api import Model
    from framework.errors import FrameworkError

    model = Model.load(args.model)
    if args.list_layers:
        print("\n".join(model.layer_names()))
        return
    if not args.dataset or not args.layers:
        raise FrameworkError("collect_activations needs --dataset and --layers (or --list-layers)")
    activations = model.collect_activations(args.dataset, args.layers, batch_size=args.batch_size)
    out = Path(args.output_dir)
    for layer, values in activations.items():
        with atomic.atomic_path(out / f"{layer}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, values)
        print(f"{layer}: {values.shape} -> {out / (layer + '.npy')}")


def _check(args) -> None:
    from framework.config import load_config
    from framework.models.model_dir import dump_config

    print(dump_config(load_config(args.config)), end="")


def _config_reference(args) -> None:
    from framework import atomic
    from framework.config.reference import reference

    text = reference()
    if args.output:
        atomic.write_text(args.output, text)
    else:
        print(text, end="")


COMMANDS = {"train": _train, "predict": _predict, "evaluate": _evaluate,
            "collect_activations": _collect_activations, "check": _check, "config-reference": _config_reference}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from framework.errors import FrameworkError

    try:
        COMMANDS[args.command](args)
    except FrameworkError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
