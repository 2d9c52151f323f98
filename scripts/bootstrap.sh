#!/usr/bin/env bash
# One-time set-up on a fresh machine: the Python virtualenv with the project and its
# test tools, and the system packages the local stack needs (PostgreSQL server, a JDK
# and Maven for the Kafka broker's jars, MariaDB for the MariaDB-source suite). Safe to
# run again. One line per step; the tools' own output is shown only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() {  # step "what" command...: one line, the command's output only on failure
  local what=$1; shift
  echo "bootstrap: $what"
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: failed: $what" >&2
    exit 1
  fi
}

need_apt=()
if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
# the MariaDB-source suite starts its own mariadbd (never the system service)
if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  need_apt+=(mariadb-server)
fi
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    step "apt-get update" apt-get update -qq
    step "installing ${need_apt[*]} with apt-get" \
      env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
  else
    echo "bootstrap: missing ${need_apt[*]}; install them (Debian: sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

PY=${PY:-python3}
if [ ! -x .venv/bin/python ]; then
  step "creating the virtualenv (.venv)" "$PY" -m venv .venv
fi
step "upgrading pip" .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
step "installing the project and its test tools" \
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
echo "bootstrap: ready (.venv)"
