{{/*
Named templates shared by every manifest of the chart: names, labels, images, the proxy's
config file, and the proxy sidecar container that users can include in their own pods.
*/}}

{{/* The chart name, overridable with nameOverride. */}}
{{- define "lanekeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The resource name prefix: fullnameOverride, or release name + chart name (once). */}}
{{- define "lanekeeper.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of the proxy's Deployment, Service, ConfigMap, HPA and PDB. */}}
{{- define "lanekeeper.proxy.fullname" -}}
{{- printf "%s-proxy" (include "lanekeeper.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name of the control plane's Deployment, Service and PDB. */}}
{{- define "lanekeeper.controlPlane.fullname" -}}
{{- printf "%s-control-plane" (include "lanekeeper.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* chart: name-version, as the helm.sh/chart label wants it. */}}
{{- define "lanekeeper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "lanekeeper.labels" -}}
helm.sh/chart: {{ include "lanekeeper.chart" . }}
{{ include "lanekeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select the release's pods; never change them after a release exists. */}}
{{- define "lanekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lanekeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Selector labels of the proxy pods. */}}
{{- define "lanekeeper.proxy.selectorLabels" -}}
{{ include "lanekeeper.selectorLabels" . }}
app.kubernetes.io/component: proxy
{{- end -}}

{{/* Selector labels of the control-plane pods. */}}
{{- define "lanekeeper.controlPlane.selectorLabels" -}}
{{ include "lanekeeper.selectorLabels" . }}
app.kubernetes.io/component: control-plane
{{- end -}}

{{/* The ServiceAccount the pods run as. */}}
{{- define "lanekeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lanekeeper.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
An image reference. Call with (dict "root" $ "image" .Values.image.proxy); the tag defaults
to the chart's appVersion so chart and image versions move together.
*/}}
{{- define "lanekeeper.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if .root.Values.image.registry -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .image.repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret with the database URL and tokens: existingSecret or the chart's own. */}}
{{- define "lanekeeper.secretName" -}}
{{- if .Values.controlPlane.existingSecret -}}
{{- .Values.controlPlane.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "lanekeeper.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the proxy's admin and metrics tokens. */}}
{{- define "lanekeeper.proxy.secretName" -}}
{{- .Values.proxy.existingSecret | default (printf "%s-proxy-secrets" (include "lanekeeper.fullname" .)) -}}
{{- end -}}

{{/* URL proxies use to reach the control plane inside the cluster. */}}
{{- define "lanekeeper.controlPlane.url" -}}
{{- printf "http://%s:%v" (include "lanekeeper.controlPlane.fullname" .) .Values.controlPlane.service.port -}}
{{- end -}}

{{/*
The proxy's config file (YAML). The chart sets what must agree with the pod (listen ports,
upstream, store, control plane); proxy.config adds everything else. ${NAME} references are
left for the proxy to fill from its environment when it loads the file.
*/}}
{{- define "lanekeeper.proxyConfig" -}}
{{- $upstreamUrl := .Values.proxy.upstream.url -}}
{{- if eq .Values.mode "sidecar" -}}
{{- $upstreamUrl = printf "http://127.0.0.1:%v" .Values.sidecar.backend.port -}}
{{- end -}}
{{- $upstream := dict "url" $upstreamUrl "dialect" .Values.proxy.upstream.dialect "headers" .Values.proxy.upstream.headers "timeout_ms" .Values.proxy.upstream.timeoutMs -}}
{{- $generated := dict "listen" (printf "0.0.0.0:%v" .Values.proxy.port) "admin_listen" (printf "0.0.0.0:%v" .Values.proxy.adminPort) "shutdown_grace_ms" .Values.proxy.shutdownGraceMs "admin_token" "${LANEKEEPER_ADMIN_TOKEN}" "metrics_token" "${LANEKEEPER_METRICS_TOKEN}" -}}
{{- /* Several providers (README, "Several providers") are proxy.config.upstreams, in place of
the one upstream: the proxy takes one or the other, never both. */ -}}
{{- if hasKey .Values.proxy.config "upstreams" -}}
{{- if eq .Values.mode "sidecar" -}}
{{- fail "proxy.config.upstreams is for gateway mode: in sidecar mode the proxy fronts the backend in its pod" -}}
{{- end -}}
{{- else -}}
{{- $_ := set $generated "upstream" $upstream -}}
{{- end -}}
{{- if .Values.redis.existingSecret -}}
{{- $_ := set $generated "store" (dict "redis" "${LANEKEEPER_REDIS_URL}" "key_prefix" .Values.redis.keyPrefix) -}}
{{- else if .Values.redis.url -}}
{{- $_ := set $generated "store" (dict "redis" .Values.redis.url "key_prefix" .Values.redis.keyPrefix) -}}
{{- end -}}
{{- if .Values.controlPlane.enabled -}}
{{- $_ := set $generated "control_plane" (dict "url" (include "lanekeeper.controlPlane.url" .) "token" "${LANEKEEPER_PROXY_TOKEN}" "snapshot_path" "/var/lib/lanekeeper/snapshot.json") -}}
{{- end -}}
{{- toYaml (mergeOverwrite (deepCopy .Values.proxy.config) $generated) -}}
{{- end -}}

{{/*
The Lanekeeper proxy as a container, for this chart's Deployment and for your own pod specs.
Call with a dict:
  root:          the top-level context ($ or .)
  values:        Lanekeeper values (default: root.Values); from a parent chart, .Values.lanekeeper
  secretName:    Secret holding the proxy token (default: this chart's; omit when controlPlane.enabled=false)
  proxySecretName: Secret holding the admin and metrics tokens (default: this chart's proxy Secret)
Mount the volumes from "lanekeeper.sidecarVolumes" in the same pod. From a parent chart, set
lanekeeper.image.proxy.tag explicitly: an empty tag defaults to the calling chart's appVersion.
Example:
  containers:
    - name: app
      image: my-app
    {{- include "lanekeeper.sidecarContainer" (dict "root" . "values" .Values.lanekeeper) | nindent 4 }}
*/}}
{{- define "lanekeeper.sidecarContainer" -}}
{{- $v := .values | default .root.Values -}}
{{- /* From a parent chart .root is the parent's context: this chart's objects are named for
this chart, not the parent (its Secrets were looked for as <release>-<parent>-secrets). */ -}}
{{- $chart := .root.Chart -}}
{{- if .values }}{{ $chart = dict "Name" "lanekeeper" }}{{ end -}}
{{- $own := include "lanekeeper.fullname" (dict "Values" $v "Release" .root.Release "Chart" $chart) -}}
{{- $cpSecret := .secretName | default $v.controlPlane.existingSecret | default (printf "%s-secrets" $own) -}}
{{- $proxySecret := .proxySecretName | default $v.proxy.existingSecret | default (printf "%s-proxy-secrets" $own) -}}
{{- /* One Secret for both, with the default key names, gave the proxy (facing the internet,
in the app's pod) the control plane's admin token: admin rights over every tenant. */ -}}
{{- if and $v.controlPlane.enabled (eq $cpSecret $proxySecret) }}
{{- $cpAdmin := $v.controlPlane.secretKeys.adminToken }}
{{- if or (eq $v.proxy.secretKeys.adminToken $cpAdmin) (eq $v.proxy.secretKeys.metricsToken $cpAdmin) }}
{{- fail (printf "proxy.secretKeys names %q, the control plane's admin token in Secret %s: give the proxy keys of its own (e.g. proxy-admin-token), or it would hold admin rights over every tenant" $cpAdmin $proxySecret) }}
{{- end }}
{{- end }}
{{- $proxyImage := $v.image.proxy -}}
{{- $tag := default .root.Chart.AppVersion $proxyImage.tag -}}
{{- $repo := $proxyImage.repository -}}
{{- if $v.image.registry }}{{ $repo = printf "%s/%s" $v.image.registry $repo }}{{ end -}}
- name: lanekeeper-proxy
  image: {{ printf "%s:%s" $repo $tag | quote }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args: ["node", "proxy/bin/lanekeeper.js", "proxy", "--config", "/etc/lanekeeper/config.yaml"]
  ports:
    - name: http
      containerPort: {{ $v.proxy.port }}
      protocol: TCP
    - name: admin
      containerPort: {{ $v.proxy.adminPort }}
      protocol: TCP
  env:
    {{- if $v.controlPlane.enabled }}
    - name: LANEKEEPER_PROXY_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ $cpSecret }}
          key: {{ $v.controlPlane.secretKeys.proxyToken }}
    {{- end }}
    - name: LANEKEEPER_ADMIN_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ $proxySecret }}
          key: {{ $v.proxy.secretKeys.adminToken }}
    - name: LANEKEEPER_METRICS_TOKEN
      valueFrom:
        secretKeyRef:
          name: {{ $proxySecret }}
          key: {{ $v.proxy.secretKeys.metricsToken }}
    {{- if $v.redis.existingSecret }}
    - name: LANEKEEPER_REDIS_URL
      valueFrom:
        secretKeyRef:
          name: {{ $v.redis.existingSecret }}
          key: {{ $v.redis.secretKey }}
    {{- end }}
    {{- with $v.proxy.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.proxy.readinessProbe }}
  readinessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.proxy.livenessProbe }}
  livenessProbe:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $v.proxy.preStopSleepSeconds }}
  lifecycle:
    # Keep serving while the endpoint is removed from Services, then SIGTERM starts the drain.
    preStop:
      exec:
        command: ["sleep", "{{ $v.proxy.preStopSleepSeconds }}"]
  {{- end }}
  {{- with $v.proxy.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $v.proxy.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: lanekeeper-config
      mountPath: /etc/lanekeeper
      readOnly: true
    - name: lanekeeper-state
      mountPath: /var/lib/lanekeeper
{{- end -}}

{{/*
The volumes the sidecar container mounts. Call with (dict "configMapName" NAME); NAME is the
proxy ConfigMap of a release of this chart (NOTES.txt prints it).
*/}}
{{- define "lanekeeper.sidecarVolumes" -}}
- name: lanekeeper-config
  configMap:
    name: {{ .configMapName }}
- name: lanekeeper-state
  emptyDir: {}
{{- end -}}
