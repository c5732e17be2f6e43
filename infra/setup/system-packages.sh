#!/usr/bin/env bash
# Installs the Debian packages Diamond needs and that npm/pip/Maven cannot bring:
# a JDK 17 (Kafka, Cassandra, Spark), Maven (fetches the jars), Redis, Python's venv,
# Chromium (the dashboard's browser test drives it headless through playwright-core).
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
# As root, also the job user and the cache outside /root (below).
set -euo pipefail
need=()
command -v mvn >/dev/null 2>&1 || need+=(maven)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
ls /usr/lib/jvm/java-17-openjdk-*/bin/java >/dev/null 2>&1 || need+=(openjdk-17-jdk-headless)
py=python3
[ "$(id -u)" -eq 0 ] && py=/usr/bin/python3 # as root the virtualenv is made from the system's (infra/services/artifacts.ts)
"$py" -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
if ((${#need[@]} == 0)); then
  echo "system packages: all present"
else
  echo "system packages: installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# As root, use case code (pip installs, validation, jobs) runs as an unprivileged user
# (DIAMOND_JOB_USER, default diamond-job): created here once, no home, no shell.
if [ "$(id -u)" -eq 0 ]; then
  job_user="${DIAMOND_JOB_USER:-diamond-job}"
  if ! id -u "$job_user" >/dev/null 2>&1; then
    echo "system packages: creating the job user $job_user"
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$job_user"
  fi
  # Root's cache moved out of /root (closed to the job user) to /var/cache/diamond: an existing
  # one is hard-linked over (same files, no download); use case environments are not (their
  # .pth files name the old folder) and are rebuilt at the next deploy.
  cache="${DIAMOND_CACHE_DIR:-/var/cache/diamond}"
  old="${HOME:-/root}/.cache/diamond"
  if [ ! -e "$cache" ] && [ -d "$old" ] && [ "$old" != "$cache" ]; then
    echo "system packages: seeding $cache from $old"
    mkdir -p "$cache.seed"
    for entry in "$old"/*; do
      case "$(basename "$entry")" in usecase-envs|*.lock) continue ;; esac
      cp -al "$entry" "$cache.seed/" 2>/dev/null || cp -a "$entry" "$cache.seed/"
    done
    # A virtualenv made from an interpreter under /root (pyenv) is moved onto the system's
    # python3 of the same minor version; kept only if the job user can then import its packages.
    for venv in "$cache.seed"/venv-*; do
      [ -f "$venv/pyvenv.cfg" ] || continue
      base=$(sed -n 's/^executable = //p' "$venv/pyvenv.cfg")
      case "$base" in /root/*) ;; *) continue ;; esac
      minor=$(sed -n 's/^version = \([0-9]*\.[0-9]*\).*/\1/p' "$venv/pyvenv.cfg")
      system="/usr/bin/python$minor"
      if [ -x "$system" ]; then
        sed -e "s#^home = .*#home = /usr/bin#" -e "s#^executable = .*#executable = $system#" "$venv/pyvenv.cfg" > "$venv/pyvenv.cfg.new"
        mv "$venv/pyvenv.cfg.new" "$venv/pyvenv.cfg" # a new file: the hard link to the old one is not changed
        for link in python python3 "python$minor"; do ln -sfn "$system" "$venv/bin/$link"; done
      fi
      if ! runuser -u "$job_user" -- "$venv/bin/python" -c 'import pyspark, pandas, pyarrow' >/dev/null 2>&1; then
        echo "system packages: $(basename "$venv") is not usable by $job_user; \`diamond services up\` rebuilds it"
        rm -rf "$venv"
      fi
    done
    mv "$cache.seed" "$cache"
  fi
  mkdir -p "$cache" && chmod 0755 "$cache"
fi
