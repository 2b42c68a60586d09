#!/usr/bin/env bash
# Installs the two peers that the benchmark compares Carillon with:
#   - Prometheus Alertmanager from Debian's package (/usr/bin/prometheus-alertmanager);
#   - Apprise from PyPI into a virtualenv at $CARILLON_PEERS_DIR/venv
#     (default <repo>/target/bench-peers/venv), pinned to the 2.2 series.
# Idempotent: re-running only checks what is already there. Runs as root (no sudo).
set -euo pipefail

APPRISE_SPEC='apprise==2.2.*'
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
peers_dir=${CARILLON_PEERS_DIR:-$repo/target/bench-peers}
venv=$peers_dir/venv
am=/usr/bin/prometheus-alertmanager

die() { echo "setup.sh: error: $*" >&2; exit 1; }

apt_install() {  # apt-get update only when the plain install fails
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null ||
        { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null; } ||
        die "apt-get install $* failed"
}

# --- Alertmanager --------------------------------------------------------------
if [[ ! -x $am ]]; then
    echo "installing prometheus-alertmanager (Debian)..." >&2
    apt_install prometheus-alertmanager
fi
[[ -x $am ]] || die "$am missing after install"
# The package enables a systemd unit; our driver starts its own instance on a free port.

# --- Apprise in a venv ---------------------------------------------------------
py=/usr/bin/python3
[[ -x $py ]] || py=$(command -v python3) || die "no python3 found"
if [[ ! -x $venv/bin/python ]]; then
    "$py" -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
    mkdir -p "$peers_dir" 2>/dev/null || die "cannot create $peers_dir"
    "$py" -m venv "$venv" || die "could not create virtualenv at $venv"
fi
installed=$("$venv/bin/python" -c 'import apprise; print(apprise.__version__)' 2>/dev/null || true)
if [[ $installed != 2.2.* ]]; then
    echo "installing $APPRISE_SPEC into $venv..." >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$APPRISE_SPEC" ||
        die "pip install $APPRISE_SPEC failed"
fi

am_version=$("$am" --version 2>&1 | awk 'NR==1 {print $3}')
ap_version=$("$venv/bin/python" -c 'import apprise; print(apprise.__version__)') ||
    die "apprise does not import from $venv"
echo "alertmanager $am_version ($am)"
echo "apprise $ap_version ($venv/bin/python)"
