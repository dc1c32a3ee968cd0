# Chromium, the browser the console's tests drive (through playwright-core): Debian's,
# installed when absent and we are root (as in CI). Sourced by tests/run.sh; exports
# MCPS_TEST_CHROMIUM.

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "chromium is not installed and we are not root to install it: apt-get install chromium" >&2
        return 1
    fi
    [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk > /dev/null
fi
export MCPS_TEST_CHROMIUM=/usr/bin/chromium
