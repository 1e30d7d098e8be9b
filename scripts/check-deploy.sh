#!/usr/bin/env bash
# Checks the deployment files offline: deploy/compose.yaml with
# `docker-compose config` and pytest, and every Kubernetes manifest in
# deploy/kubernetes against the schemas of the npm packages pinned in
# tests/deploy/package-lock.json. Starts no container and needs no cluster.
# `make deploy-check` runs it after installing the Debian packages.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/build/deploy-tools"

for program in docker-compose node npm /usr/bin/python3; do
    if ! command -v "$program" >/dev/null 2>&1; then
        echo "check-deploy: $program is missing; run ./scripts/install-deps.sh" >&2
        exit 1
    fi
done

# npm ci installs exactly the locked versions, into the build tree only.
mkdir -p "$tools"
cp "$root/tests/deploy/package.json" "$root/tests/deploy/package-lock.json" "$tools/"
npm ci --prefix "$tools" --ignore-scripts --no-audit --no-fund --loglevel=error

echo "check-deploy: docker-compose config -q deploy/compose.yaml"
docker-compose -f "$root/deploy/compose.yaml" config -q
docker-compose -f "$root/deploy/compose.yaml" -f "$root/deploy/compose.api-keys.yaml" config -q

echo "check-deploy: validating deploy/kubernetes"
export NODE_PATH="$tools/node_modules"
node "$root/tests/deploy/validate_manifests.cjs" "$root/deploy/kubernetes"
node --test --test-reporter=spec "$root/tests/deploy/validate_manifests.test.cjs"

echo "check-deploy: pytest tests/deploy/test_compose.py"
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider "$root/tests/deploy/test_compose.py"
