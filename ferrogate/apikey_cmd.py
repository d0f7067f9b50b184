"""`ferrogate api-key create`: make an API key, store only its hash, print the key once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferrogate.api.keys import KeyFileError, Role, append_key, new_key, parse_lines


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api-key", help="manage API keys")
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; prints it once, stores its hash")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. mes-reporting")
    create.add_argument("--role", choices=[r.name for r in Role], required=True)
    create.add_argument("--file", type=Path, required=True, help="key file (the plant file's api.keys_file)")


def run(args: argparse.Namespace) -> int:
    if args.file.exists():
        try:
            existing = parse_lines(args.file.read_text(encoding="utf-8"), str(args.file))
        except KeyFileError as exc:
            print(f"api-key: {exc}", file=sys.stderr)
            return 1
        if any(k.name == args.name for k in existing):
            print(f"api-key: {args.file} already has a key named {args.name!r}", file=sys.stderr)
            return 1
    key, stored = new_key(args.name, Role[args.role])
    append_key(args.file, stored)
    print(key)
    print(f"stored the hash of {args.role} key {args.name!r} (id {stored.id}) in {args.file}", file=sys.stderr)
    return 0
