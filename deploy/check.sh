#!/usr/bin/env bash
# Checks the deployment files with no cluster, no Docker engine and no
# network beyond the Go module proxy (.ci/run calls it):
#
#   - the Helm chart: `helm lint --strict` and `helm template` with each
#     values file in deploy/helm/keycard/ci/, the rendered manifests
#     validated by kubeconform (strict) against Kubernetes JSON schemas made
#     here from the OpenAPI document of the k8s.io/kubernetes module, the
#     gateway's ConfigMap parsed by the gateway's own parser, and renderings
#     the chart must refuse;
#   - deploy/compose.yaml: loaded and checked by compose-go (what `docker
#     compose config` runs; the docker client here has no compose plugin,
#     and building one would bring the whole of docker/compose), plus its
#     builds against deploy/Dockerfile;
#   - every KEYCARD_* variable the chart and the compose file set is one
#     that keycard reads (a renamed flag would otherwise be ignored);
#   - the tests of the checkers themselves (deploy/check, a Go module of its
#     own, so the main module gains none of these dependencies).
#
# Tools are built from the module proxy at pinned versions, once per machine
# (helm takes several minutes to build the first time).
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION=v4.3.2
KUBECONFORM_VERSION=v0.8.0
# The Kubernetes release whose API the manifests are checked against: the
# same as the client libraries helm v4.3.2 is built with (k8s.io/* v0.37.2).
KUBERNETES_VERSION=v1.37.2

export PATH="$(go env GOPATH)/bin:$PATH"
chart=deploy/helm/keycard
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# installed BINARY MODULE VERSION: whether BINARY on PATH was built from
# MODULE at VERSION (go install records it in the binary).
installed() {
	local bin
	bin=$(command -v "$1" 2>/dev/null) || return 1
	go version -m "$bin" 2>/dev/null | grep -qE "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$3([[:space:]]|$)"
}
if ! installed helm helm.sh/helm/v4 "$HELM_VERSION"; then
	echo "== installing helm $HELM_VERSION"
	go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
fi
if ! installed kubeconform github.com/yannh/kubeconform "$KUBECONFORM_VERSION"; then
	echo "== installing kubeconform $KUBECONFORM_VERSION"
	go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION"
fi

echo "== deploy/check: the checkers' tests, and their build"
# -mod=mod: the gateway check builds against this repository's own
# internal/gateway (replace ../..), so a dependency the main module adds
# later is recorded in deploy/check/go.sum here rather than failing the run.
(
	cd deploy/check
	GOFLAGS="$(go env GOFLAGS) -mod=mod"
	export GOFLAGS
	go vet ./...
	if command -v staticcheck >/dev/null; then staticcheck ./...; fi
	go test ./...
	go build -o "$work/bin/" ./k8sschema ./composecheck ./gatewayconfig
)

echo "== Kubernetes $KUBERNETES_VERSION JSON schemas, from the k8s.io/kubernetes module's OpenAPI document"
k8sdir=$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
if [ -z "$k8sdir" ] || [ ! -f "$k8sdir/api/openapi-spec/swagger.json" ]; then
	echo "no api/openapi-spec/swagger.json in k8s.io/kubernetes@$KUBERNETES_VERSION" >&2
	exit 1
fi
"$work/bin/k8sschema" -swagger "$k8sdir/api/openapi-spec/swagger.json" -out "$work/schemas"
schemas="$work/schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json"

echo "== keycard's settings (KEYCARD_* variables)"
go build -o "$work/keycard" ./cmd/keycard
{
	"$work/keycard" serve -h 2>&1 | sed -n 's/^  -\([a-z0-9-]*\).*/\1/p' |
		tr 'a-z-' 'A-Z_' | sed 's/^/KEYCARD_/'
	echo KEYCARD_MASTER_KEY # read by serve besides --master-key-file
} | sort -u >"$work/known-env"
if [ "$(wc -l <"$work/known-env")" -lt 20 ]; then
	echo "could not read keycard serve's flags:" >&2
	cat "$work/known-env" >&2
	exit 1
fi
# check_env FILE…: every KEYCARD_ variable set in the files is known.
check_env() {
	local unknown
	unknown=$(grep -ohE '\bKEYCARD_[A-Z0-9_]+' "$@" | sort -u | comm -23 - "$work/known-env")
	if [ -n "$unknown" ]; then
		echo "variables keycard does not read, in $*:" >&2
		echo "$unknown" >&2
		return 1
	fi
}

