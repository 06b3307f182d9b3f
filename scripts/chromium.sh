#!/usr/bin/env bash
# Headless Chromium for the report tests (Debian's package; Playwright drives it, it never
# downloads a browser). Idempotent: does nothing when /usr/bin/chromium is there.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "chromium.sh: installing Debian's chromium" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core >/dev/null
