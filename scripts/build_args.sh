# Sourced by scripts/base_images.sh and scripts/compose_test.sh: BUILD_ARGS, the docker build
# arguments for builds behind a TLS-intercepting proxy or without PyPI (docs/deployment.md):
#   EXTRA_CA_CERTS   PEM text of extra CA certificates, from EXTRA_CA_CERTS_FILE (default:
#                    the host's /usr/local/share/ca-certificates/*.crt, where update-ca-
#                    certificates takes local CAs from); pip and Maven trust them at build time
#   PIP_INDEX_URL    a PyPI mirror, if set
# CA certificates are public; build arguments are visible in `docker history`, so a mirror URL
# with credentials belongs in pip.conf on a build host you trust, not here.
BUILD_ARGS=()
_extra_ca=""
if [ -n "${EXTRA_CA_CERTS_FILE:-}" ]; then
    [ -r "$EXTRA_CA_CERTS_FILE" ] || { echo "EXTRA_CA_CERTS_FILE=$EXTRA_CA_CERTS_FILE is not readable" >&2; exit 1; }
    _extra_ca="$(cat "$EXTRA_CA_CERTS_FILE")"
else
    for _crt in /usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt; do
        [ -r "$_crt" ] && _extra_ca+="$(cat "$_crt")"$'\n'
    done
fi
[ -n "$_extra_ca" ] && BUILD_ARGS+=(--build-arg "EXTRA_CA_CERTS=$_extra_ca")
[ -n "${PIP_INDEX_URL:-}" ] && BUILD_ARGS+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
unset _extra_ca _crt
