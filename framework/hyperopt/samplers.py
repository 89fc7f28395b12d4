"""Optuna samplers (which point to try next) and pruners (which trial to stop early), each registered
with its settings schema; Optuna is imported when one is built."""
from __future__ import annotations

from typing import Any

from framework.config import fields as f
from framework.registry import Registry

samplers = Registry("sampler")
pruners = Registry("pruner")


class SeedSchema(f.Schema):
    seed = f.Int(None, min=0, doc="seed of the sampler (default: the config's seed)")


class TPESchema(SeedSchema):
    n_startup_trials = f.Int(10, min=0, doc="random trials before the model of good points is used")
    multivariate = f.Bool(False, doc="model the parameters jointly rather than each alone")


@samplers.register("tpe", schema=TPESchema)
class TPE:
    """Tree-structured Parzen estimator: after random start-up trials, draws near the best ones."""

    def __init__(self, seed: int | None, n_startup_trials: int = 10, multivariate: bool = False):
        self.seed, self.n_startup_trials, self.multivariate = seed, n_startup_trials, multivariate

    def build(self, grid: dict[str, list], worker: int) -> Any:
        import optuna

        return optuna.samplers.TPESampler(seed=_seed(self.seed, worker), n_startup_trials=self.n_startup_trials,
                                          multivariate=self.multivariate)


def _seed(seed: int | None, worker: int) -> int | None:
    """Workers of one search draw from different streams; with one seed they would try the same points."""
    return None if seed is None else seed + worker


@samplers.register("random", schema=SeedSchema)
class Random:
    """Independent uniform draws from every space."""

    def __init__(self, seed: int | None):
        self.seed = seed

    def build(self, grid: dict[str, list], worker: int) -> Any:
        import optuna

        return optuna.samplers.RandomSampler(seed=_seed(self.seed, worker))


@samplers.register("grid", schema=SeedSchema)
class Grid:
    """Every combination of the spaces' points once, in a seeded random order."""

    def __init__(self, seed: int | None):
        self.seed = seed

    def build(self, grid: dict[str, list], worker: int) -> Any:
        import optuna

        return optuna.samplers.GridSampler(grid, seed=_seed(self.seed, worker))


@pruners.register("none", schema=f.Schema)
class NoPruning:
    """Every trial trains to its end."""

    def build(self) -> Any:
        import optuna

        return optuna.pruners.NopPruner()


class MedianSchema(f.Schema):
    n_startup_trials = f.Int(5, min=0, doc="trials that finish before any is pruned")
    n_warmup_steps = f.Int(0, min=0, doc="epochs of a trial before it may be pruned")
    interval_steps = f.Int(1, min=1, doc="epochs between pruning checks")


@pruners.register("median", schema=MedianSchema)
class Median:
    """Stops a trial whose metric after an epoch is worse than the median of earlier trials there."""

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1):
        self.settings = {"n_startup_trials": n_startup_trials, "n_warmup_steps": n_warmup_steps,
                         "interval_steps": interval_steps}

    def build(self) -> Any:
        import optuna

        return optuna.pruners.MedianPruner(**self.settings)


class HyperbandSchema(f.Schema):
    min_resource = f.Int(1, min=1, doc="epochs every trial trains before it may be pruned")
    max_resource = f.Int(None, min=1, doc="epochs of a full trial (default: estimated from the first trials)")
    reduction_factor = f.Int(3, min=2, doc="1 / the fraction of trials kept at each rung")


@pruners.register("hyperband", schema=HyperbandSchema)
class Hyperband:
    """Successive halving over several brackets: many trials get a few epochs, the best get more."""

    def __init__(self, min_resource: int = 1, max_resource: int | None = None, reduction_factor: int = 3):
        self.settings = {"min_resource": min_resource, "max_resource": max_resource or "auto",
                         "reduction_factor": reduction_factor}

    def build(self) -> Any:
        import optuna

        return optuna.pruners.HyperbandPruner(**self.settings)


def build_sampler(settings: dict, grid: dict[str, list], worker: int = 0) -> Any:
    return samplers.get(settings["type"]).cls(**{k: v for k, v in settings.items() if k != "type"}).build(grid, worker)


def build_pruner(settings: dict) -> Any:
    return pruners.get(settings["type"]).cls(**{k: v for k, v in settings.items() if k != "type"}).build()
