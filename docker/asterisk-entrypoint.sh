#!/bin/sh
# Entrypoint of the Asterisk image: render the whole Asterisk side from the mounted controller
# config (and its secrets store, generated here on the first start), then become Asterisk.
#
#   CALLCTL_CONFIG          the controller's TOML (default /etc/callctl/controller.toml)
#   ASTERISK_CONFIG_DIR     where to render, as this script sees it (default /etc/asterisk)
#   CALLCTL_SECRETS_OWNER   USER[:GROUP] or UID[:GID] that gets the secrets store: the user the
#                           controller runs as (the store stays owner-only, 0600)
#
# Arguments: Asterisk's command line (default: /usr/sbin/asterisk -f -n; -f foreground, -n no
# colours; never -c without a terminal, the console spins). Rendering on every start is safe:
# unchanged files are not rewritten and existing secrets are kept.
set -eu

config="${CALLCTL_CONFIG:-/etc/callctl/controller.toml}"
out="${ASTERISK_CONFIG_DIR:-/etc/asterisk}"

if [ ! -r "$config" ]; then
    echo "asterisk-entrypoint: no controller config at $config (mount it, see docker/README.md)" >&2
    exit 2
fi
if [ "$#" -eq 0 ]; then
    set -- /usr/sbin/asterisk -f -n
fi

if [ -n "${CALLCTL_SECRETS_OWNER:-}" ]; then
    callctl --config "$config" render-conf --out "$out" --secrets-owner "$CALLCTL_SECRETS_OWNER"
else
    callctl --config "$config" render-conf --out "$out"
fi
exec "$@"
