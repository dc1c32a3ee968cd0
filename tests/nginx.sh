# nginx, the load balancer the replica tests put in front of several gateways: Debian's,
# installed when absent and we are root (as in CI). Sourced by tests/run.sh; exports
# MCPS_TEST_NGINX.

if [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "nginx is not installed and we are not root to install it: apt-get install nginx" >&2
        return 1
    fi
    [ -n "$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v lock)" ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx > /dev/null
fi
export MCPS_TEST_NGINX=/usr/sbin/nginx
