"""One config object per preset: validation, documentation, and the flags built from it."""

import argparse
import dataclasses

import pytest

from trainables.cli import add_config_args, config_from_args
from trainables.config import PRESETS, FinetuneConfig, field_docs, preset
from trainables.errors import ConfigError


def test_every_field_is_documented():
    docs = field_docs(FinetuneConfig)
    missing = [f.name for f in dataclasses.fields(FinetuneConfig) if not docs.get(f.name)]
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


def test_flags_round_trip_with_preset_defaults():
    parser = argparse.ArgumentParser()
    add_config_args(parser, PRESETS["tiny"])
    assert config_from_args(parser.parse_args([])) == PRESETS["tiny"]
    cfg = config_from_args(
        parser.parse_args(["--image-size", "64", "--no-pretrained", "--guidance-weight", "0"])
    )
    assert cfg.image_size == 64 and cfg.pretrained is False and cfg.guidance_weight == 0
    assert "Input resolution" in parser.format_help()
