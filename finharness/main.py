"""``finharness``: one command, one module per subcommand (this package is the roof: it
imports every other package, and none imports it)."""
from __future__ import annotations

import argparse
import sys

from finharness import (
    compare,
    contamination,
    deviation,
    forgetting,
    leaderboard,
    merge,
    models,
    push,
    study,
    tasks,
    train,
    validate,
    views,
)
from finharness import eval as eval_command
from plumbing.checkpoints import CheckpointError

SUBCOMMANDS = (
    eval_command,
    tasks,
    validate,
    train,
    merge,
    views,
    compare,
    contamination,
    forgetting,
    deviation,
    leaderboard,
    study,
    models,
    push,
)


DESCRIPTION = ("Score, fine-tune and merge small LLMs on financial tasks: what fine-tuning bought on the tasks it "
               "trained on, what it cost on tasks it never saw, and whether merging wins it back (lm-eval tasks, "
               "PEFT LoRA, MergeKit), with a leaderboard of the results.")


def _describe(parser: argparse.ArgumentParser) -> None:
    """Each subcommand's help line is also its own page's description (``finharness eval --help``)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not sub.description and helps.get(name):
                    sub.description = helps[name][0].upper() + helps[name][1:] + "."
                _describe(sub)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="finharness", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.register(sub)
    _describe(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from plumbing.logs import show_progress
    from plumbing.offline import set_offline

    args = build_parser().parse_args(argv)
    show_progress()
    # Offline unless asked: a Hub lookup fails at once instead of waiting on timeouts.
    set_offline(getattr(args, "online", False))
    try:
        return args.func(args)
    except (CheckpointError, ValueError) as err:
        print(f"finharness: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a path taken by a file, a permission: named, no traceback
        print(f"finharness: error: {err}", file=sys.stderr)
        return 1
    except Exception as err:
        from jinja2 import TemplateError

        if not isinstance(err, TemplateError):
            raise
        # A task template the sandbox stopped (or one that does not render): named, no traceback.
        print(f"finharness: error: a task template did not render: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
