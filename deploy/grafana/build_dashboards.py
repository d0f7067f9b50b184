"""Writes the provisioned Grafana dashboards (deploy/grafana/dashboards/*.json) from their builders in
deploy/grafana/dashboard_builder/ (grafana-foundation-sdk). Never edit the JSON by hand: change a
builder and run

    .venv/bin/python deploy/grafana/build_dashboards.py

tests/test_dashboards.py fails while the committed JSON differs from what the builders make."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"


def main() -> None:
    sys.path.insert(0, str(HERE))  # the builders are a package beside this script, not part of ferrogate
    from dashboard_builder import render

    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")


if __name__ == "__main__":
    main()
