#!/usr/bin/env bash
# Install ferrogate on a Debian 12 edge box: Debian's mosquitto and influxdb, a dedicated user, a
# virtualenv in /opt/ferrogate, broker secrets and ACL, InfluxDB with authentication, systemd units.
#
#   sudo deploy/install.sh                 # from a checkout of the repository
#
# Safe to run again (it keeps existing passwords, certificates and the plant file).
# Options for staging into another root (used by the test suite):
#   --root DIR        install under DIR instead of /
#   --skip-packages   do not apt-get install
#   --skip-services   do not create the user, restart services, run db-init or call systemctl
set -euo pipefail

ROOT=/
PACKAGES=1
SERVICES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=$2; shift 2 ;;
    --skip-packages) PACKAGES=0; shift ;;
    --skip-services) SERVICES=0; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
SRC=$(cd "$(dirname "$0")/.." && pwd)
R=${ROOT%/}
OPT=$R/opt/ferrogate
ETC=$R/etc/ferrogate
MQ=$R/etc/mosquitto
say() { echo "install: $*"; }

if [ "$PACKAGES" = 1 ]; then
  say "Debian packages"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    mosquitto mosquitto-clients influxdb influxdb-client python3 python3-venv openssl curl \
    libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk  # the monthly report's PDF
fi

if [ "$SERVICES" = 1 ] && ! id ferrogate >/dev/null 2>&1; then
  say "system user ferrogate"
  useradd --system --home-dir /var/lib/ferrogate --shell /usr/sbin/nologin ferrogate
fi

say "program in $OPT"
mkdir -p "$OPT" "$ETC" "$R/var/lib/ferrogate"
if [ ! -x "$OPT/venv/bin/python" ]; then python3 -m venv "$OPT/venv"; fi
"$OPT/venv/bin/python" -m pip install -q "$SRC"
mkdir -p "$OPT/deploy"
cp -r "$SRC/deploy/grafana" "$SRC/deploy/plants" "$SRC/deploy/README.md" "$OPT/deploy/"

say "configuration in $ETC"
gen() { "$OPT/venv/bin/python" -c "import secrets; print(secrets.token_urlsafe(24))"; }
if [ ! -f "$ETC/ferrogate.env" ]; then
  umask 077
  {
    echo "# secrets for ferrogate services (EnvironmentFile of ferrogate@.service, read by systemd as root)"
    echo "FERROGATE_MQTT_PASSWORD=$(gen)"
    echo "FERROGATE_INFLUX_PASSWORD=$(gen)"
    echo "INFLUX_ADMIN_PASSWORD=$(gen)"
    echo "GRAFANA_INFLUX_PASSWORD=$(gen)"
  } > "$ETC/ferrogate.env"
  umask 022
fi
chmod 600 "$ETC/ferrogate.env"
if [ ! -e "$ETC/plant.yaml" ]; then
  cp "$SRC/deploy/plants/site-template.yaml" "$ETC/plant.yaml"
  say "edit $ETC/plant.yaml for this plant, then: $OPT/venv/bin/ferrogate check-config $ETC/plant.yaml"
fi
# API keys (hashes only): written by root with `ferrogate api-key create`, read by the service
if [ ! -f "$ETC/api-keys" ]; then install -m 640 /dev/null "$ETC/api-keys"; fi
if getent group ferrogate >/dev/null 2>&1; then chgrp ferrogate "$ETC/api-keys"; fi
# Grafana's environment (deploy/README.md step 3): only the read-only database user's password
{
  echo "# for grafana-server (drop-in grafana-server.service.d/ferrogate.conf), made by install.sh"
  echo "GRAFANA_INFLUX_URL=http://127.0.0.1:8086"
  grep '^GRAFANA_INFLUX_PASSWORD=' "$ETC/ferrogate.env"
  echo "FERROGATE_DASHBOARDS=/opt/ferrogate/deploy/grafana/dashboards"
} > "$ETC/grafana.env.new"
chmod 600 "$ETC/grafana.env.new"
mv "$ETC/grafana.env.new" "$ETC/grafana.env"

say "broker: /etc/mosquitto/conf.d/ferrogate.conf, ACL, password file, TLS certificates"
mkdir -p "$MQ/conf.d" "$MQ/ferrogate"
cp "$SRC/deploy/mosquitto/ferrogate.conf" "$MQ/conf.d/ferrogate.conf"
cp "$SRC/deploy/mosquitto/acl" "$MQ/ferrogate/acl"
chmod 644 "$MQ/conf.d/ferrogate.conf" "$MQ/ferrogate/acl"
(set -a; . "$ETC/ferrogate.env"; set +a; "$SRC/deploy/make-broker-secrets.sh" "$MQ/ferrogate")

say "database: InfluxDB authentication on"
INFLUX_CONF=$R/etc/influxdb/influxdb.conf
if [ -f "$INFLUX_CONF" ] && ! grep -q '^  auth-enabled = true' "$INFLUX_CONF"; then
  sed -i 's/^  # auth-enabled = false/  auth-enabled = true/; s/^  auth-enabled = false/  auth-enabled = true/' "$INFLUX_CONF"
fi

say "systemd units ferrogate@.service, ferrogate-simulator.service, Grafana drop-in"
mkdir -p "$R/etc/systemd/system/grafana-server.service.d"
cp "$SRC/deploy/systemd/ferrogate@.service" "$SRC/deploy/systemd/ferrogate-simulator.service" "$R/etc/systemd/system/"
cp "$SRC/deploy/systemd/grafana-server.service.d/ferrogate.conf" "$R/etc/systemd/system/grafana-server.service.d/"

if [ "$SERVICES" = 1 ]; then
  chown -R ferrogate:ferrogate "$R/var/lib/ferrogate"
  systemctl daemon-reload
  systemctl restart mosquitto influxdb
  if ! curl -s -o /dev/null --retry 30 --retry-connrefused --retry-delay 1 "http://127.0.0.1:8086/ping"; then
    echo "install.sh: influxdb does not answer on 127.0.0.1:8086; see journalctl -u influxdb" >&2
    exit 1
  fi
  (set -a; . "$ETC/ferrogate.env"; set +a
   "$OPT/venv/bin/ferrogate" db-init --plant "$ETC/plant.yaml" --admin-password-env INFLUX_ADMIN_PASSWORD \
     --grafana-password-env GRAFANA_INFLUX_PASSWORD)
  say "next: deploy/README.md step 2 (commissioning on simulated devices, then the site's plant file)"
fi
say "done"
