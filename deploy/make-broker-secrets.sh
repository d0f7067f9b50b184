#!/usr/bin/env bash
# Broker secrets for deploy/mosquitto: the password file and a site CA + server certificate.
#   make-broker-secrets.sh OUT_DIR
# Passwords come from the environment, one variable per MQTT user (unset = user not created):
#   FERROGATE_MQTT_PASSWORD (user ferrogate: every role in one process), COLLECTOR_MQTT_PASSWORD,
#   INGEST_MQTT_PASSWORD, ENERGY_MQTT_PASSWORD, API_MQTT_PASSWORD.
# BROKER_HOSTNAME (default: this host's name) goes into the server certificate. Existing
# certificates are kept; the password file is rewritten from the environment each time.
set -euo pipefail
out=${1:?usage: make-broker-secrets.sh OUT_DIR}
host=${BROKER_HOSTNAME:-$(hostname)}
mkdir -p "$out"
chmod 755 "$out"

passwd="$out/passwd"
rm -f "$passwd"
users=0
for pair in ferrogate:FERROGATE_MQTT_PASSWORD collector:COLLECTOR_MQTT_PASSWORD ingest:INGEST_MQTT_PASSWORD \
            energy:ENERGY_MQTT_PASSWORD api:API_MQTT_PASSWORD; do
  user=${pair%%:*}
  var=${pair#*:}
  if [ -n "${!var:-}" ]; then
    if [ -f "$passwd" ]; then mosquitto_passwd -b "$passwd" "$user" "${!var}"; else mosquitto_passwd -c -b "$passwd" "$user" "${!var}"; fi
    users=$((users + 1))
  fi
done
if [ "$users" -eq 0 ]; then
  echo "make-broker-secrets: no *_MQTT_PASSWORD variable is set; the broker would accept nobody" >&2
  exit 1
fi
chmod 644 "$passwd"  # hashed (PBKDF2), readable by the broker's own user

if [ ! -f "$out/ca.crt" ]; then
  openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=ferrogate site CA" \
    -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
  chmod 600 "$out/ca.key"
fi
if [ ! -f "$out/server.crt" ]; then
  openssl req -newkey rsa:3072 -nodes -subj "/CN=$host" -keyout "$out/server.key" -out "$out/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:localhost,IP:127.0.0.1\n' "$host" > "$out/server.ext"
  openssl x509 -req -in "$out/server.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days 825 \
    -extfile "$out/server.ext" -out "$out/server.crt" 2>/dev/null
  rm -f "$out/server.csr" "$out/server.ext"
fi
# the broker runs as its own user: it must read the key; nobody else needs the directory
chmod 644 "$out/ca.crt" "$out/server.crt"
chmod 640 "$out/server.key"
if getent group mosquitto >/dev/null 2>&1; then chgrp mosquitto "$out/server.key"; else chmod 644 "$out/server.key"; fi
echo "broker secrets in $out: passwd ($users users), ca.crt, server.crt, server.key (CN=$host)"
