# Sourced by scripts: the environment bootstrap.sh exports, without installing anything. The same for the
# `reseat` CLI and the plain `pulumi` CLI: PATH (pulumi, pulumi-language-nodejs, the dynamic-provider
# plugin), offline settings, PULUMI_HOME. The backend is the project's own (Pulumi.yaml `backend.url`).
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
[ -x "$RESEAT_CACHE/node24/node_modules/node/bin/node" ] && export PATH="$RESEAT_CACHE/node24/node_modules/node/bin:$PATH"
_reseat_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# pulumi, pulumi-language-nodejs and the dynamic-provider plugin script, side by side (bootstrap.sh).
export PATH="$RESEAT_CACHE/bin:$PATH"
mkdir -p "$_reseat_root/.pulumi-state" # Pulumi.yaml's backend (the CLI wants the folder to exist)
export PULUMI_SKIP_UPDATE_CHECK=1 PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
if [ -z "${PULUMI_CONFIG_PASSPHRASE:-}${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then
  echo "[reseat env] PULUMI_CONFIG_PASSPHRASE is not set: using the demo passphrase 'reseat-local-demo' (set your own for anything but the demo)" >&2
  export PULUMI_CONFIG_PASSPHRASE=reseat-local-demo
fi
export PULUMI_HOME="${PULUMI_HOME:-$RESEAT_CACHE/pulumi-home}"
