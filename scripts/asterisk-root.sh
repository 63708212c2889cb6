#!/usr/bin/env bash
# Build (once) a Debian sid root holding Asterisk 22, used by testbed/asterisk.py via chroot.
#
# Why a root: Debian 12 ships no Asterisk package, and adding sid to the host's apt sources
# would drag sid libraries into the host. debootstrap builds a self-contained sid tree instead.
#
# The root lives outside the git tree: $CALLCTL_ASTERISK_ROOT, default
# /var/cache/callctl/asterisk-root. The build goes into a temporary sibling directory and is
# renamed into place only after `asterisk -V` runs inside it, and a marker file is written last,
# so an interrupted or broken build is never mistaken for a good one and is simply rebuilt.
#
# Mirror: none is written here. We take the first Debian archive URI from the host's apt
# sources at run time, or let debootstrap use its default when none is found.
#
# Usage: scripts/asterisk-root.sh [--force]     (must run as root)
set -euo pipefail

ROOT="${CALLCTL_ASTERISK_ROOT:-/var/cache/callctl/asterisk-root}"
MARKER="$ROOT/.callctl-root-ok"
# asterisk pulls asterisk-modules (app_queue, app_mixmonitor, res_ari*, res_prometheus, app_amd);
# the sound packages give prompts and a music-on-hold class.
PACKAGES="asterisk,asterisk-core-sounds-en-gsm,asterisk-moh-opsound-gsm"
FORCE=0
[[ "${1:-}" == "--force" ]] && FORCE=1

log() { printf 'asterisk-root: %s\n' "$*" >&2; }

root_works() {
    [[ -f "$MARKER" ]] && chroot "$ROOT" /usr/sbin/asterisk -V >/dev/null 2>&1
}

host_debian_mirror() {
    # deb822 sources first, then one-line sources; skip security/updates-only archives.
    local uri
    uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
    if [[ -z "$uri" ]]; then
        uri=$(grep -hE '^deb[[:space:]]' /etc/apt/sources.list 2>/dev/null \
            | awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
    fi
    printf '%s' "$uri"
}

fix_sound_links() {
    # Debian links sounds/en (via /etc/alternatives) with absolute targets, which point into
    # the host when the tree is inspected from outside. Resolve each chain inside the root and
    # replace the link by a relative one that works both chrooted and from the host.
    local sounds=/usr/share/asterisk/sounds link resolved
    [[ -d "$1$sounds" ]] || return 0
    for link in "$1$sounds"/*; do
        [[ -L "$link" ]] || continue
        resolved=$(chroot "$1" readlink -m "$sounds/${link##*/}")
        ln -sfn "$(chroot "$1" realpath -m --relative-to="$sounds" "$resolved")" "$link"
    done
}

if [[ $FORCE -eq 0 ]] && root_works; then
    log "ready: $ROOT ($(chroot "$ROOT" /usr/sbin/asterisk -V))"
    exit 0
fi
if [[ $EUID -ne 0 ]]; then
    log "must run as root (debootstrap and chroot)"; exit 1
fi
command -v debootstrap >/dev/null || { log "debootstrap is not installed (make setup)"; exit 1; }

parent=$(dirname "$ROOT")
mkdir -p "$parent"
build=$(mktemp -d "$parent/.build.XXXXXX")
trap 'rm -rf --one-file-system "$build"' EXIT

mirror=$(host_debian_mirror)
log "building sid root with $PACKAGES into $build (mirror: ${mirror:-debootstrap default})"
started=$(date +%s)
# shellcheck disable=SC2086  # an empty mirror must vanish, not become ""
debootstrap --variant=minbase --include="$PACKAGES" sid "$build" $mirror >"$build.log" 2>&1 \
    || { log "debootstrap failed, last lines of $build.log:"; tail -n 20 "$build.log" >&2; exit 1; }
fix_sound_links "$build"
version=$(chroot "$build" /usr/sbin/asterisk -V) || { log "asterisk -V fails in the new root"; exit 1; }
# Drop the downloaded .debs: they are half the size and never used again.
rm -rf "$build"/var/cache/apt/archives/*.deb

old=""
if [[ -e "$ROOT" ]]; then
    old="$parent/.old.$$"
    mv "$ROOT" "$old"
fi
mv "$build" "$ROOT"
touch "$MARKER"
trap - EXIT
[[ -n "$old" ]] && rm -rf --one-file-system "$old"
rm -f "$build.log"
log "ready: $ROOT ($version) built in $(( $(date +%s) - started )) s"
