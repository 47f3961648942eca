"""`dynamictrl` command line: one subcommand per module in this package.

Each command module has `add_parser(subparsers)` and `run(args) -> int`. This is the one place that catches
`DynamiCtrlError`: it prints the message on one line and exits non-zero. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import sys

from .._version import __version__

# Order is the order shown in --help.
COMMANDS = [
    "animate", "pose", "app", "evaluate", "prepare-data", "synth", "train", "train-vae", "assemble-model", "download",
    "demo",
]  # fmt: skip

EPILOG = """examples:
  dynamictrl demo                                      animate the bundled example with the bundled small model
  dynamictrl download dynamictrl                       fetch the DynamiCtrl weights into the hub cache
  dynamictrl animate --image me.jpg --pose-video pose.mp4 --prompt "..." --out result.mp4
  dynamictrl <command> --help                          options of one command
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamictrl",
        description="Pose-guided human image animation with DynamiCtrl (CogVideoX-1.5 + Pose-adaptive LayerNorm).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dynamictrl {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
        except ModuleNotFoundError as exc:  # a command whose module is not part of this build
            if exc.name != f"{__name__}.{name.replace('-', '_')}":
                raise
            continue
        sub_parser = module.add_parser(sub)
        sub_parser.set_defaults(_run=module.run)
    return parser


def _configure_logging(quiet: bool, verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Libraries are chatty at INFO; keep their warnings.
    for noisy in ("diffusers", "transformers", "huggingface_hub", "httpx", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that the same clean-up runs (staged outputs and temp files are removed)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    _configure_logging(args.quiet, args.verbose)

    from ..errors import DynamiCtrlError

    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return int(args._run(args) or 0)
    except DynamiCtrlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Terminated:
        print("terminated; partial outputs were removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("interrupted; partial outputs were removed", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
