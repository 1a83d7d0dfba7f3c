#!/usr/bin/env bash
# Validates the deployment files, so that a broken or unsafe manifest or Dockerfile fails CI:
#
#   1. deploy/Dockerfile: hadolint.
#   2. every kustomization (deploy/k8s/base and each overlay) is rendered with kubectl's built-in
#      kustomize (no cluster needed), then
#   3. each rendered manifest is validated strictly against the Kubernetes schemas of the oldest
#      and newest versions we support (unknown fields, wrong types and missing required fields fail),
#   4. deploy/check_manifests.py checks what schemas can't: selectors, references, probes, ports,
#      settings (production: at least 3 replicas),
#   5. checkov scans the rendered manifests and the Dockerfile (skips and their reasons:
#      deploy/.checkov.yaml).
#
# Tools come from PyPI into a venv ($ENTITLEMENTS_DEPLOY_VENV, default
# /tmp/entitlements-deploy-venv), versions fixed by deploy/requirements.txt and constraints.txt.
# kubectl must be on PATH (it is on this project's machines); nothing talks to a cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${ENTITLEMENTS_DEPLOY_VENV:-/tmp/entitlements-deploy-venv}
# Oldest supported: 1.30 (the preStop `sleep` action is on by default from 1.30). Newest: what
# kubernetes-validate ships.
k8s_versions=(1.30.0 1.37.0)

if ! command -v kubectl >/dev/null 2>&1; then
  echo "error: kubectl is not on PATH; deploy/validate.sh renders the kustomizations with 'kubectl kustomize'" >&2
  exit 1
fi

python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  -r deploy/requirements.txt -c deploy/constraints.txt

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "--- Dockerfile: hadolint"
"$venv/bin/hadolint" deploy/Dockerfile
echo "OK deploy/Dockerfile"

rendered=()
for dir in deploy/k8s/base deploy/k8s/overlays/*/; do
  dir=${dir%/}
  name=$(basename "$dir")
  echo "--- $dir: kustomize, schemas (${k8s_versions[*]}), consistency"
  kubectl kustomize "$dir" > "$out/$name.yaml"
  for v in "${k8s_versions[@]}"; do
    "$venv/bin/kubernetes-validate" --strict --quiet --kubernetes-version "$v" "$out/$name.yaml"
  done
  echo "OK $dir: $(grep -c '^kind:' "$out/$name.yaml") resources valid against Kubernetes ${k8s_versions[*]} (strict)"
  min_replicas=1
  [ "$name" = production ] && min_replicas=3
  "$venv/bin/python" deploy/check_manifests.py "$out/$name.yaml" --min-replicas "$min_replicas" --label "$dir"
  rendered+=("$out/$name.yaml")
done

echo "--- checkov (rendered manifests and Dockerfile)"
"$venv/bin/checkov" --config-file deploy/.checkov.yaml -f "${rendered[@]}" deploy/Dockerfile
echo "OK checkov"
