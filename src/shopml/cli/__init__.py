"""The ``shopml`` command line. Each job's commands live in their own module here and call
the Python API; this file only assembles them and turns user errors into one line + exit 2."""

from __future__ import annotations

import importlib
import sys

import typer

from shopml.cli._common import app, benchmark_app, console_err
from shopml.errors import ShopMLError

# Each module registers its commands on `app` / `benchmark_app` at import.
_COMMAND_MODULES = ["data", "recommend", "sessions", "customers", "price", "surface"]
for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"shopml.cli.{_name}")
    except ModuleNotFoundError as exc:  # a job whose CLI is not written yet
        if exc.name != f"shopml.cli.{_name}":
            raise

app.add_typer(benchmark_app, name="benchmark", help="Benchmarks: write JSON rows plus a Markdown table.")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a ShopMLError becomes one line on stderr and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except ShopMLError as exc:
        console_err.print(f"error: {exc}", markup=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console_err.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
