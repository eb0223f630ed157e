"""labkit.train.config: every bad value is refused, naming its field."""

import dataclasses

import pytest

from labkit.train import TrainConfig


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(lr=-1e-3), "lr"),
        (dict(warmup_steps=8), "warmup_steps"),
        (dict(batch_size=6, grad_accum=4), "grad_accum"),
        (dict(steps=0), "steps"),
        (dict(beta2=1.0), "beta2"),
        (dict(resume=True), "out_dir"),
        (dict(min_lr=1.0), "min_lr"),
    ],
)
def test_bad_config_names_the_field(kw, field, cfg):
    with pytest.raises(ValueError, match=field):
        cfg(**kw)


@pytest.mark.parametrize(
    "field, value",
    [
        ("lr", float("nan")),
        ("lr", float("inf")),
        ("min_lr", float("nan")),
        ("grad_clip", float("nan")),
        ("grad_clip", float("inf")),
        ("weight_decay", float("inf")),
        ("eps", float("nan")),
        ("beta1", float("nan")),
        ("lr", True),
    ],
)
def test_nan_inf_and_bool_numbers_are_refused(field, value, cfg):
    with pytest.raises(
        ValueError, match=rf"{field}={value!r} must be a non-negative, fin"
    ):
        cfg(**{field: value})


def test_a_replaced_field_is_checked_again(cfg):
    good = cfg()
    with pytest.raises(ValueError, match="grad_clip=inf"):
        dataclasses.replace(good, grad_clip=float("inf"))
    assert dataclasses.replace(good, grad_clip=0.0).grad_clip == 0.0  # 0: no clip


def test_fields_lists_every_setting():
    assert TrainConfig.fields()[:3] == ["steps", "batch_size", "context_len"]
    assert (
        "grad_clip" in TrainConfig.fields()
        and "micro_batch" not in TrainConfig.fields()
    )
