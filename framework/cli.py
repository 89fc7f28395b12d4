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
    train.add_argument("--num-gpus", type=int, metavar="N",
                       help="train in N processes (one per GPU; over gloo on a CPU-only machine) started by the "
                            "DeepSpeed launcher; the config sets trainer.strategy ddp or deepspeed")
    # launchers pass --local_rank / --local-rank; LOCAL_RANK from the environment is what is read
    train.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)

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
            sub.add_argument("--output-dir", default="activations", help="the activations are written here")
            sub.add_argument("--format", choices=["npy", "parquet"], default="npy",
                             help="npy: one <layer>.npy per layer; parquet: activations.parquet, a column per layer")

    check = commands.add_parser("check", parents=[common], help="validate a config and print it resolved")
    check.add_argument("--config", required=True, help="YAML config file")

    reference = commands.add_parser("config-reference", parents=[common],
                                    help="print every config setting with its default")
    reference.add_argument("--output", help="write to this file instead of printing")
    _add_deploy_commands(commands, common)
    _add_search_commands(commands, common)
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
    if args.num_gpus is not None:  # the config checked here, before any process is started
        from framework.training.distributed import launch

        return launch(args.num_gpus, model.config["trainer"], args.argv)
    name = args.experiment_name or _experiment_name(Path(args.config))
    result = model.train(args.dataset, args.validation, args.test, output_dir=args.output_dir,
                         experiment_name=name, resume=args.resume, cache_dir=args.cache_dir)
    from framework.training.distributed import is_main

    if not is_main():  # launched processes: the main one reports for all
        return
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
    if args.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        from framework.data.cache import to_arrow

        target = out / "activations.parquet"
        # a column per layer, each row's activations one fixed-size list (built in one call, not per row)
        table = pa.table({layer: to_arrow(values.reshape(len(values), -1)) for layer, values in activations.items()})
        with atomic.atomic_path(target) as tmp:
            pq.write_table(table, tmp)
        print(f"{', '.join(f'{k}: {v.shape}' for k, v in activations.items())} -> {target}")
        return
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


