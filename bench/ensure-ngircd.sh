#!/usr/bin/env bash
# Install ngircd (Debian's package), the C IRC server that `make bench`
# measures chatd against, when it is missing.  Needs root or passwordless
# sudo, as on the project's machines.  Prints nothing when it is there.
set -euo pipefail
if command -v ngircd >/dev/null 2>&1 || [ -x /usr/sbin/ngircd ]; then
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
echo "installing: ngircd" >&2
$sudo apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ngircd >/dev/null
# The package starts a system-wide ngircd on port 6667; the benchmark runs
# its own instances and needs none of it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet ngircd 2>/dev/null; then
  $sudo systemctl stop ngircd || true
fi
