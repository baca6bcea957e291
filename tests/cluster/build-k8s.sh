#!/usr/bin/env bash
# Builds the Kubernetes components (and etcd, kubectl, helm) from Go modules into
# the cache, keyed by version: a second run with the same versions builds nothing.
#   KDP_CACHE      cache root (default ~/.cache/kube-datapipeline)
#   K8S_VERSION    k8s.io/kubernetes release (default below)
#   HELM_VERSION   helm.sh/helm/v3 release (default below)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S_VERSION=${K8S_VERSION:-v1.34.4}
HELM_VERSION=${HELM_VERSION:-v3.19.4}
cache=${KDP_CACHE:-$HOME/.cache/kube-datapipeline}
k8s_out=$cache/k8s-$K8S_VERSION
helm_out=$cache/helm-$HELM_VERSION
src_sum=$(sha256sum "$here/k8sbin/main.go" | cut -c1-12)
export GOFLAGS=${GOFLAGS:--mod=mod} GOTOOLCHAIN=local CGO_ENABLED=0

if [ ! -x "$k8s_out/bin/kdp-k8s" ] || [ "$(cat "$k8s_out/src.sum" 2>/dev/null)" != "$src_sum" ]; then
  echo "building Kubernetes $K8S_VERSION components into $k8s_out (cold: ~15 min on 2 cores)" >&2
  work=$k8s_out/src
  rm -rf "$work" && mkdir -p "$work" "$k8s_out/bin"
  cp "$here/k8sbin/main.go" "$work/"
  staging=${K8S_VERSION/v1./v0.}
  (
    cd "$work"
    go mod init kdp-k8s >/dev/null 2>&1
    go mod download k8s.io/kubernetes@"$K8S_VERSION"
    kdir=$(go mod download -json k8s.io/kubernetes@"$K8S_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them
    # with local paths; point each at its published release instead.
    for m in $(sed -n '/^replace (/,/^)/p' "$kdir/go.mod" | awk '/=>/{print $1}'); do
      go mod edit -replace "$m=$m@$staging"
    done
    go mod edit -require k8s.io/kubernetes@"$K8S_VERSION"
    go mod tidy >/dev/null
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ldflags="$ldflags -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    go build -p 2 -trimpath -ldflags "$ldflags" -o "$k8s_out/bin/kdp-k8s" .
  )
  for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    ln -sf kdp-k8s "$k8s_out/bin/$c"
  done
  echo "$src_sum" > "$k8s_out/src.sum"
  rm -rf "$work"
fi

if [ ! -x "$helm_out/bin/helm" ]; then
  echo "building helm $HELM_VERSION into $helm_out" >&2
  mkdir -p "$helm_out/bin"
  GOBIN=$helm_out/bin go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" helm.sh/helm/v3/cmd/helm@"$HELM_VERSION"
fi
echo "$k8s_out/bin:$helm_out/bin"