# -- serve, export, upload: a trained model leaving framework -----------------------------------------
def _add_deploy_commands(commands, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser("serve", parents=[common], help="serve a model over HTTP (FastAPI + uvicorn)")
    serve.add_argument("--model", required=True, help="a model directory (results/<run>/model)")
    serve.add_argument("--host", default="127.0.0.1", help="interface to listen on (0.0.0.0: every one)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")

    export = commands.add_parser("export", parents=[common], help="export a model for runtimes without framework")
    export.add_argument("--model", required=True, help="a model directory (results/<run>/model)")
    export.add_argument("--format", required=True, choices=["onnx", "torch_export", "merged"],
                        help="onnx or torch_export (ecd models), merged (an llm with its adapter folded in)")
    export.add_argument("--output", required=True, help="directory to write")
    export.add_argument("--dataset", help="rows to trace and check the graph with (default: missing-value rows)")

    upload = commands.add_parser("upload", parents=[common], help="upload a model to the Hugging Face Hub")
    upload.add_argument("--model", required=True, help="a model directory (results/<run>/model)")
    upload.add_argument("--repo-id", required=True, help="<user or organisation>/<name>")
    upload.add_argument("--private", action="store_true", help="create the repo private")
    upload.add_argument("--token", help="a Hugging Face token (default: HF_TOKEN or the saved login)")


def _serve(args) -> None:
    from framework.serve import serve

    serve(args.model, host=args.host, port=args.port)


def _export(args) -> None:
    from framework.export import export_model

    output = export_model(args.model, args.format, args.output, dataset=args.dataset)
    print(f"{args.format} export written to {output}")


def _upload(args) -> None:
    from framework.upload import upload

    url = upload(args.model, args.repo_id, private=args.private, token=args.token)
    print(f"uploaded {args.model} to {args.repo_id}: {url}")


COMMANDS = {"train": _train, "predict": _predict, "evaluate": _evaluate,
            "collect_activations": _collect_activations, "check": _check, "config-reference": _config_reference}

COMMANDS.update({"serve": _serve, "export": _export, "upload": _upload})


# -- hyperopt, visualize: searching configs and looking at results ----------------------------------------
VISUALIZE_KINDS = ("learning_curves", "confusion_matrix", "roc", "pr", "calibration", "pred_vs_true", "hyperopt")


def _add_search_commands(commands, common: argparse.ArgumentParser) -> None:
    search = commands.add_parser("hyperopt", parents=[common],
                                 help="search hyperparameters: the config's hyperopt section says which")
    search.add_argument("--config", required=True, help="YAML config file with a hyperopt section")
    search.add_argument("--dataset", required=True, help="csv, tsv, parquet, json or jsonl file")
    search.add_argument("--validation", help="a separate validation file (otherwise the dataset is split)")
    search.add_argument("--test", help="a separate test file (otherwise the dataset is split)")
    search.add_argument("--output-directory", "--output-dir", dest="output_directory",
                        help="study, trials and best model go here; run again to resume (default: "
                             "results/<config name>_hyperopt)")
    search.add_argument("--cache-dir", help="preprocessing cache directory")

    plots = commands.add_parser("visualize", parents=[common], help="plot a run, a model's predictions or a search")
    plots.add_argument("--kind", required=True, choices=VISUALIZE_KINDS, help="what to plot")
    plots.add_argument("--model", help="a model directory (results/<run>/model): every kind but hyperopt")
    plots.add_argument("--run", help="a run directory (learning_curves) or a search's output directory (hyperopt)")
    plots.add_argument("--dataset", help="labelled data for the prediction plots")
    plots.add_argument("--output-feature", help="plot this output only (default: every output the kind applies to)")
    plots.add_argument("--output-directory", "--output-dir", dest="output_directory", default="visualizations",
                       help="PNG files are written here (default: visualizations)")


def _hyperopt(args) -> None:
    from framework.hyperopt import hyperopt

    output = args.output_directory or str(Path("results") / f"{_experiment_name(Path(args.config))}_hyperopt")
    result = hyperopt(args.config, args.dataset, args.validation, args.test, output_directory=output,
                      cache_dir=args.cache_dir)
    states = result.trials["state"].value_counts().to_dict()
    print(f"{len(result.trials)} trials ({', '.join(f'{n} {s.lower()}' for s, n in states.items())}); best: trial "
          f"{result.best_trial} with {result.best_value:.6g}: {result.best_params}")
    print(f"Trials: {output}/trials.csv\nBest config: {output}/best_config.yaml\nBest model: {output}/best_model")


def _visualize(args) -> None:
    from framework import visualize
    from framework.errors import FrameworkError

    if args.kind == "hyperopt":
        if not args.run:
            raise FrameworkError("--kind hyperopt needs --run: the search's output directory")
        figures = visualize.hyperopt_plots(args.run)
    elif args.kind == "learning_curves":
        if not (args.run or args.model):
            raise FrameworkError("--kind learning_curves needs --run (a run directory) or --model (its model/)")
        figures = visualize.learning_curves(args.run or args.model, args.output_feature)
    else:
        if not (args.model and args.dataset):
            raise FrameworkError(f"--kind {args.kind} needs --model and --dataset (labelled rows)")
        from framework.api import Model

        figures = visualize.plot_model(Model.load(args.model), args.kind, args.dataset, args.output_feature)
    for path in visualize.save(figures, args.output_directory):
        print(path)


COMMANDS.update({"hyperopt": _hyperopt, "visualize": _visualize})


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `train --num-gpus` passes on to each process
    from framework.errors import FrameworkError

    try:
        COMMANDS[args.command](args)
    except FrameworkError as error:
        if args.debug:
            raise
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except ModuleNotFoundError as error:
        from framework.extras import missing_extra

        hint = missing_extra(error)
        if hint is None or args.debug:
            raise
        print(f"error: {hint}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
