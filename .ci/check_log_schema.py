#!/usr/bin/env python3
"""Validate JSON log lines (stdin, up to the first non-JSON line) against docs/log-schema.json."""
import json
import sys
from pathlib import Path

import jsonschema

schema = json.loads((Path(__file__).resolve().parent.parent / "docs" / "log-schema.json").read_text())
validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
checked = 0
for n, line in enumerate(sys.stdin, 1):
    if not line.startswith("{"):
        break
    errors = sorted(validator.iter_errors(json.loads(line)), key=str)
    if errors:
        print(f"line {n}: {errors[0].message}\n  {line}", file=sys.stderr)
        sys.exit(1)
    checked += 1
if checked == 0:
    print("no log lines to check", file=sys.stderr)
    sys.exit(1)
print(f"{checked} log lines match docs/log-schema.json")
