"""One config object per preset: validation, documentation, and the flags built from it."""

import dataclasses
from dataclasses import dataclass

import pytest
import tyro

from trainables.config import PRESETS, FinetuneConfig, preset
from trainables.entry import Flat, parse_args
from trainables.errors import ConfigError


@dataclass(frozen=True)
class Args:
    run: Flat[FinetuneConfig]


def test_every_field_is_documented():
    """tyro's --help shows each field's docstring: every field has one."""
    from tyro._docstrings import get_field_docstring

    missing = [
        f.name
        for f in dataclasses.fields(FinetuneConfig)
        if not get_field_docstring(FinetuneConfig, f.name, ())
    ]
    assert not missing


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid(name):
    assert isinstance(preset(name), FinetuneConfig)


@pytest.mark.parametrize(
    "overrides",
    [
        {"proxy": "oracle"},
        {"dataset": "mnist"},
        {"guidance": "l1"},
        {"windows": 0},
        {"base_lr": -1.0},
        {"dataset": "visda", "proxy": "heldout_fonts"},
        {"device": "tpu"},
    ],
)
def test_bad_values_are_rejected_with_the_flag_name(overrides):
    with pytest.raises(ConfigError, match="--"):
        preset("tiny", **overrides)


def test_unknown_override_and_preset():
    with pytest.raises(ConfigError, match="no_such_field"):
        preset("tiny", no_such_field=1)
    with pytest.raises(ConfigError, match="preset"):
        preset("huge")


def test_flags_round_trip_with_preset_defaults(capsys):
    tiny = Args(PRESETS["tiny"])
    assert parse_args(Args, [], tiny).run == PRESETS["tiny"]
    flags = ["--image-size", "64", "--no-pretrained", "--guidance-weight", "0"]
    cfg = parse_args(Args, flags, tiny).run
    assert cfg.image_size == 64 and cfg.pretrained is False and cfg.guidance_weight == 0
    with pytest.raises(SystemExit):
        parse_args(Args, ["--help"], tiny)
    help_text = capsys.readouterr().out
    assert "Input resolution" in help_text and "{digits,visda}" in help_text


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--dataset", "mnist"], "--dataset"),
        (["--windows", "many"], "--windows"),
        (["--no-such-flag"], "--no-such-flag"),
        (["--windows", "0"], "--windows"),
    ],
)
def test_a_refused_flag_is_a_one_line_config_error(flags, needle, capsys):
    with pytest.raises(ConfigError) as info:
        parse_args(Args, flags, Args(PRESETS["tiny"]))
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert capsys.readouterr().err == ""  # no tyro panel
    assert tyro  # the parser the scripts use
