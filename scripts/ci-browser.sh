#!/usr/bin/env bash
# Installs Debian's chromium and a font for the web console's browser tests (tests/e2e), when
# missing. Playwright drives this system browser; never run `playwright install` (its CDN is
# unreachable here and CI must not depend on it). Needs root (CI runs as root).
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi dejavu; then
    echo "CI: chromium $(chromium --version 2>/dev/null | awk '{print $2}') is installed"
    exit 0
fi
echo "CI: installing chromium and fonts-dejavu-core for the console's browser tests"
timeout 600 bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
    -y -qq chromium fonts-dejavu-core >/dev/null'
chromium --version
