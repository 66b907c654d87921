#!/usr/bin/env bash
# Checks that every nested module requires this repository's modules (the library, contrib/…) at
# the version they are released with — the newest in CHANGELOG.md — and reaches them through a
# replace, so that work inside the repository builds against the work tree while a user's
# `go get …/contrib/grpc@vX.Y.Z` resolves the library at the same vX.Y.Z.
set -euo pipefail
cd "$(dirname "$0")/.."

version="$(grep -m1 -oE '^## \[?v[0-9]+\.[0-9]+\.[0-9]+' CHANGELOG.md | grep -oE 'v[0-9]+\.[0-9]+\.[0-9]+' || true)"
if [[ -z "${version}" ]]; then
	echo "CHANGELOG.md names no version (a heading '## vX.Y.Z')" >&2
	exit 1
fi

status=0
while IFS= read -r gomod; do
	dir="$(dirname "${gomod}")"
	# Requirements of our own modules: "github.com/kuberegistry/kuberegistry[/…] vX.Y.Z".
	while read -r module required; do
		if [[ "${required}" != "${version}" ]]; then
			echo "${gomod}: requires ${module} ${required}; every module is released as ${version} (CHANGELOG.md)" >&2
			status=1
		fi
		if ! grep -qE "^[[:space:]]*(replace[[:space:]]+)?${module//./\\.}[[:space:]]+=>" "${gomod}"; then
			echo "${gomod}: requires ${module} without a replace to its directory in this repository" >&2
			status=1
		fi
	done < <(awk '$1 ~ /^github\.com\/kuberegistry\/kuberegistry/ && $2 ~ /^v/ { print $1, $2 }
		$1 == "require" && $2 ~ /^github\.com\/kuberegistry\/kuberegistry/ { print $2, $3 }' "${gomod}")
done < <(find . -name go.mod -not -path './go.mod' -not -path './hack/*' | sort)

if [[ ${status} -eq 0 ]]; then
	echo "modules: every nested module requires this repository's modules at ${version}"
fi
exit "${status}"
