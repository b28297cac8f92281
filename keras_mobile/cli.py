"""`keras-mobile` command line. Thin: each subcommand lives in keras_mobile/commands/<name>.py
with `help` (one line), `add_arguments(parser)` and `run(args) -> int`.

User errors (a bad model name, a missing file or folder, an argument out of range: ValueError,
WeightsError, OSError raised by a command) print one line and exit with status 2; `--debug`
shows the traceback instead. TensorFlow's logs and the converter's SavedModel dump are hidden
unless `--verbose`.
"""
import argparse
import importlib
import os
import sys

COMMANDS = ["demo", "list", "info", "export", "profile", "roofline", "benchmark", "adapt", "slim"]
USAGE_ERROR = 2   # argparse's own exit status for a bad command line


def _load(name):
    try:
        return importlib.import_module(f"keras_mobile.commands.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"keras_mobile.commands.{name}":
            return None
        raise


def _add_global_flags(p, default):
    # on the main parser and on every subcommand (`keras-mobile --debug x` and `keras-mobile x --debug`);
    # subcommands use SUPPRESS so their default does not overwrite a flag given before the command
    p.add_argument("--debug", action="store_true", default=default, help="show the traceback of an error")
    p.add_argument("--verbose", action="store_true", default=default,
                   help="show TensorFlow's logs and the converter's SavedModel summary")


def _set_log_levels(verbose, argv):
    """Quiet: absl (the converter's Python logs; Keras' SavedModel summary goes there) at ERROR and
    TensorFlow's Python warnings off. Verbose: absl at INFO, and TensorFlow's C++ logs, which it
    configures once when it loads (keras_mobile/__init__ defaults TF_CPP_MIN_LOG_LEVEL to 2), on:
    a real command line re-runs itself with TF_CPP_MIN_LOG_LEVEL=0 for that."""
    from absl import logging as absl_logging
    if verbose:
        if argv is None and os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "0":
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
            os.execv(sys.executable, [sys.executable, "-m", "keras_mobile.cli"] + sys.argv[1:])
        absl_logging.set_verbosity(absl_logging.INFO)
        return
    absl_logging.set_verbosity(absl_logging.ERROR)
    import warnings
    warnings.filterwarnings("ignore", module=r"tensorflow\.")


def _user_errors():
    from keras_mobile.weights.errors import WeightsError
    return (ValueError, WeightsError, OSError)


def _one_line(e):
    lines = str(e).strip().splitlines() or [type(e).__name__]
    return lines[0] + (" [...] (--debug shows all)" if len(lines) > 1 else "")


def main(argv=None):
    """Runs the command line; returns the exit status (0 ok, 2 user error)."""
    parser = argparse.ArgumentParser(prog="keras-mobile", description=__doc__.splitlines()[0])
    _add_global_flags(parser, False)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.help, description=module.help)
        _add_global_flags(p, argparse.SUPPRESS)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    _set_log_levels(args.verbose, argv)
    try:
        return args._run(args) or 0
    except _user_errors() as e:
        if args.debug:
            raise
        print(f"keras-mobile {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
