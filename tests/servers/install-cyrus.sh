#!/bin/sh
# Install Cyrus IMAP for the tests beside Dovecot, without installing the cyrus-imapd package.
#
# cyrus-imapd declares `Conflicts: imap-server`, which dovecot-imapd provides, so apt-get would
# remove Dovecot. Instead its .debs are fetched with `apt-get download` and unpacked with
# `dpkg-deb -x` into CACHE/root; only the shared libraries they need (the lib* packages their
# Depends name, less the two only unused tools need) and sasl2-bin (saslpasswd2) plus
# libsasl2-modules (the PLAIN mechanism) are installed with apt-get, and only those missing. Nothing is downloaded when
# CACHE already holds a working tree.
#
#   sh tests/servers/install-cyrus.sh [CACHE]          install (as root) when missing
#   sh tests/servers/install-cyrus.sh --check [CACHE]  exit 0 when installed, 1 otherwise
#
# CACHE defaults to /var/cache/mailshift/cyrus; tests/servers/cyrus.py reads the same place
# (or $MAILSHIFT_CYRUS_ROOT, the unpacked tree).
set -eu

CHECK=no
if [ "${1:-}" = "--check" ]; then
    CHECK=yes
    shift
fi
CACHE=${1:-/var/cache/mailshift/cyrus}
ROOT=$CACHE/root
DEBS=$CACHE/debs
PACKAGES="cyrus-common cyrus-imapd"
# cyr_virusscan (libclamav) and notifyd (libzephyr) are never started by the fixture.
UNUSED_LIBS="libclamav libzephyr"
export DEBIAN_FRONTEND=noninteractive

libdir() {
    # The unpacked libcyrus*.so live in the multiarch folder of the tree.
    dirname "$(find "$ROOT/usr/lib" -name 'libcyrus_imap.so.*' 2>/dev/null | head -n 1)"
}

# Print the libraries the fixture's binaries cannot find (nothing when all is there).
missing_libraries() {
    lib=$(libdir)
    for binary in master imapd ctl_cyrusdb; do
        LD_LIBRARY_PATH=$lib ldd "$ROOT/usr/lib/cyrus/bin/$binary" | grep 'not found' || true
    done
}

installed() {
    [ -x "$ROOT/usr/lib/cyrus/bin/master" ] && [ -x "$ROOT/usr/lib/cyrus/bin/imapd" ] \
        && command -v saslpasswd2 >/dev/null \
        && ls /usr/lib/*/sasl2/libplain.so* >/dev/null 2>&1 \
        && [ -z "$(missing_libraries)" ]
}

if installed; then
    exit 0
fi
if [ "$CHECK" = yes ]; then
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "install-cyrus.sh: run as root (make system-deps uses sudo)" >&2
    exit 1
fi

updated=no
update_once() {
    if [ "$updated" = no ]; then
        apt-get update -qq
        updated=yes
    fi
}

mkdir -p "$DEBS"
if ! ls "$DEBS"/cyrus-imapd_*.deb "$DEBS"/cyrus-common_*.deb >/dev/null 2>&1; then
    echo "downloading $PACKAGES into $DEBS (unpacked, not installed: they conflict with dovecot-imapd)"
    update_once
    # apt's download sandbox user must be able to write there.
    if id _apt >/dev/null 2>&1; then
        chown _apt "$DEBS"
    fi
    (cd "$DEBS" && apt-get download -q $PACKAGES)
fi

if [ ! -x "$ROOT/usr/lib/cyrus/bin/master" ]; then
    rm -rf "$ROOT.new"
    mkdir -p "$ROOT.new"
    for deb in "$DEBS"/*.deb; do
        dpkg-deb -x "$deb" "$ROOT.new"
    done
    rm -rf "$ROOT"
    mv "$ROOT.new" "$ROOT"
fi

# The lib* packages the two .debs depend on (first of each alternative, versions dropped).
libraries=$(
    for deb in "$DEBS"/*.deb; do
        dpkg-deb -f "$deb" Depends
    done | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' | grep '^lib' | sort -u
)
for unused in $UNUSED_LIBS; do
    libraries=$(printf '%s\n' $libraries | grep -v "^$unused" || true)
done
# Only the packages missing: naming an installed one to apt-get would upgrade it (and whatever
# depends on it) to the newest version.
wanted=
for package in $libraries sasl2-bin libsasl2-modules; do
    if ! dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed'; then
        wanted="$wanted $package"
    fi
done
if [ -n "$wanted" ]; then
    echo "installing what Cyrus needs with apt-get:$wanted"
    update_once
    apt-get install -y -qq --no-install-recommends $wanted
fi

if ! installed; then
    echo "install-cyrus.sh: Cyrus in $ROOT still cannot run:" >&2
    missing_libraries >&2
    exit 1
fi
echo "Cyrus IMAP unpacked in $ROOT"
