{{/*
Names and labels.
*/}}
{{- define "keycard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "keycard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>", within the 63 characters of a name. */}}
{{- define "keycard.componentName" -}}
{{- printf "%s-%s" (include "keycard.fullname" .root | trunc (int (sub 62 (len .component)))) .component | trimSuffix "-" }}
{{- end }}

{{- define "keycard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "keycard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of a component (auth or gateway). */}}
{{- define "keycard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keycard.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "keycard.componentLabels" -}}
{{ include "keycard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "keycard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keycard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "keycard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The auth server's secrets: each from an existing Secret or from the one the
chart creates ("<fullname>-auth"). keycard.authSecret returns the name of
the Secret holding the named value; keycard.authSecretKey its key.
*/}}
{{- define "keycard.authSecretName" -}}
{{- include "keycard.componentName" (dict "root" . "component" "auth") }}
{{- end }}

{{/* Whether the chart creates the auth Secret: some value is given inline. */}}
{{- define "keycard.authSecretCreated" -}}
{{- $a := .Values.auth }}
{{- if or (and (not $a.masterKey.existingSecret) $a.masterKey.value) (and (not $a.store.existingSecret) $a.store.url) (and $a.redis.enabled (not $a.redis.existingSecret) $a.redis.url) (and (not $a.mail.existingSecret) $a.mail.smtpUrl) }}true{{ end }}
{{- end }}

{{/*
keycard.checkAuth fails the rendering, with the fix, when a required value
is missing or contradictory.
*/}}
{{- define "keycard.checkAuth" -}}
{{- $a := .Values.auth }}
{{- if not $a.issuer }}
{{- fail "auth.issuer is required: the public https:// URL of the auth server (tokens carry it as iss)" }}
{{- end }}
{{- if not (hasPrefix "https://" $a.issuer) }}
{{- fail (printf "auth.issuer %q must be an https:// URL: verifiers fetch keys and the revocation feed from it" $a.issuer) }}
{{- end }}
{{- if and $a.masterKey.existingSecret $a.masterKey.value }}
{{- fail "auth.masterKey: give existingSecret or value, not both" }}
{{- end }}
{{- if not (or $a.masterKey.existingSecret $a.masterKey.value) }}
{{- fail "auth.masterKey is required: existingSecret (a Secret holding a base64 key made with `head -c 32 /dev/urandom | base64`) or value" }}
{{- end }}
{{- if and $a.store.existingSecret $a.store.url }}
{{- fail "auth.store: give existingSecret or url, not both" }}
{{- end }}
{{- if not (or $a.store.existingSecret $a.store.url) }}
{{- fail "auth.store is required: existingSecret or url, a postgres:// URL (every instance shares the database)" }}
{{- end }}
{{- if and $a.store.url (not (or (hasPrefix "postgres://" $a.store.url) (hasPrefix "postgresql://" $a.store.url))) }}
{{- fail "auth.store.url must be a postgres:// or postgresql:// URL" }}
{{- end }}
{{- if $a.redis.enabled }}
{{- if and $a.redis.existingSecret $a.redis.url }}
{{- fail "auth.redis: give existingSecret or url, not both" }}
{{- end }}
{{- if not (or $a.redis.existingSecret $a.redis.url) }}
{{- fail "auth.redis.enabled needs existingSecret or url (redis:// or rediss://)" }}
{{- end }}
{{- end }}
{{- if and $a.mail.existingSecret $a.mail.smtpUrl }}
{{- fail "auth.mail: give existingSecret or smtpUrl, not both" }}
{{- end }}
{{- if and $a.mail.smtpUrl (not (or (hasPrefix "smtp://" $a.mail.smtpUrl) (hasPrefix "smtps://" $a.mail.smtpUrl))) }}
{{- fail "auth.mail.smtpUrl must be an smtp:// or smtps:// URL" }}
{{- end }}
{{- if and (or $a.mail.existingSecret $a.mail.smtpUrl) (not $a.mail.from) }}
{{- fail "auth.mail.from is required with an SMTP server: the sender address of the mail" }}
{{- end }}
{{- $owned := list "store" "redis" "master-key" "master-key-file" "issuer" "addr" "data" "behind-proxy" "trusted-proxies" "tls-cert" "tls-key" "config" "dev" "smtp-url" "mail-from" }}
{{- range $k, $_ := $a.settings }}
{{- $flag := $k | replace "_" "-" }}
{{- if has $flag $owned }}
{{- if eq $flag "dev" }}
{{- fail "auth.settings.dev: development mode has no place in a cluster (it generates a master key per pod and opens registration)" }}
{{- end }}
{{- fail (printf "auth.settings.%s is set by the chart: use the auth value of that name (see values.yaml)" $k) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
keycard.settingValue renders one setting as an environment variable's
value: a list joined by commas, a whole number without an exponent (YAML
numbers reach templates as float64), anything else as text.
*/}}
{{- define "keycard.settingValue" -}}
{{- if kindIs "slice" . }}
{{- join "," . }}
{{- else if and (kindIs "float64" .) (eq (float64 (int64 .)) .) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/*
The environment of a container that opens the store: the auth server and
the migrations Job (and so of a `kubectl exec … keycard users add` in the
auth server's pod). The master key is the auth server's only.
*/}}
{{- define "keycard.storeEnv" -}}
- name: KEYCARD_STORE
  valueFrom:
    secretKeyRef:
      name: {{ default (include "keycard.authSecretName" .) .Values.auth.store.existingSecret }}
      key: {{ ternary .Values.auth.store.existingSecretKey "store" (ne .Values.auth.store.existingSecret "") }}
{{- range $k, $v := .Values.auth.settings }}
- name: KEYCARD_{{ $k | replace "-" "_" | upper }}
  value: {{ include "keycard.settingValue" $v | quote }}
{{- end }}
{{- end }}

{{/* The master key volume (the file KEYCARD_MASTER_KEY_FILE names). */}}
{{- define "keycard.masterKeyVolume" -}}
- name: master-key
  secret:
    secretName: {{ default (include "keycard.authSecretName" .) .Values.auth.masterKey.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ ternary .Values.auth.masterKey.existingSecretKey "master-key" (ne .Values.auth.masterKey.existingSecret "") }}
        path: master-key
{{- end }}

{{/*
keycard.probe renders a probe from values, speaking HTTPS when the
component serves TLS itself.
*/}}
{{- define "keycard.probe" -}}
{{- $p := deepCopy .probe }}
{{- if and .tls $p.httpGet }}
{{- $_ := set $p.httpGet "scheme" "HTTPS" }}
{{- end }}
{{- toYaml $p }}
{{- end }}

{{/* Spread over nodes where possible, unless topologySpreadConstraints say otherwise. */}}
{{- define "keycard.topologySpread" -}}
{{- if .values.topologySpreadConstraints }}
{{- toYaml .values.topologySpreadConstraints }}
{{- else -}}
- maxSkew: 1
  topologyKey: kubernetes.io/hostname
  whenUnsatisfiable: ScheduleAnyway
  labelSelector:
    matchLabels:
      {{- include "keycard.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end }}

{{/*
keycard.checkGateway fails the rendering, with the fix, when the gateway is
on without what it needs. Every gateway template calls it, so the first
problem is reported whichever template helm renders first.
*/}}
{{- define "keycard.checkGateway" -}}
{{- $g := .Values.gateway }}
{{- if not $g.client.id }}
{{- fail "gateway.client.id is required with gateway.enabled: the client_id printed by `keycard clients add --name gateway` (docs/deploy.md)" }}
{{- end }}
{{- if and $g.client.existingSecret $g.client.secret }}
{{- fail "gateway.client: give existingSecret or secret, not both" }}
{{- end }}
{{- if not (or $g.client.existingSecret $g.client.secret) }}
{{- fail "gateway.client: give existingSecret (recommended) or secret, the client_secret printed by `keycard clients add --name gateway`" }}
{{- end }}
{{- if not $g.config.routes }}
{{- fail "gateway.config.routes is required with gateway.enabled: at least one route (docs/gateway.md)" }}
{{- end }}
{{- $owned := list "listen" "metrics_listen" "issuer" "client" "tls" "behind_proxy" "trusted_proxies" }}
{{- range $k, $_ := $g.config }}
{{- if has $k $owned }}
{{- fail (printf "gateway.config.%s is set by the chart: use the gateway value of that name (see values.yaml)" $k) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The gateway's configuration file: the chart's keys, then gateway.config.
*/}}
{{- define "keycard.gatewayConfig" -}}
{{- $g := .Values.gateway }}
{{- $cfg := deepCopy $g.config }}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int $g.port)) }}
{{- $_ := set $cfg "metrics_listen" (printf "0.0.0.0:%d" (int $g.metricsPort)) }}
{{- $_ := set $cfg "issuer" (default .Values.auth.issuer $g.issuer) }}
{{- $_ := set $cfg "client" (dict "id" $g.client.id "secret_file" "/etc/keycard/gateway-client/client-secret") }}
{{- if $g.tls.secretName }}
{{- $_ := set $cfg "tls" (dict "cert" "/etc/keycard/tls/tls.crt" "key" "/etc/keycard/tls/tls.key") }}
{{- else }}
{{- $_ := set $cfg "behind_proxy" true }}
{{- $_ := set $cfg "trusted_proxies" $g.trustedProxies }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/*
The keys of the gateway's configuration that it reads only at start: their
checksum rolls the pods when one changes. routes, audience, access_log and
log_level are reloaded in place from the mounted ConfigMap.
*/}}
{{- define "keycard.gatewayRestartChecksum" -}}
{{- $cfg := include "keycard.gatewayConfig" . | fromYaml }}
{{- omit $cfg "routes" "audience" "access_log" "log_level" | toJson | sha256sum }}
{{- end }}

{{- define "keycard.gatewayClientSecretName" -}}
{{- default (include "keycard.componentName" (dict "root" . "component" "gateway-client")) .Values.gateway.client.existingSecret }}
{{- end }}

{{/*
keycard.ingress renders the Ingress of a component (auth or gateway) to its
Service's http port.
*/}}
{{- define "keycard.ingress" -}}
{{- $in := .values.ingress }}
{{- if not $in.host }}
{{- fail (printf "%s.ingress.host is required with %s.ingress.enabled" .component .component) }}
{{- end }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "keycard.componentName" . }}
  labels:
    {{- include "keycard.componentLabels" . | nindent 4 }}
  {{- with $in.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  {{- with $in.className }}
  ingressClassName: {{ . }}
  {{- end }}
  {{- if $in.tlsSecretName }}
  tls:
    - hosts: [{{ $in.host | quote }}]
      secretName: {{ $in.tlsSecretName }}
  {{- end }}
  rules:
    - host: {{ $in.host | quote }}
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: {{ include "keycard.componentName" . }}
                port:
                  name: http
{{- end }}
