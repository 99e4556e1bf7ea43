"""What every script's entry point shares: its arguments dataclass parsed by tyro, with the
project's one-line error contract, `--preset` defaults, `--config` replay and `run_main`.

A script is an arguments dataclass (field docstrings are its `--help`, `Literal` fields list
their choices, tuples are space-separated lists, the older comma-separated form read too) and
a `main(args)`; `parse_args` turns a command line into that dataclass. A bad flag is one line,
`error: ...` naming the flag, exit status 2: tyro's own multi-line error panels are turned into
a `ConfigError`, which `run_main` prints in one line like every other user-fixable error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import shlex
import sys
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import tyro
from tyro import _argparse_formatter, _arguments, _calling, _strings

from trainables.errors import ASGError, ConfigError

T = TypeVar("T")

# `OmitArgPrefixes[X]`: a nested dataclass whose fields are top-level flags (`--image-size`,
# not `--run.image-size`); its docstring titles their group in --help.
Flat = tyro.conf.OmitArgPrefixes


def _reflow(text: str) -> str:
    """A docstring as --help shows it: each paragraph one line (the terminal wraps it). tyro 0.9
    keeps every line break before an indented or non-letter line, which breaks sentences."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


_strings.remove_single_line_breaks = _reflow  # read by tyro._docstrings at every lookup


class _ParseError(Exception):
    pass


def _raise(self: Any, message: str) -> None:
    raise _ParseError(message)


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """tyro's parser, with a refused flag raised as a one-line ConfigError instead of printed
    as a panel. (tyro 0.9 has no raising mode; its parser's `error` is argparse's hook.)"""
    parser_class = _argparse_formatter.TyroArgumentParser
    saved = parser_class.error
    parser_class.error = _raise  # type: ignore[method-assign,assignment]
    try:
        yield
    except _ParseError as exc:
        raise ConfigError(f"{' '.join(str(exc).split())} (see --help)") from None
    except SystemExit as exc:
        cause = exc.__context__
        if exc.code == 2 and isinstance(cause, _calling.InstantiationError):
            arg = cause.arg
            name = (
                "/".join(arg.lowered.name_or_flags)
                if isinstance(arg, _arguments.ArgumentDefinition)
                else str(arg)
            )
            message = " ".join(str(cause.message).split())
            raise ConfigError(f"{name}: {message} (see --help)") from None
        raise
    finally:
        parser_class.error = saved  # type: ignore[method-assign]


def _list_flags(cls: type) -> set[str]:
    """The flags of `cls`'s list fields (tuples), its flattened nested dataclasses' included."""
    flags = set()
    for name, hint in typing.get_type_hints(cls, include_extras=True).items():
        while typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        if dataclasses.is_dataclass(hint):
            flags |= _list_flags(hint)  # type: ignore[arg-type]
        elif typing.get_origin(hint) in (tuple, list) and not any(
            typing.get_origin(a) in (tuple, list) for a in typing.get_args(hint)
        ):  # a list of values (not `--variant NAME FIELD=VALUE`, whose values may hold commas)
            flags.add("--" + name.replace("_", "-"))
    return flags


def _split_commas(args: list[str], list_flags: set[str]) -> list[str]:
    """`--rows a,b c` -> `--rows a b c`: the comma-separated lists of older commands still read."""
    out: list[str] = []
    in_list = False
    for arg in args:
        if arg.startswith("-"):
            in_list = arg.split("=", 1)[0] in list_flags
            if in_list and "=" in arg:
                flag, value = arg.split("=", 1)
                out += [flag, *(v for v in value.split(",") if v)]
                continue
            out.append(arg)
        elif in_list:
            out += [v for v in arg.split(",") if v]
        else:
            out.append(arg)
    return out


def parse_args(
    cls: type[T], argv: Sequence[str] | None, default: T | None, description: str | None = None
) -> T:
    """`cls` from the command line `argv` (None: this process's), every field defaulting to
    `default`'s value (None: to the class's own defaults); a refused flag is a one-line
    ConfigError naming it."""
    args = list(sys.argv[1:] if argv is None else (str(a) for a in argv))
    args = _split_commas(args, _list_flags(cls))
    with _one_line_errors():
        return tyro.cli(
            cls,
            args=args,
            default=default,
            description=description,
            # Value errors are raised as ConfigErrors above, never printed; --help is.
            console_outputs=any(a in ("-h", "--help") for a in args),
        )


def script_doc(doc: str | None) -> str:
    """A script's --help description: its module docstring's first paragraph."""
    return (doc or "").split("\n\n")[0]


def pre_parse(argv: Sequence[str] | None, flag: str, default: str | None) -> str | None:
    """The value of `flag` in `argv` before the full parse (which needs it for its defaults)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument(flag, default=default)
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return getattr(pre.parse_known_args(args)[0], flag.lstrip("-").replace("-", "_"))


def preset_from_argv(argv: Sequence[str] | None, default: str = "embedded") -> str:
    """The `--preset` of `argv`, whose values are the defaults that every other flag overrides.
    An unknown name gives `default` here: the full parse then refuses it in one line."""
    from trainables.config import PRESETS

    name = pre_parse(argv, "--preset", default)
    return name if name in PRESETS else default


def recorded_config(argv: Sequence[str] | None) -> dict[str, Any] | None:
    """The results.json named by `--config FILE` in `argv` (None without the flag); a one-line
    ConfigError if it cannot be read."""
    path = pre_parse(argv, "--config", None)
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
    """`cls` built from `recorded[key]` (fields it lacks keep `fallback`'s values; JSON lists
    become the tuples the dataclasses hold)."""
    values = recorded.get(key) or {}
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"--config: unknown {key} field(s) {', '.join(unknown)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return dataclasses.replace(fallback, **values)  # type: ignore[type-var]


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that results files record for a run of `script` (its path from the
    repository root, e.g. "experiments/ablation.py") with `argv` (None: this process's own
    arguments, as `run_main` passes them), quoted for a POSIX shell where an argument needs it
    (`--schedules 'all:0.1;head:1'`), so that it can be pasted as it is."""
    return shlex.join(["python", script, *(sys.argv[1:] if argv is None else map(str, argv))])


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
