"""Results files and policy folders appear whole or not at all (`controllers.atomic_files`): a
write cut short leaves what was there before and no temporary file or folder."""

import json
import os

import pytest

from controllers import atomic_files
from controllers.atomic_files import (
    atomic_directory,
    save_figure,
    write_bytes,
    write_json,
    write_text,
)

WRITES = {
    "text": lambda path: write_text(path, "new ±\n" * 10_000),
    "bytes": lambda path: write_bytes(path, b"new\n" * 10_000),
    "json": lambda path: write_json(path, {"new": list(range(10_000))}, indent=2),
}


class Killed(BaseException):
    """Stands for the process being killed (like KeyboardInterrupt, not an Exception)."""


def _die(*args, **kwargs):
    raise Killed


@pytest.mark.parametrize("kind", WRITES)
def test_a_finished_write_replaces_the_file_and_keeps_its_mode(tmp_path, kind):
    target = tmp_path / "results.out"
    target.write_text("old\n")
    target.chmod(0o754)
    WRITES[kind](target)
    assert target.read_bytes().startswith(b'{\n  "new"' if kind == "json" else b"new")
    assert target.stat().st_mode & 0o777 == 0o754
    assert os.listdir(tmp_path) == ["results.out"]


@pytest.mark.parametrize("cut", ["fsync", "replace"])  # before / after the data is on disk
@pytest.mark.parametrize("kind", WRITES)
def test_a_write_killed_midway_leaves_the_old_file_and_no_temporary(
    tmp_path, monkeypatch, kind, cut
):
    target = tmp_path / "results.json"
    target.write_text('{"old": true}\n')
    seen = []

    def look_then_die(*args, **kwargs):
        seen.append(target.read_text())  # what a reader sees while the new file is written
        raise Killed

    monkeypatch.setattr(os, cut, look_then_die)
    with pytest.raises(Killed):
        WRITES[kind](target)
    monkeypatch.undo()
    assert seen == ['{"old": true}\n']
    assert target.read_text() == '{"old": true}\n'
    assert os.listdir(tmp_path) == ["results.json"]


def test_json_that_cannot_be_serialised_leaves_the_old_file(tmp_path):
    target = tmp_path / "snapshots.json"
    write_json(target, [{"milestone": 0}], indent=2)
    with pytest.raises(TypeError):
        write_json(target, [{"milestone": 1}, {"path": object()}], indent=2)
    assert json.loads(target.read_text()) == [{"milestone": 0}]
    assert os.listdir(tmp_path) == ["snapshots.json"]


def test_a_plot_is_replaced_whole_in_the_format_its_name_says(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    target = tmp_path / "curve.png"
    target.write_bytes(b"old plot")
    monkeypatch.setattr(os, "replace", _die)
    with pytest.raises(Killed):
        save_figure(fig, target, dpi=50)
    monkeypatch.undo()
    assert target.read_bytes() == b"old plot"
    assert os.listdir(tmp_path) == ["curve.png"]

    save_figure(fig, target, dpi=50)
    save_figure(fig, tmp_path / "curve.svg")
    plt.close(fig)
    assert target.read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "curve.svg").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["curve.png", "curve.svg"]


def test_a_directory_whose_filling_fails_leaves_no_folder_and_no_temporary(tmp_path):
    target = tmp_path / "policy"
    with pytest.raises(Killed):
        with atomic_directory(target) as folder:
            (folder / "module_state.pt").write_bytes(b"weights")
            assert not target.exists()  # invisible until complete
            raise Killed
    assert os.listdir(tmp_path) == []


def test_a_directory_whose_filling_fails_leaves_the_old_one_as_it_was(tmp_path):
    target = tmp_path / "policy"
    target.mkdir()
    (target / "policy.json").write_text("old")
    with pytest.raises(Killed):
        with atomic_directory(target) as folder:
            (folder / "policy.json").write_text("new")
            raise Killed
    assert os.listdir(tmp_path) == ["policy"]
    assert os.listdir(target) == ["policy.json"]
    assert (target / "policy.json").read_text() == "old"


def test_a_replaced_directory_holds_only_the_new_content(tmp_path):
    target = tmp_path / "policy"
    (target / "sub").mkdir(parents=True)
    (target / "stale.pt").write_bytes(b"old weights")
    (target / "sub" / "old").write_text("old")
    with atomic_directory(target) as folder:
        (folder / "policy.json").write_text("new")
    assert os.listdir(tmp_path) == ["policy"]
    assert os.listdir(target) == ["policy.json"]
    assert (target / "policy.json").read_text() == "new"

    with atomic_directory(tmp_path / "a" / "b") as folder:  # missing parents are made
        (folder / "x").write_text("x")
    assert (tmp_path / "a" / "b" / "x").read_text() == "x"


def test_a_failed_rename_puts_the_old_directory_back(tmp_path, monkeypatch):
    target = tmp_path / "policy"
    target.mkdir()
    (target / "policy.json").write_text("old")
    real_replace = os.replace

    def fail_renaming_the_new_one_in(src, dst):
        if os.path.basename(str(src)).endswith(atomic_files.PART_SUFFIX):
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_renaming_the_new_one_in)
    with pytest.raises(Killed):
        with atomic_directory(target) as folder:
            (folder / "policy.json").write_text("new")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["policy"]
    assert (target / "policy.json").read_text() == "old"


def _rllib_module_checkpoint(path):
    """An RLlib RLModule checkpoint (what export_policy reads) without training anything."""
    import dataclasses

    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    from controllers.saved_policy import build_module
    from trainables.models import MODEL_GROUPS

    groups = MODEL_GROUPS["efficientnet_lite0"]
    module = build_module("PPO", groups, "multidiscrete", dataclasses.asdict(DefaultModelConfig()))
    module.save_to_path(str(path))
    return groups


def test_an_export_killed_after_the_weights_leaves_no_policy_folder(tmp_path, monkeypatch):
    """A kill between module_state.pt and policy.json: no folder at all (not weights without
    policy.json), and an earlier policy in the same place stays whole and loadable."""
    import torch

    from controllers.saved_policy import POLICY_FILE, STATE_FILE, export_policy, load_module

    groups = _rllib_module_checkpoint(tmp_path / "ckpt")
    real_save = torch.save

    def save_then_die(*args, **kwargs):
        real_save(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(torch, "save", save_then_die)
    with pytest.raises(Killed):
        export_policy(tmp_path / "ckpt", tmp_path / "policy", groups, "log")
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]

    monkeypatch.undo()
    policy = export_policy(tmp_path / "ckpt", tmp_path / "policy", groups, "log")
    before = {name: (policy / name).read_bytes() for name in (POLICY_FILE, STATE_FILE)}
    monkeypatch.setattr(torch, "save", save_then_die)
    with pytest.raises(Killed):
        export_policy(tmp_path / "ckpt", tmp_path / "policy", groups, "log")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["ckpt", "policy"]
    assert {name: (policy / name).read_bytes() for name in before} == before
    load_module(policy)


def test_an_export_never_replaces_a_folder_holding_other_files(tmp_path):
    """Exporting into a folder that is not a saved policy (say, the checkpoint itself) is
    refused: replacing it whole would delete what else it holds."""
    from controllers.saved_policy import export_policy
    from trainables.errors import ConfigError

    groups = _rllib_module_checkpoint(tmp_path / "ckpt")
    before = sorted(os.listdir(tmp_path / "ckpt"))
    with pytest.raises(ConfigError, match="holds more than a saved policy"):
        export_policy(tmp_path / "ckpt", tmp_path / "ckpt", groups, "log")
    assert sorted(os.listdir(tmp_path / "ckpt")) == before
