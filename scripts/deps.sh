#!/usr/bin/env bash
# Installs the Debian packages Zygo builds and tests with, when any is missing.
# Quiet and quick when everything is already there.
set -euo pipefail
PKGS=(build-essential pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libcurl4-openssl-dev libcriterion-dev libsodium-dev libpq-dev postgresql libjwt-dev liboath-dev libqrencode-dev zlib1g-dev libwslay-dev curl tzdata)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Node.js runs the OpenAPI validator in the tests; any node + npm on PATH will do.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: run as root or install: ${missing[*]}" >&2; exit 1; }
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
