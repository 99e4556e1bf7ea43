"""Command-line plumbing shared by the scripts: FinetuneConfig flags and one-line errors.

Every FinetuneConfig field becomes a flag (`image_size` -> `--image-size`) whose help text is the
field's docstring and whose default is the chosen preset's value, so `--preset X --help` shows
exactly what would run.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from trainables.config import PRESETS, FinetuneConfig
from trainables.errors import ASGError, ConfigError

T = TypeVar("T")


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (exit 2) instead of usage + message."""

    def error(self, message: str):  # type: ignore[override]
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def preset_from_argv(argv: Sequence[str] | None, default: str = "embedded") -> str:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset", default=default)
    name = pre.parse_known_args(argv)[0].preset
    if name not in PRESETS:
        raise ASGError(f"unknown --preset {name!r}; choose from: {', '.join(PRESETS)}")
    return name


def recorded_config(argv: Sequence[str] | None) -> dict[str, Any] | None:
    """The results.json named by `--config FILE` in `argv` (None without the flag); a one-line
    ConfigError if it cannot be read."""
    import json
    from pathlib import Path

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default=None)
    path = pre.parse_known_args(argv)[0].config
    if path is None:
        return None
    try:
        recorded = json.loads(Path(path).read_text())
        recorded["preset"], recorded["finetune_config"]  # noqa: B018  the keys replay needs
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"--config {path}: not a results.json ({type(exc).__name__}: {exc})"
        ) from None
    return recorded


def replayed(cls: type[T], recorded: dict[str, Any], key: str, fallback: T) -> T:
    """`cls` built from `recorded[key]` (fields it lacks keep `fallback`'s values)."""
    values = recorded.get(key) or {}
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"--config: unknown {key} field(s) {', '.join(unknown)}")
    return dataclasses.replace(fallback, **values)  # type: ignore[type-var]


def script_parser(doc: str, preset: str) -> OneLineErrorParser:
    """A script's parser: its docstring's first paragraph as description, defaults shown in
    --help, one-line errors, and the `--preset` flag (default `preset`)."""
    parser = OneLineErrorParser(
        description=doc.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_preset_flag(parser, preset)
    return parser


def add_preset_flag(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=default,
        help="named configuration: tiny (smoke tests, minutes), embedded (the offline digits "
        "benchmark), visda (VisDA-17 with ResNet-101, needs --data-root and a GPU)",
    )


def add_dataclass_args(
    parser: argparse.ArgumentParser,
    defaults: Any,
    title: str,
    helps: Mapping[str, str] | None = None,
) -> None:
    """One flag per field of the dataclass instance `defaults`: `--field-name`, its docstring
    (or `helps[field]`) as help, its value as default; booleans get `--x/--no-x`."""
    from tyro._docstrings import get_field_docstring

    docs = {
        f.name: " ".join((get_field_docstring(type(defaults), f.name, ()) or "").split())
        for f in dataclasses.fields(defaults)
    }
    docs.update(helps or {})
    hints = typing.get_type_hints(type(defaults))
    group = parser.add_argument_group(title)
    for f in dataclasses.fields(defaults):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        # The parser's formatter appends the default; "%" would start a format field.
        help_text = docs.get(f.name, "").replace("%", "%%")
        hint = hints[f.name]
        if hint is bool:
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=value, help=help_text
            )
        else:
            # The field's annotation, not its default's type: `x: float = 0` takes 0.5.
            kind = {int: int, float: float}.get(hint, str)
            group.add_argument(
                flag, type=kind, default=value, help=help_text, metavar=f.name.upper()
            )


def add_config_args(parser: argparse.ArgumentParser, defaults: FinetuneConfig) -> None:
    add_dataclass_args(parser, defaults, "fine-tuning run (defaults from --preset)")


def dataclass_from_args(cls: type[T], args: argparse.Namespace) -> T:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})


def config_from_args(args: argparse.Namespace) -> FinetuneConfig:
    return dataclass_from_args(FinetuneConfig, args)


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that results files record for a run of `script` (its path from the
    repository root, e.g. "experiments/ablation.py") with `argv` (None: this process's own
    arguments, as `run_main` passes them)."""
    return " ".join(["python", script, *(sys.argv[1:] if argv is None else argv)])


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run `main(argv)` (argv None: the command line); a user-fixable error prints one line and
    exits 2, Ctrl-C exits 130. Tests call it in-process with an argv."""
    try:
        sys.exit(main(argv) or 0)
    except ASGError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:
        detail = f" ({exc})" if str(exc) else ""
        print(
            f"interrupted{detail}; checkpoints are kept: run again with --resume", file=sys.stderr
        )
        sys.exit(130)
