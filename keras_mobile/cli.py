"""`keras-mobile` command line. Thin: each subcommand lives in keras_mobile/commands/<name>.py
with `help` (one line), `add_arguments(parser)` and `run(args) -> int`."""
import argparse
import importlib
import sys

COMMANDS = ["demo", "list", "info", "export", "profile", "roofline", "benchmark", "adapt"]


def _load(name):
    try:
        return importlib.import_module(f"keras_mobile.commands.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"keras_mobile.commands.{name}":
            return None
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(prog="keras-mobile", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        module = _load(name)
        if module is None:
            continue
        p = sub.add_parser(name, help=module.help, description=module.help)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    return args._run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
