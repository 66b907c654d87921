#!/usr/bin/env bash
# Builds a local Kubernetes control plane (kube-apiserver + etcd) from source,
# through the Go module proxy only, for the integration tests in
# test/integration. Versions are pinned by hack/tools/go.mod.
#
# Prints only the absolute path of the directory that holds `kube-apiserver`
# and `etcd` on stdout; progress goes to stderr. Typical use:
#
#   export KUBEBUILDER_ASSETS="$(hack/control-plane.sh)"
#
# Binaries are cached under
#   ${KUBEREGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kuberegistry}/control-plane/
# in a directory named after the versions and a hash of the tools module, so a
# version bump builds anew while a warm run only checks that the files exist.
set -euo pipefail

log() { printf 'control-plane: %s\n' "$*" >&2; }

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
tools_dir="${script_dir}/tools"

# Module version as required by hack/tools/go.mod (read without running go, so
# that a warm run stays instant).
mod_version() {
	local v
	v="$(awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "${tools_dir}/go.mod")"
	if [[ -z "${v}" ]]; then
		log "cannot find $1 in ${tools_dir}/go.mod"
		exit 1
	fi
	printf '%s\n' "${v}"
}

k8s_version="$(mod_version k8s.io/kubernetes)"
etcd_version="$(mod_version go.etcd.io/etcd/server/v3)"

# Build flags that shape the binaries; they are part of the cache key too.
build_flags=(-trimpath -mod=readonly)
export CGO_ENABLED=0
# A go.work higher up must not pull the tools module into a workspace.
export GOWORK=off

tools_hash="$(cat "${tools_dir}/go.mod" "${tools_dir}/go.sum" <(printf '%s\n' "CGO_ENABLED=${CGO_ENABLED}" "${build_flags[*]}") |
	sha256sum | cut -c1-12)"

cache_root="${KUBEREGISTRY_CACHE:-${XDG_CACHE_HOME:-${HOME}/.cache}/kuberegistry}/control-plane"
dest="${cache_root}/k8s-${k8s_version}-etcd-${etcd_version}-${tools_hash}"

have_binaries() { [[ -x "$1/kube-apiserver" && -x "$1/etcd" ]]; }

if have_binaries "${dest}"; then
	printf '%s\n' "${dest}"
	exit 0
fi

command -v go >/dev/null || {
	log "go is not on PATH; it is needed to build kube-apiserver and etcd"
	exit 1
}

mkdir -p "${cache_root}"
# Serialise concurrent cold runs (e.g. parallel make targets): the second one
# waits and then finds the finished build.
if command -v flock >/dev/null; then
	exec 9>"${cache_root}/.lock"
	if ! flock -n 9; then
		log "waiting for another build to finish"
		flock 9
	fi
	if have_binaries "${dest}"; then
		printf '%s\n' "${dest}"
		exit 0
	fi
	# Under the lock, any build directory left is from a killed run.
	find "${cache_root}" -maxdepth 1 -name '.build-*' -exec rm -rf {} +
fi
# Build next to the destination (same filesystem) so the final mv is an
# atomic rename: an interrupted build never leaves a half-filled cache entry.
tmp="$(mktemp -d "${cache_root}/.build-XXXXXX")"
trap 'rm -rf "${tmp}"' EXIT

# Version stamping the way kubernetes' hack/lib/version.sh does it. The module
# zip carries no git metadata, so the commit is unknown and the tree state is
# "archive" (kubernetes' own value for builds from an exported source tree).
k8s_major="${k8s_version#v}"
k8s_major="${k8s_major%%.*}"
k8s_minor="${k8s_version#v*.}"
k8s_minor="${k8s_minor%%.*}"
build_date="$(date -u ${SOURCE_DATE_EPOCH:+--date=@${SOURCE_DATE_EPOCH}} +%Y-%m-%dT%H:%M:%SZ)"
k8s_ldflags=()
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	k8s_ldflags+=(
		"-X '${pkg}.gitVersion=${k8s_version}'"
		"-X '${pkg}.gitMajor=${k8s_major}'"
		"-X '${pkg}.gitMinor=${k8s_minor}'"
		"-X '${pkg}.gitCommit='"
		"-X '${pkg}.gitTreeState=archive'"
		"-X '${pkg}.buildDate=${build_date}'"
	)
done
# etcd's version number is a constant; only its git SHA is stamped at build
# time, and here it is likewise unknown.
etcd_ldflags="-X 'go.etcd.io/etcd/api/v3/version.GitSHA=unknown'"

start=${SECONDS}
log "building kube-apiserver ${k8s_version} and etcd ${etcd_version} (first run only; takes several minutes)"
(
	cd "${tools_dir}"
	go build "${build_flags[@]}" -ldflags "-s -w ${k8s_ldflags[*]}" \
		-o "${tmp}/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
	log "kube-apiserver built after $((SECONDS - start))s"
	go build "${build_flags[@]}" -ldflags "-s -w ${etcd_ldflags}" \
		-o "${tmp}/etcd" go.etcd.io/etcd/server/v3
) >&2

"${tmp}/kube-apiserver" --version >&2
"${tmp}/etcd" --version >&2
chmod 0755 "${tmp}" # mktemp made it private

if ! mv -T "${tmp}" "${dest}" 2>/dev/null; then
	# Another run finished first; its result is just as good.
	have_binaries "${dest}" || {
		log "cannot move the build to ${dest}"
		exit 1
	}
fi
log "built in $((SECONDS - start))s"
printf '%s\n' "${dest}"
