#!/usr/bin/env bash
# Regenerates the replace block of go.mod from k8s.io/kubernetes' own go.mod: every
# `=> ./staging/src/k8s.io/X` line becomes `k8s.io/X => k8s.io/X v0.<minor>.<patch>`.
# Usage: hack/cluster/go/gen-replaces.sh v1.37.2  (prints the block; paste into go.mod)
set -euo pipefail
ver="${1:?kubernetes version, e.g. v1.37.2}"
staging="v0.${ver#v1.}"
modfile="$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/${ver}.mod"
[[ -f "$modfile" ]] || go mod download -json "k8s.io/kubernetes@${ver}" >/dev/null
echo "replace ("
grep -E '=> \./staging/src/k8s\.io/' "$modfile" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
echo ")"
