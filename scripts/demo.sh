#!/usr/bin/env bash
# The main job: the demo stack on the embedded defaults (local Docker Engine, local file backend,
# local stack config stacks/Pulumi.local.yaml). Installs what is missing first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$RESEAT_ROOT"
node dist/stacks/demo.js
