#!/bin/sh
# Installs Debian's chromium for the browser tests when it is missing (make test-browser).
set -eu
if command -v chromium >/dev/null 2>&1 || [ -n "${CHROMIUM:-}" ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "ensure-chromium: chromium is missing and this user cannot install it (not root, no sudo); install Debian's chromium or set CHROMIUM" >&2
		exit 1
	fi
else
	SUDO=
fi
echo "ensure-chromium: installing Debian's chromium (apt-get)"
export DEBIAN_FRONTEND=noninteractive
# Another apt-get (the Docker engine's install, say) may hold the lock for a while.
$SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium >/dev/null ||
	{ $SUDO apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q chromium >/dev/null; }
command -v chromium
