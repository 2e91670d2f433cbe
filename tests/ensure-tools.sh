#!/usr/bin/env bash
# Install the programs the test suite drives (tmux for the terminal client
# tests, openssl for test certificates) when they are missing.  Debian
# package names; needs root or passwordless sudo, as on the project's
# machines.  Prints nothing when everything is there.
set -euo pipefail
missing=()
for tool in "$@"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
