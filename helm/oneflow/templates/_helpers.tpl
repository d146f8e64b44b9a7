{{/*
Names, labels, images and the TOML renderer shared by every template.
*/}}

{{- define "oneflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-wide prefix of every object name. */}}
{{- define "oneflow.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "oneflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "oneflow.labels" -}}
helm.sh/chart: {{ include "oneflow.chart" . }}
app.kubernetes.io/name: {{ include "oneflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: oneflow
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector of every pod of this release. */}}
{{- define "oneflow.releaseSelector" -}}
app.kubernetes.io/name: {{ include "oneflow.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector of one component; call with (dict "root" $ "component" "gateway"). */}}
{{- define "oneflow.selectorLabels" -}}
{{ include "oneflow.releaseSelector" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "oneflow.componentLabels" -}}
{{ include "oneflow.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
The services this release runs, as a list of dicts:
  name       component name and object suffix (gateway, auth, billing, router, mock-provider)
  key        key of its section in values (gateway, ..., mockProvider)
  binary     Cargo package / binary name
Call: include "oneflow.components" . | fromYamlArray
*/}}
{{- define "oneflow.components" -}}
- {name: gateway, key: gateway, binary: oneflow-gateway}
- {name: auth, key: auth, binary: oneflow-auth}
- {name: billing, key: billing, binary: oneflow-billing}
- {name: router, key: router, binary: oneflow-router}
{{- if .Values.mockProvider.enabled }}
- {name: mock-provider, key: mockProvider, binary: oneflow-mock-provider}
{{- end }}
{{- end -}}

{{/* Object name of a component: <fullname>-<component>. */}}
{{- define "oneflow.componentName" -}}
{{- printf "%s-%s" (include "oneflow.fullname" .root) .component -}}
{{- end -}}

{{/* In-cluster gRPC URL of an internal service. */}}
{{- define "oneflow.grpcUrl" -}}
{{- $values := index .root.Values .key -}}
{{- printf "http://%s:%d" (include "oneflow.componentName" (dict "root" .root "component" .component)) (int $values.port) -}}
{{- end -}}

{{/*
Image reference of a component: repository from image.registry and
image.repositoryPrefix (or the component's image.repository), tag from the
component, image.tag or the chart's appVersion; a digest wins over the tag.
Call with (dict "root" $ "values" $componentValues "binary" "oneflow-gateway").
*/}}
{{- define "oneflow.image" -}}
{{- $img := .root.Values.image -}}
{{- $own := .values.image | default dict -}}
{{- $repo := $own.repository | default "" -}}
{{- if not $repo -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $img.repositoryPrefix) .binary -}}
{{- if $img.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $img.registry) $repo -}}
{{- end -}}
{{- end -}}
{{- $digest := $own.digest | default "" -}}
{{- if $digest -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (toString ($own.tag | default $img.tag | default .root.Chart.AppVersion)) -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret a component reads its environment from ("" when none). */}}
{{- define "oneflow.secretName" -}}
{{- $values := index .root.Values .key -}}
{{- if $values.existingSecret -}}
{{- $values.existingSecret -}}
{{- else if include "oneflow.secretData" . | trim -}}
{{- include "oneflow.componentName" (dict "root" .root "component" .component) -}}
{{- end -}}
{{- end -}}

{{/* The Redis URL the services get: one URL, or the comma-separated list of Sentinels or Cluster seeds. */}}
{{- define "oneflow.redisUrl" -}}
{{- $r := .Values.externalRedis -}}
{{- if eq $r.mode "sentinel" -}}
{{- join "," $r.sentinel.urls -}}
{{- else if eq $r.mode "cluster" -}}
{{- join "," $r.cluster.urls -}}
{{- else -}}
{{- $r.url -}}
{{- end -}}
{{- end -}}

{{/*
Which Redis client of a component uses externalRedis, as the prefix of its
environment variables ("" when none): billing [redis], gateway
[idempotency.redis], router [cache.redis].
*/}}
{{- define "oneflow.redisEnvPrefix" -}}
{{- $r := .root.Values.externalRedis -}}
{{- if and (eq .component "billing") $r.billing -}}ONEFLOW__REDIS
{{- else if and (eq .component "gateway") $r.idempotency -}}ONEFLOW__IDEMPOTENCY__REDIS
{{- else if and (eq .component "router") $r.routerCache -}}ONEFLOW__CACHE__REDIS
{{- end -}}
{{- end -}}

{{/*
Environment variables the chart puts in a component's Secret, from
externalDatabase, externalRedis, auth.jwtSecret and router.providerKeys.
Each key is the variable's name (ONEFLOW__SECTION__KEY); empty values are left out.
*/}}
{{- define "oneflow.secretData" -}}
{{- $root := .root -}}
{{- $data := dict -}}
{{- $redisPrefix := include "oneflow.redisEnvPrefix" . -}}
{{- if $redisPrefix -}}
{{- $_ := set $data (printf "%s__URL" $redisPrefix) (include "oneflow.redisUrl" $root) -}}
{{- if eq $root.Values.externalRedis.mode "sentinel" -}}
{{- $_ := set $data (printf "%s__NODE_PASSWORD" $redisPrefix) $root.Values.externalRedis.sentinel.nodePassword -}}
{{- end -}}
{{- end -}}
{{- if eq .component "auth" -}}
{{- $_ := set $data "ONEFLOW__DATABASE__URL" $root.Values.externalDatabase.auth.url -}}
{{- $_ := set $data "ONEFLOW__JWT__SECRET" $root.Values.auth.jwtSecret -}}
{{- else if eq .component "billing" -}}
{{- $_ := set $data "ONEFLOW__DATABASE__URL" $root.Values.externalDatabase.billing.url -}}
{{- $_ := set $data "ONEFLOW__REPORTS__REPLICA_URL" $root.Values.externalDatabase.billing.reportsReplicaUrl -}}
{{- else if eq .component "router" -}}
{{- range $k, $v := $root.Values.router.providerKeys -}}
{{- $_ := set $data $k $v -}}
{{- end -}}
{{- end -}}
{{- with $root.Values.telemetry.sentry.dsn -}}
{{- $_ := set $data "ONEFLOW__TELEMETRY__SENTRY_DSN" . -}}
{{- end -}}
{{- range $k := keys $data | sortAlpha -}}
{{- $v := get $data $k -}}
{{- if $v }}
{{ $k }}: {{ $v | toString | b64enc | quote }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* redis.mode and master_name for a Redis section (nothing in single mode, the default). */}}
{{- define "oneflow.redisModeConfig" -}}
{{- $r := .Values.externalRedis -}}
{{- if ne $r.mode "single" }}
mode: {{ $r.mode | quote }}
{{- if eq $r.mode "sentinel" }}
master_name: {{ $r.sentinel.masterName | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
TOML renderer. Helm's toToml writes every number from values as a float
(1.0), which the services' integer keys refuse, so this one writes whole
numbers as integers. Scalars first, then tables, then arrays of tables.
Call with (dict "path" "" "data" $map).
*/}}
{{- define "oneflow.tomlValue" -}}
{{- $v := . -}}
{{- if kindIs "string" $v -}}
{{- $v | toJson -}}
{{- else if kindIs "bool" $v -}}
{{- $v -}}
{{- else if or (kindIs "float64" $v) (kindIs "float32" $v) (kindIs "int" $v) (kindIs "int64" $v) -}}
{{- if eq (float64 $v) (floor $v) -}}{{ int64 $v }}{{- else -}}{{ $v }}{{- end -}}
{{- else if kindIs "slice" $v -}}
[{{ range $i, $e := $v }}{{ if $i }}, {{ end }}{{ include "oneflow.tomlValue" $e }}{{ end }}]
{{- else -}}
{{- fail (printf "cannot write %v (%s) as a TOML value" $v (kindOf $v)) -}}
{{- end -}}
{{- end -}}

{{- define "oneflow.tomlIsTableArray" -}}
{{- if and (kindIs "slice" .) (gt (len .) 0) (kindIs "map" (first .)) -}}true{{- end -}}
{{- end -}}

{{- define "oneflow.toml" -}}
{{- $path := .path -}}
{{- $data := .data -}}
{{- range $k := keys $data | sortAlpha -}}
{{- $v := get $data $k -}}
{{- if not (or (kindIs "map" $v) (kindIs "invalid" $v) (include "oneflow.tomlIsTableArray" $v)) }}
{{ $k }} = {{ include "oneflow.tomlValue" $v }}
{{- end -}}
{{- end -}}
{{- range $k := keys $data | sortAlpha -}}
{{- $v := get $data $k -}}
{{- $sub := $k -}}
{{- if $path -}}{{- $sub = printf "%s.%s" $path $k -}}{{- end -}}
{{- if kindIs "map" $v }}

[{{ $sub }}]
{{- include "oneflow.toml" (dict "path" $sub "data" $v) -}}
{{- else if include "oneflow.tomlIsTableArray" $v -}}
{{- range $e := $v }}

[[{{ $sub }}]]
{{- include "oneflow.toml" (dict "path" $sub "data" $e) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The [telemetry] section every service shares. */}}
{{- define "oneflow.telemetryConfig" -}}
telemetry:
  log_level: {{ .Values.telemetry.logLevel | quote }}
  log_format: {{ .Values.telemetry.logFormat | quote }}
  sample_ratio: {{ .Values.telemetry.sampleRatio }}
  {{- with .Values.telemetry.otlpEndpoint }}
  otlp_endpoint: {{ . | quote }}
  {{- end }}
  {{- with .Values.telemetry.sentry.environment }}
  sentry_environment: {{ . | quote }}
  {{- end }}
  sentry_sample_rate: {{ .Values.telemetry.sentry.sampleRate }}
{{- end -}}

{{/*
The full configuration of a component as a dict: what the chart derives
(listen address, service URLs, telemetry, migrations) under the component's
`config` from values, which wins key by key.
*/}}
{{- define "oneflow.configData" -}}
{{- $root := .root -}}
{{- $values := index $root.Values .key -}}
{{- $base := dict -}}
{{- if eq .component "gateway" -}}
{{- $base = include "oneflow.config.gateway" $root | fromYaml -}}
{{- else if eq .component "auth" -}}
{{- $base = include "oneflow.config.auth" $root | fromYaml -}}
{{- else if eq .component "billing" -}}
{{- $base = include "oneflow.config.billing" $root | fromYaml -}}
{{- else if eq .component "router" -}}
{{- $base = include "oneflow.config.router" $root | fromYaml -}}
{{- else -}}
{{- $base = include "oneflow.config.mockProvider" $root | fromYaml -}}
{{- end -}}
{{- $merged := mergeOverwrite $base (deepCopy ($values.config | default dict)) -}}
{{- if eq .component "router" -}}
{{- /* The mock provider of this release joins the router's providers. */ -}}
{{- if $root.Values.mockProvider.enabled -}}
{{- $mock := dict "name" "mock" "kind" "openai_compatible" "base_url" (printf "http://%s:%d/v1" (include "oneflow.componentName" (dict "root" $root "component" "mock-provider")) (int $root.Values.mockProvider.port)) -}}
{{- $_ := set $merged "providers" (prepend ($merged.providers | default list) $mock) -}}
{{- end -}}
{{- end -}}
{{- toYaml $merged -}}
{{- end -}}

{{- define "oneflow.config.gateway" -}}
mode: {{ .Values.mode | quote }}
server:
  listen: {{ printf "0.0.0.0:%d" (int .Values.gateway.port) | quote }}
  shutdown_grace: {{ .Values.shutdownGrace | quote }}
auth:
  url: {{ include "oneflow.grpcUrl" (dict "root" . "key" "auth" "component" "auth") | quote }}
billing:
  url: {{ include "oneflow.grpcUrl" (dict "root" . "key" "billing" "component" "billing") | quote }}
router:
  url: {{ include "oneflow.grpcUrl" (dict "root" . "key" "router" "component" "router") | quote }}
{{- if and .Values.externalRedis.idempotency (ne .Values.externalRedis.mode "single") }}
idempotency:
  redis:
    {{- include "oneflow.redisModeConfig" . | indent 4 }}
{{- end }}
{{ include "oneflow.telemetryConfig" . }}
{{- end -}}

{{- define "oneflow.config.auth" -}}
mode: {{ .Values.mode | quote }}
auto_migrate: {{ not .Values.migrations.enabled }}
server:
  listen: {{ printf "0.0.0.0:%d" (int .Values.auth.port) | quote }}
  shutdown_grace: {{ .Values.shutdownGrace | quote }}
{{ include "oneflow.telemetryConfig" . }}
{{- end -}}

{{- define "oneflow.config.billing" -}}
auto_migrate: {{ not .Values.migrations.enabled }}
server:
  listen: {{ printf "0.0.0.0:%d" (int .Values.billing.port) | quote }}
  shutdown_grace: {{ .Values.shutdownGrace | quote }}
{{- if and .Values.externalRedis.billing (ne .Values.externalRedis.mode "single") }}
redis:
  {{- include "oneflow.redisModeConfig" . | indent 2 }}
{{- end }}
{{ include "oneflow.telemetryConfig" . }}
{{- end -}}

{{- define "oneflow.config.router" -}}
server:
  listen: {{ printf "0.0.0.0:%d" (int .Values.router.port) | quote }}
  shutdown_grace: {{ .Values.shutdownGrace | quote }}
{{- if .Values.router.capacityChecks.enabled }}
billing:
  url: {{ include "oneflow.grpcUrl" (dict "root" . "key" "billing" "component" "billing") | quote }}
  timeout: {{ .Values.router.capacityChecks.timeout | quote }}
{{- end }}
{{- if and .Values.externalRedis.routerCache (ne .Values.externalRedis.mode "single") }}
cache:
  redis:
    {{- include "oneflow.redisModeConfig" . | indent 4 }}
{{- end }}
{{ include "oneflow.telemetryConfig" . }}
{{- end -}}

{{- define "oneflow.config.mockProvider" -}}
server:
  listen: {{ printf "0.0.0.0:%d" (int .Values.mockProvider.port) | quote }}
  shutdown_grace: {{ .Values.shutdownGrace | quote }}
{{ include "oneflow.telemetryConfig" . }}
{{- end -}}

{{/* The component's TOML file. */}}
{{- define "oneflow.configToml" -}}
# Generated by the oneflow Helm chart; secrets come from the environment.
{{- include "oneflow.toml" (dict "path" "" "data" (include "oneflow.configData" . | fromYaml)) }}
{{- end -}}

{{/* Pod and container security settings shared by every workload. */}}
{{- define "oneflow.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end -}}

{{- define "oneflow.containerSecurityContext" -}}
{{- toYaml .Values.containerSecurityContext }}
{{- end -}}

{{/* NetworkPolicy egress rules to PostgreSQL, Redis and the collector (empty peers: no rule). */}}
{{- define "oneflow.egressPostgres" -}}
{{- $pg := .Values.networkPolicy.postgresql -}}
{{- if or $pg.cidrs $pg.peers }}
# PostgreSQL
- to:
    {{- range $pg.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- with $pg.peers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - {protocol: TCP, port: {{ $pg.port }}}
{{- end }}
{{- end -}}

{{- define "oneflow.egressRedis" -}}
{{- $redis := .Values.networkPolicy.redis -}}
{{- if or $redis.cidrs $redis.peers }}
# Redis
- to:
    {{- range $redis.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- with $redis.peers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    {{- range $redis.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "oneflow.egressOtel" -}}
{{- $otel := .Values.networkPolicy.otelCollector -}}
# OpenTelemetry collector (OTLP/gRPC)
- to:
    {{- range $otel.cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
    {{- with $otel.peers }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - {protocol: TCP, port: {{ $otel.port }}}
{{- end -}}
