"""Prints `redocly lint --format=json` output as one line per problem, naming the operation.

    python contract/lint_summary.py target/contract/redocly-lint.json target/contract/openapi.json

A problem's JSON pointer into the document is shown as `METHOD /path (operationId)` when it is in
an operation, so a report reads like the routes in src/ rather than like line numbers in a
generated file. The last line is the totals.
"""

from __future__ import annotations

import json
import sys
from typing import Any

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def where(pointer: str, document: dict[str, Any]) -> str:
    tokens = [unescape(t) for t in pointer.lstrip("#").lstrip("/").split("/")] if pointer.strip("#/") else []
    if len(tokens) >= 3 and tokens[0] == "paths" and tokens[2] in METHODS:
        path, method, rest = tokens[1], tokens[2], tokens[3:]
        operation = document.get("paths", {}).get(path, {}).get(method, {})
        name = f"{method.upper()} {path}"
        if isinstance(operation, dict) and operation.get("operationId"):
            name += f" ({operation['operationId']})"
        return name + (f" at {'/'.join(rest)}" if rest else "")
    return pointer or "#"


def main(report_path: str, document_path: str) -> int:
    with open(report_path, encoding="utf-8") as f:
        report = json.load(f)
    with open(document_path, encoding="utf-8") as f:
        document = json.load(f)
    problems = sorted(report.get("problems", []), key=lambda p: (p["severity"] != "error", p["ruleId"]))
    for problem in problems:
        locations = problem.get("location") or [{}]
        at = where(locations[0].get("pointer", ""), document)
        print(f"{problem['severity']:<7} {problem['ruleId']:<28} {at}: {problem['message']}")
    totals = report.get("totals", {})
    print(
        f"{totals.get('errors', 0)} error(s), {totals.get('warnings', 0)} warning(s), "
        f"{totals.get('ignored', 0)} ignored"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
