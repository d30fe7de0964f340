#!/usr/bin/env bash
# Installs Debian's Chromium for tests/test_browser.py (the cookbook opened in JupyterLab in a real,
# headless browser). Browsers are never downloaded by playwright: it drives this system Chromium.
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root or sudo and apt.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "install_browser.sh: cannot install chromium: not root and no password-less sudo" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null; then
    echo "install_browser.sh: cannot install chromium: no apt-get on this machine" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends chromium
test -x /usr/bin/chromium
