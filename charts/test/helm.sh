#!/usr/bin/env bash
# Lints and renders the chart with the real Helm wherever Helm is installed (a no-op where it
# is not; the static tests in charts/test/*.test.ts run everywhere). Renders the defaults and
# every ci/*-values.yaml, the files chart-testing (ct) would use.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v helm >/dev/null; then
  echo "helm not installed: skipping helm lint/template (static chart tests still run)"
  exit 0
fi
helm lint charts/lanekeeper
helm template charts/lanekeeper >/dev/null
for values in charts/lanekeeper/ci/*-values.yaml; do
  helm lint charts/lanekeeper -f "$values"
  helm template lanekeeper charts/lanekeeper -f "$values" >/dev/null
done
echo "helm lint/template: ok"
