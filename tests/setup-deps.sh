#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine: idempotent and quiet when all is there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
shopt -s nullglob
lists=("$here"/*/requirements-apt*.txt)
packages=$(cat "${lists[@]}" | grep -v '^\s*#' | tr -s ' \n' ' ')
missing=""
for p in $packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing Debian packages:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
python3 -m pip install -q --disable-pip-version-check -e "$root[dev,spark,console]" 2>&1 | grep -v "Running pip as the 'root' user" || true
# The S3A connector and the MapReduce examples for the Spark tests, cached by Hadoop version.
PYTHON=python3 bash "$here/setup-spark.sh" >/dev/null
