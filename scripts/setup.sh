#!/usr/bin/env bash
# Sets up patchpoint on Debian 12 with Node.js >= 20 (run as root): the Debian packages it builds
# and runs with (libpcap, nftables, ethtool) and the ones its demo and tests start in network
# namespaces (real servers and clients), then the npm dependencies and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# Packages bring their own system services; the demo and the tests start private instances
# inside network namespaces instead, so keep package installs from starting daemons.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
fi

packages=(
  libpcap-dev tcpdump ethtool nftables iproute2 iputils-ping
  nginx apache2 vsftpd dovecot-imapd dovecot-pop3d postfix mariadb-server openssh-server
  rpcbind nfs-common nmap curl python3-scapy tmux samba-libs openssl
)
need=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

npm ci --no-audit --no-fund
