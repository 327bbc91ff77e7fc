"""``python -m framework schema ...``: infer a schema from a table, check a table against one.

Exit codes: 0 the table conforms (or the schema was written), 1 it does not, 2 a user error (a
schema that is not valid, a file that cannot be read, a bad command line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from framework.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

_READERS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv",
            ".jsonl": "jsonl", ".ndjson": "jsonl"}


def read_table(path: str) -> pd.DataFrame:
    """Read a parquet, csv, tsv or JSON-lines file; :class:`UserError` naming the file if not."""
    import pandas as pd

    kind = _READERS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise UserError(f"{path}: cannot tell the table format from the extension; use one of "
                        f"{', '.join(sorted(_READERS))}")
    if not os.path.exists(path):
        raise UserError(f"{path}: file not found")
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        if kind == "jsonl":
            return pd.read_json(path, lines=True)
        return pd.read_csv(path, sep="\t" if kind == "tsv" else ",")
    except Exception as exc:  # noqa: BLE001 - any reader failure is the file's problem
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot read as {kind}: {detail}") from None


def write_atomic(path: str, text: str) -> None:
    """Write ``text`` to a temporary file in the same folder, then rename it into place."""
    from framework.io import write_text

    try:
        write_text(path, text, parents=False)
    except OSError as exc:
        raise UserError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m framework schema",
        description="JSON Schema for tables: a schema describes one row; x- keywords the table.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    infer = sub.add_parser("infer", help="print (or write) a schema inferred from a table",
                           description="Infer a row schema from a parquet/csv table.")
    infer.add_argument("path", help="table file (.parquet, .csv, .tsv, .jsonl)")
    infer.add_argument("-o", "--output", help="write the schema to this file instead of stdout")
    check = sub.add_parser("check", help="check a table against a schema (exit 1 if it fails)",
                           description="Check every row of a table against a row schema.")
    check.add_argument("path", help="table file (.parquet, .csv, .tsv, .jsonl)")
    check.add_argument("schema", help="JSON Schema file describing one row")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    describe = sub.add_parser("describe", help="print how a schema is compiled",
                              description="Print the compiled plan of a schema.")
    describe.add_argument("schema", help="JSON Schema file describing one row")
    return parser


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return int(exc.code or 0)
    if args.command == "infer":
        return _infer(args.path, args.output)
    if args.command == "check":
        return _check(args.path, args.schema, as_json=args.json)
    return _describe(args.schema)


def _infer(path: str, output: str | None) -> int:
    from framework.schema import infer_schema

    text = json.dumps(infer_schema(read_table(path)), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        write_atomic(output, text)
        print(f"wrote {output}", file=sys.stderr)
    return 0


def _check(path: str, schema_path: str, *, as_json: bool) -> int:
    from framework.schema import compile_schema, load_schema

    compiled = compile_schema(load_schema(schema_path), source=schema_path)
    report = compiled.check(read_table(path))
    if as_json:
        body = {"table": path, "schema": schema_path, **report.to_dict()}
        sys.stdout.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    else:
        print(f"{path}: {report.format()}")
    return 0 if report.ok else 1


def _describe(schema_path: str) -> int:
    from framework.schema import compile_schema, load_schema

    print(compile_schema(load_schema(schema_path), source=schema_path).describe())
    return 0
