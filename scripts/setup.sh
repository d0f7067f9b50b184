#!/usr/bin/env bash
# Set-up shared by scripts/demo.sh and scripts/test.sh (--tests: also what the tests need):
# Debian packages, virtualenv, the package.
# Idempotent and quiet when everything is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

PY=${PYTHON:-python3}
need=()
have mosquitto || need+=(mosquitto)
have influxd || need+=(influxdb)
# speaks InfluxDB's v2 write API: the tests of the v2 dialect write to it (InfluxDB 2.x is not in Debian)
have victoria-metrics || need+=(victoria-metrics)
"$PY" -c "import ensurepip, venv" >/dev/null 2>&1 || need+=(python3-venv)
# the monthly report's PDF: WeasyPrint renders with Pango and subsets fonts with HarfBuzz; the
# report's Chinese text needs a CJK font
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${1:-}" = "--tests" ]; then
  # the deployment walkthrough test boots a bare Debian 12 with systemd (tests/debian_box.py)
  have debootstrap || need+=(debootstrap)
  have systemd-nspawn || need+=(systemd-container)
  # the offline test opens the API's pages in a real headless browser (tests/offline_browser.py)
  have chromium || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
# Reinstall only when the dependency list changed.
stamp=.venv/.ferrogate-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing ferrogate and its dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[test]'
  echo "$want" > "$stamp"
fi
