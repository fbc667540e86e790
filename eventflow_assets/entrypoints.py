"""The Spark applications as scripts (`jobs/*.py`, which spark-submit runs) and as `eventflow`
subcommands: one parser and one run function each, in processing/app.py and analytics/app.py."""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType

from eventflow_assets.errors import EventFlowError
from eventflow_assets.settings import ENVIRONMENT_HELP, Settings


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)


def describe(parser: argparse.ArgumentParser, app: ModuleType, prog: str) -> None:
    """The app's options, its docstring as description and its examples as epilog."""
    parser.description = app.__doc__
    parser.epilog = app.EXAMPLES.format(prog=prog) + "\n" + ENVIRONMENT_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    app.add_arguments(parser)


def run_app(app: ModuleType, parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Check the arguments, then run; a clear one-line error is the app's concern, exit codes ours."""
    check = getattr(app, "check_arguments", None)
    if check is not None:
        check(parser, args)
    configure_logging()
    return app.run(args, Settings.from_env())


def script_main(app: ModuleType, script: str, argv: list[str] | None = None) -> int:
    """`python jobs/<script>` / `spark-submit jobs/<script>`."""
    parser = argparse.ArgumentParser(prog=script)
    describe(parser, app, f"python jobs/{script}")
    args = parser.parse_args(argv)
    try:
        return run_app(app, parser, args)
    except EventFlowError as exc:
        print(f"{script.removesuffix('.py')}: error: {exc}", file=sys.stderr)
        return exc.exit_code
