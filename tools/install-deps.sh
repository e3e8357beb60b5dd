#!/usr/bin/env bash
# Installs the Debian 12 packages imscloud needs, only those that are missing.
#   tools/install-deps.sh build   # to build and run
#   tools/install-deps.sh test    # to build and run the whole test suite
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config libssl-dev libc-ares-dev openssl libsqlite3-dev libpq-dev
            libxml2-dev libfreediameter-dev libjansson-dev
            libyaml-dev # libyaml-dev: YAML policy files (src/policy)
            libmicrohttpd-dev # libmicrohttpd-dev: the Prometheus /metrics endpoint (src/metrics)
            libcurl4-openssl-dev) # libcurl4-openssl-dev: the Keystone client (src/keystone)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev llvm-14 libosip2-dev sip-tester sipsak
           xz-utils procps iproute2 postgresql util-linux kamailio kamailio-ims-modules
           kamailio-presence-modules kamailio-sqlite-modules kamailio-tls-modules
           baresip-core # baresip-core: /usr/bin/baresip without the GTK front end (t_baresip.sh)
           sipvicious # svmap: tests/e2e/acl (security groups seen by a scanner)
           dnsmasq-base # a DNS server with SRV records on loopback (tests/e2e/ims icscf_dns)
           stun-client coturn # STUN clients (RFC 3489 and RFC 8489) for the keep-alive answer (tests/e2e/ims t_outbound.sh)
           python3-oslo.policy # the policy engine differential test (tests/diff/policy)
           keystone uwsgi-core uwsgi-plugin-python3 python3-openstackclient # tests/e2e/keystone
           python3-keystoneclient python3-nova python3-placement python3-glance python3-neutron curl) # tests/e2e/openstack (Nova with the fake driver, no services)
bench_pkgs=(kamailio)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
