"""The ``shopml`` command line. Each job's commands live in their own module here and call
the Python API; this file only assembles them and turns user errors into one line + exit 2."""

from __future__ import annotations

import importlib
import sys

import typer

from shopml.cli._common import app, benchmark_app, console_err
from shopml.errors import ShopMLError

# Each module registers its commands on `app` / `benchmark_app` at import.
_COMMAND_MODULES = ["data", "fit", "recommend", "sessions", "customers", "price", "surface"]
# Every one of them ships with shopml: a missing one is a bug and must fail the import.
for _name in _COMMAND_MODULES:
    importlib.import_module(f"shopml.cli.{_name}")

app.add_typer(benchmark_app, name="benchmark", help="Benchmarks: write JSON rows plus a Markdown table.")


def _click_modules() -> list:
    """Every copy of click's exceptions that a usage error may come from: Typer raises the
    copy it bundles (``typer._click``), other code the real ``click``."""
    mods = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            mods.append(importlib.import_module(name))
        except ImportError:
            pass
    return mods


def _usage_error(exc) -> int:
    """Print a usage error as the usage line, one error line and the help hint."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        usage = ctx.get_usage() if ctx is not None else "Usage: shopml [OPTIONS] COMMAND [ARGS]..."
        console_err.print(usage, markup=False)
        name = ctx.command_path if ctx is not None else "shopml"
        console_err.print(f"error: missing command or argument. Try '{name} --help' for help.", markup=False)
        return 2
    exc.show()
    return exc.exit_code


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a ShopMLError becomes one line on stderr and exit code 2,
    a usage error (unknown command or option, bad value) its usage line, one line and exit 2."""
    mods = _click_modules()
    click_errors = tuple(m.ClickException for m in mods)
    aborts = tuple(m.Abort for m in mods if hasattr(m, "Abort")) + (typer.Abort, KeyboardInterrupt)
    exits = tuple(getattr(m, "Exit") for m in mods if hasattr(m, "Exit")) + (typer.Exit,)
    try:
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except ShopMLError as exc:
        console_err.print(f"error: {_one_line(exc)}", markup=False, soft_wrap=True)
        sys.exit(2)
    except exits as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except aborts:
        console_err.print("aborted")
        sys.exit(130)
    except click_errors as exc:
        sys.exit(_usage_error(exc))
    except OSError as exc:  # a disk full, a permission change mid-run: still one line
        console_err.print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), markup=False)
        sys.exit(2)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    main()
