from __future__ import annotations

import pytest

from edgeship.compress import (
    ChainConfig,
    ChannelPruneConfig,
    DistillConfig,
    PruneConfig,
    QuantizeConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)
from edgeship.core.errors import UsageError


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5])
def test_sparsity_outside_unit_interval_is_refused(sparsity: float) -> None:
    with pytest.raises(UsageError, match=r"sparsity must be in \[0, 1\)"):
        PruneConfig(sparsity=sparsity)
    with pytest.raises(UsageError, match="sparsity"):
        ChannelPruneConfig(sparsity=sparsity)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: QuantizeConfig(method="int4"), "quantization method"),
        (lambda: QuantizeConfig(calibration="kl"), "calibration"),
        (lambda: PruneConfig(importance="l1"), "importance"),
        (lambda: PruneConfig(scope="row"), "scope"),
        (lambda: PruneConfig(accuracy_budget_pt=-1), "budget"),
        (lambda: ChannelPruneConfig(importance="magnitude"), "importance"),
        (lambda: DistillConfig(width=1.0), "width"),
        (lambda: DistillConfig(student="no_colon"), "module:factory"),
        (lambda: TrainConfig(alpha=1.5), "alpha"),
        (lambda: TrainConfig(lr=0), "lr"),
        (lambda: ChainConfig(()), "at least one step"),
    ],
)
def test_bad_values_are_usage_errors(make, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UsageError, match=message):
        make()


def test_flat_dict_round_trip() -> None:
    spec = {"method": "prune", "sparsity": 0.7, "importance": "gradient", "epochs": 2}
    config = config_from_dict(spec)
    assert isinstance(config, PruneConfig)
    assert config.fine_tune.epochs == 2 and config.sparsity == 0.7
    assert config_from_dict(config_to_dict(config)) == config


def test_chain_from_dict() -> None:
    config = config_from_dict(
        {
            "chain": [
                {"method": "prune-channels", "sparsity": 0.5, "epochs": 1},
                {"method": "int8-static", "calibration": "entropy"},
            ]
        }
    )
    assert isinstance(config, ChainConfig)
    assert config.method == "prune-channels+int8-static"
    assert config_from_dict(config_to_dict(config)) == config


def test_unknown_keys_and_training_options_on_quantization_are_refused() -> None:
    with pytest.raises(UsageError, match="unexpected"):
        config_from_dict({"method": "prune", "colour": "red"})
    with pytest.raises(UsageError, match="does not train"):
        config_from_dict({"method": "int8-static", "epochs": 3})
    with pytest.raises(UsageError, match="method"):
        config_from_dict({"sparsity": 0.5})
