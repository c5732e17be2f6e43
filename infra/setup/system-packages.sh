#!/usr/bin/env bash
# Installs the Debian packages Diamond needs and that npm/pip/Maven cannot bring:
# a JDK 17 (Kafka, Cassandra, Spark), Maven (fetches the jars), Redis, Python's venv.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail
need=()
command -v mvn >/dev/null 2>&1 || need+=(maven)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
ls /usr/lib/jvm/java-17-openjdk-*/bin/java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
if ((${#need[@]} == 0)); then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${need[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
