"""Every experiment command the README and docs/ show parses, as written, into typed configs.

The commands are read from the pages themselves (fenced blocks, with their line continuations,
and inline code), so a flag renamed or retyped in the code breaks this test, not a user.
"""

import importlib
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

COMMAND = re.compile(r"python3? experiments/(\w+)\.py((?:[^`\n\\]|\\\n)*)")


def readme_commands() -> list[tuple[str, str]]:
    """Commands outside the sections marked *(old benchmark)*: those record what ran at an
    older commit (results/README.md), with rows and flags that may no longer exist."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    sections = re.split(r"(?m)^(?=#{1,3} )", "\n".join(p.read_text() for p in pages))
    text = "".join(s for s in sections if "*(old benchmark)*" not in s.split("\n", 1)[0])
    found = []
    for script, rest in COMMAND.findall(text):
        rest = rest.replace("\\\n", " ").split("&&")[0].split("#")[0]
        found.append((script, rest.strip()))
    return sorted(set(found))


def test_the_readme_shows_commands_for_every_experiment_script():
    scripts = {s for s, _ in readme_commands()}
    assert {"asg_visda", "ablation", "learning_curve", "reward_candidates"} <= scripts


@pytest.mark.parametrize("script,args", readme_commands())
def test_readme_command_parses(script, args, monkeypatch, tmp_path):
    argv = shlex.split(args)
    if "--help" in argv:
        pytest.skip("prints help")
    if "--config" in argv:  # replays a results.json: give it one
        recorded = tmp_path / "results.json"
        recorded.write_text('{"preset": "tiny", "finetune_config": {}, "pipeline_config": {}}')
        argv[argv.index("--config") + 1] = str(recorded)
    module = importlib.import_module(f"experiments.{script}")
    parsed = module.parse(argv)
    assert parsed is not None
    if script == "asg_visda" and "--gpus-per-env-runner" in argv:
        _, _, pipe = parsed
        value = argv[argv.index("--gpus-per-env-runner") + 1]
        assert pipe.gpus_per_env_runner == float(value)


def test_config_replays_a_recorded_run_and_flags_override_it(tmp_path):
    import json

    from experiments.asg_visda import parse
    from trainables.errors import ConfigError

    recorded = tmp_path / "results.json"
    recorded.write_text(
        json.dumps(
            {
                "preset": "tiny",
                "finetune_config": {"windows": 5, "bn_mode": "train"},
                "pipeline_config": {"seeds": 4, "gpus_per_env_runner": 0.25},
            }
        )  # fmt: skip
    )
    preset, cfg, pipe = parse(["--config", str(recorded)])
    assert (preset, cfg.windows, cfg.bn_mode, pipe.seeds) == ("tiny", 5, "train", 4)
    from trainables.config import PRESETS

    assert cfg.batch_size == PRESETS["tiny"].batch_size  # the rest: tiny's
    assert pipe.gpus_per_env_runner == 0.25
    assert parse(["--config", str(recorded), "--seeds", "2"])[2].seeds == 2
    recorded.write_text('{"preset": "tiny", "finetune_config": {"colour": 1}}')
    with pytest.raises(ConfigError, match="unknown finetune_config field"):
        parse(["--config", str(recorded)])
