"""Every `pricing-ops` command and option says what it does in `--help`."""

from __future__ import annotations

import argparse

from orchestration.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", None, helps.get(name)
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, "/".join(action.option_strings) or action.dest, action.help


def test_every_command_and_option_has_help():
    missing = [f"{path} {option or ''}".strip() for path, option, text in _walk(build_parser(), "pricing-ops") if not text]
    assert missing == []
