#!/usr/bin/env bash
# Installs the Debian packages the demo or the tests need, when they are missing.
# Usage: test/prereqs.sh demo|test        (root, or sudo available; Debian 12)
set -euo pipefail
profile=${1:-test}

# util-linux: unshare; busybox-static: a shell and tools for minimal roots; tango-test and
# python3-tango: real Tango servers and a real client; file: checks on the built binary.
packages=(util-linux procps file busybox-static tango-test python3-tango)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "prereqs ($profile): installing Debian packages: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
