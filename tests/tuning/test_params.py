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