echo "== helm $HELM_VERSION: lint, template, kubeconform $KUBECONFORM_VERSION"
for values in "$chart"/ci/*.yaml; do
	name=$(basename "$values" .yaml)
	echo "-- $name"
	helm lint --strict "$chart" -f "$values"
	helm template keycard "$chart" -f "$values" --namespace keycard >"$work/$name.yaml"
	kubeconform -strict -summary -schema-location "$schemas" "$work/$name.yaml"
	check_env "$work/$name.yaml"
	# The gateway's ConfigMap, through the gateway's own parser.
	"$work/bin/gatewayconfig" <"$work/$name.yaml"
done
# None when the gateway is off, one when it is on.
"$work/bin/gatewayconfig" -want 0 <"$work/minimal-values.yaml" >/dev/null
"$work/bin/gatewayconfig" -want 1 <"$work/gateway-values.yaml" >/dev/null

# must_refuse MESSAGE HELM-ARGS…: the chart refuses to render, saying MESSAGE.
must_refuse() {
	local want=$1 out
	shift
	if out=$(helm template keycard "$chart" "$@" 2>&1); then
		echo "helm template $* rendered; want a refusal with: $want" >&2
		return 1
	fi
	if ! grep -qF -- "$want" <<<"$out"; then
		echo "helm template $* refused, but without \"$want\":" >&2
		echo "$out" >&2
		return 1
	fi
}
echo "-- refusals"
base=(-f "$chart/ci/minimal-values.yaml")
must_refuse "auth.issuer is required"
must_refuse "must be an https:// URL" "${base[@]}" --set auth.issuer=http://auth.example.com
must_refuse "auth.masterKey: give existingSecret or value, not both" "${base[@]}" --set auth.masterKey.value=x
must_refuse "auth.store.url must be a postgres://" -f "$chart/ci/full-values.yaml" --set auth.store.url=mysql://db/keycard
must_refuse "development mode has no place" "${base[@]}" --set auth.settings.dev=true
must_refuse "auth.mail.from is required" "${base[@]}" --set auth.mail.smtpUrl=smtp://smtp.example.com:587
must_refuse "auth.mail.smtpUrl must be an smtp://" "${base[@]}" --set auth.mail.smtpUrl=http://smtp.example.com --set auth.mail.from=a@example.com
must_refuse "auth.settings.smtp-url is set by the chart" "${base[@]}" --set auth.settings.smtp-url=smtp://x
must_refuse "auth.settings.store is set by the chart" "${base[@]}" --set auth.settings.store=postgres://x
must_refuse "gateway.client.id is required" "${base[@]}" --set gateway.enabled=true
must_refuse "gateway.client: give existingSecret (recommended) or secret" "${base[@]}" --set gateway.enabled=true --set gateway.client.id=gw
must_refuse "gateway.config.routes is required" "${base[@]}" --set gateway.enabled=true --set gateway.client.id=gw --set gateway.client.existingSecret=gw
must_refuse "gateway.config.listen is set by the chart" -f "$chart/ci/full-values.yaml" --set gateway.config.listen=0.0.0.0:1
must_refuse "auth.ingress.host is required" "${base[@]}" --set auth.ingress.enabled=true

echo "-- gateway pods roll for start-only keys, not for what the gateway reloads"
restart_sum() {
	helm template keycard "$chart" -f "$chart/ci/gateway-values.yaml" "$@" \
		--show-only templates/gateway-deployment.yaml | sed -n 's/^ *checksum\/restart: //p'
}
sum=$(restart_sum)
if [ -z "$sum" ] ||
	[ "$(restart_sum --set 'gateway.config.routes[0].path=/other/' --set gateway.config.audience=other \
		--set gateway.config.log_level=debug --set gateway.config.access_log=false)" != "$sum" ]; then
	echo "a change of routes, audience, log_level or access_log changes checksum/restart (it should reload in place)" >&2
	exit 1
fi
for change in gateway.config.max_feed_outage=5m gateway.issuer=https://other.example.com 'gateway.trustedProxies={10.0.0.0/8}'; do
	if [ "$(restart_sum --set "$change")" = "$sum" ]; then
		echo "--set $change leaves checksum/restart alone: the gateway would keep the old value" >&2
		exit 1
	fi
done

echo "== deploy/compose.yaml"
"$work/bin/composecheck" deploy/compose.yaml
check_env deploy/compose.yaml
sh -n deploy/compose-setup.sh

echo "deploy checks OK"
