"""``python -m contracts generate|check``: write or check the JSON Schemas generated from the
models (every event payload, the envelope, and the eligibility status report)."""

from __future__ import annotations

import json
import sys

from contracts.registry import SCHEMA_DIR
from contracts.schema_gen import all_schemas


def render(schema: dict[str, object]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "check"
    schemas = all_schemas()
    if command == "generate":
        SCHEMA_DIR.mkdir(exist_ok=True)
        for name, schema in schemas.items():
            (SCHEMA_DIR / name).write_text(render(schema), encoding="utf-8")
        print(f"wrote {len(schemas)} schemas to {SCHEMA_DIR}")
        return 0
    if command == "check":
        stale = [n for n, s in schemas.items()
                 if not (SCHEMA_DIR / n).exists()
                 or (SCHEMA_DIR / n).read_text(encoding="utf-8") != render(s)]
        for name in stale:
            print(f"stale or missing: {name}", file=sys.stderr)
        return 1 if stale else 0
    print("usage: python -m contracts [generate|check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
