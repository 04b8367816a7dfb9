#!/usr/bin/env bash
# Makes sure `prometheus` and `promtool` (Debian's prometheus package) are installed, for
# charts/test/prometheus.test.ts. Safe to run repeatedly; needs root on Debian. The package's
# own service is kept from starting (policy-rc.d): the test runs a private Prometheus on a
# loopback port, and nothing else should listen on 9090.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  echo "prometheus already installed: $(prometheus --version 2>&1 | head -n 1)"
  exit 0
fi
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
echo "installed: $(prometheus --version 2>&1 | head -n 1)"
