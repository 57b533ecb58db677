#
# Copyright (c) 2024 Airbyte, Inc., all rights reserved.
#

import argparse
import json
import sys


def _load_json(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _parse_args(argv):
    parser = argparse.ArgumentParser(prog="source-dockerfile-spec-fails")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("spec")
    for name in ("check", "discover"):
        commands.add_parser(name).add_argument("--config", required=True)
    read = commands.add_parser("read")
    read.add_argument("--config", required=True)
    read.add_argument("--catalog", required=True)
    read.add_argument("--state", required=False)
    return parser.parse_args(argv)


def _emit(message):
    print(json.dumps(message), flush=True)


def launch(source, argv=None):
    args = _parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "spec":
        _emit(source.spec())
    elif args.command == "check":
        _emit(source.check(_load_json(args.config)))
    elif args.command == "discover":
        _emit(source.discover(_load_json(args.config)))
    elif args.command == "read":
        for record in source.read(_load_json(args.config), _load_json(args.catalog)):
            _emit(record)


def run(argv=None):
    from .source import SourceDockerfileSpecFails

    launch(SourceDockerfileSpecFails(), argv)
