# Sourced by scripts: the environment bootstrap.sh exports, without installing anything.
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
[ -x "$RESEAT_CACHE/node24/node_modules/node/bin/node" ] && export PATH="$RESEAT_CACHE/node24/node_modules/node/bin:$PATH"
export PATH="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/node_modules/@pulumi/pulumi:$RESEAT_CACHE/bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=1 PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-reseat-local-demo}"
export PULUMI_HOME="${PULUMI_HOME:-$RESEAT_CACHE/pulumi-home}"
