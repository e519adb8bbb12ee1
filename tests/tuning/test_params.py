"""Job parameters: every kind has defaults with help text; bad values are refused by name."""

from __future__ import annotations

import pytest

from tuning.services.params import SPECS, param_defaults, params_clean


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_every_parameter_has_a_default_that_passes_its_own_checks_and_help_text(kind):
    cleaned, errors = params_clean(kind=kind, raw={})
    assert errors == []
    assert cleaned == param_defaults(kind)
    assert all(param.help.strip() for param in SPECS[kind])


def test_values_are_coerced_from_form_text():
    cleaned, errors = params_clean(
        kind="dpo", raw={"beta": "0.5", "epochs": "3", "evaluate": "off", "max_steps": ""}
    )
    assert errors == []
    assert cleaned["beta"] == 0.5 and cleaned["epochs"] == 3 and cleaned["evaluate"] is False
    assert cleaned["max_steps"] is None


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"beta": 0}, "params.beta", "at least"),
        ({"beta": "much"}, "params.beta", "must be a number"),
        ({"beta": float("nan")}, "params.beta", "finite"),
        ({"epochs": 1.5}, "params.epochs", "whole number"),
        ({"epochs": True}, "params.epochs", "whole number"),
        ({"loss_type": "magic"}, "params.loss_type", "one of sigmoid"),
        ({"batch_size": None}, "params.batch_size", "required"),
        ({"lr": 0.1}, "params.lr", "unknown parameter"),
    ],
)
def test_a_bad_value_is_refused_with_the_field_and_the_reason(raw, field, message):
    _, errors = params_clean(kind="dpo", raw=raw)
    assert [e.field for e in errors] == [field]
    assert message in errors[0].message


def test_the_launch_form_offers_the_length_aware_losses_with_their_settings():
    from tuning.engine.losses import LOSS_TYPES

    spec = {param.name: param for param in SPECS["dpo"]}
    assert {"simpo", "rdpo"} <= set(spec["loss_type"].choices) <= set(LOSS_TYPES)
    assert "simpo only" in spec["simpo_gamma"].help and "rdpo only" in spec["length_alpha"].help
    cleaned, errors = params_clean(
        kind="dpo", raw={"loss_type": "rdpo", "length_alpha": "-0.02", "simpo_gamma": "1.25"}
    )
    assert errors == []
    assert cleaned["loss_type"] == "rdpo" and cleaned["length_alpha"] == -0.02 and cleaned["simpo_gamma"] == 1.25
    _, errors = params_clean(kind="dpo", raw={"length_alpha": 5})
    assert [e.field for e in errors] == ["params.length_alpha"]
