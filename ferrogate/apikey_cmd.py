"""`ferrogate api-key create`: make an API key, store only its hash, print the key once."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ferrogate.api.keys import KeyFileError, Role, append_key, new_key, parse_lines
from ferrogate.gateway.model_base import ID_PATTERN


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("api-key", help="manage API keys")
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key; prints it once, stores its hash")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. mes-reporting")
    create.add_argument("--role", choices=[r.name for r in Role], required=True)
    create.add_argument("--file", type=Path, required=True, help="key file (the plant file's api.keys_file)")
    create.add_argument(
        "--sites",
        help="group center only: the plant sites the key may read, comma-separated (default: every plant)",
    )


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
    sites = tuple(s.strip() for s in args.sites.split(",") if s.strip()) if args.sites else None
    bad = [s for s in sites or () if not re.fullmatch(ID_PATTERN, s)]
    if args.sites is not None and (not sites or bad):
        print(
            f"api-key: --sites wants plant site ids separated by commas; not ids: {bad or [args.sites]}",
            file=sys.stderr,
        )
        return 1
    key, stored = new_key(args.name, Role[args.role], sites=sites)
    append_key(args.file, stored)
    print(key)
    limited = f" for plants {', '.join(sites)}" if sites else ""
    print(f"stored the hash of {args.role} key {args.name!r}{limited} (id {stored.id}) in {args.file}", file=sys.stderr)
    return 0
