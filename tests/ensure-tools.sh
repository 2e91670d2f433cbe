#!/usr/bin/env bash
# Install the programs the test suite drives (tmux for the terminal client
# tests, chromium and chromedriver for the web page, openssl for test
# certificates, systemd's tools for the service units, redis-server for
# the cluster tests) when they are missing.  Each argument is a program, or
# PROGRAM:PACKAGE when the Debian package has another name
# (systemd-analyze:systemd).  Needs root or passwordless sudo, as on the
# project's machines.  Prints nothing when everything is there.
set -euo pipefail
missing=()
for arg in "$@"; do
  tool=${arg%%:*}
  package=${arg#*:}
  command -v "$tool" >/dev/null 2>&1 && continue
  [[ " ${missing[*]-} " == *" $package "* ]] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
