{{- define "flikpay.name" -}}
{{- .Chart.Name -}}
{{- end -}}

{{- define "flikpay.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flikpay.labels" -}}
app.kubernetes.io/name: {{ include "flikpay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "flikpay.selector" -}}
app.kubernetes.io/name: {{ include "flikpay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* "true" when the gRPC port speaks TLS itself (mtls, or token with auth.tls.enabled). */}}
{{- define "flikpay.grpcTls" -}}
{{- if or (eq .Values.auth.mode "mtls") (and (eq .Values.auth.mode "token") .Values.auth.tls.enabled) -}}
true
{{- end -}}
{{- end -}}

{{/*
"true" when the chart makes the policy ConfigMap from auth.policy. insecureDev skips a policy
that names no caller (the default), so a development run keeps the server's own policy for it,
everything allowed to caller "dev", rather than refusing every call.
*/}}
{{- define "flikpay.ownPolicy" -}}
{{- $policy := .Values.auth.policy -}}
{{- if and $policy (not .Values.auth.policyExistingConfigMap) -}}
{{- if or (ne .Values.auth.mode "insecureDev") $policy.callers -}}
true
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The ConfigMap holding policy.json, or nothing when there is no policy (insecureDev only). */}}
{{- define "flikpay.policyConfigMap" -}}
{{- if .Values.auth.policyExistingConfigMap -}}
{{- .Values.auth.policyExistingConfigMap -}}
{{- else if include "flikpay.ownPolicy" . -}}
{{- include "flikpay.fullname" . }}-caller-policy
{{- end -}}
{{- end -}}

{{/*
The same combinations flikpay-server refuses at start (exit 2), refused here at render time so a
mistake shows in `helm upgrade` rather than as pods that never become ready.
*/}}
{{- define "flikpay.validateAuth" -}}
{{- $mode := .Values.auth.mode -}}
{{- if not (has $mode (list "mtls" "token" "insecureDev")) -}}
{{- fail (printf "auth.mode must be mtls, token or insecureDev, not %q" $mode) -}}
{{- end -}}
{{- if and (eq $mode "insecureDev") (not .Values.auth.allowInsecureDev) -}}
{{- fail "auth.mode=insecureDev serves gRPC in plaintext with no caller identity (every call is caller \"dev\"); set auth.allowInsecureDev=true as well if this really is a throwaway development cluster" -}}
{{- end -}}
{{- if and (ne $mode "insecureDev") (not (include "flikpay.policyConfigMap" .)) -}}
{{- fail (printf "auth.mode=%s needs a caller policy: auth.policy or auth.policyExistingConfigMap" $mode) -}}
{{- end -}}
{{- if include "flikpay.grpcTls" . -}}
{{- $_ := required "auth.tls.existingSecret: the Secret with tls.crt, tls.key (and ca.crt for mtls)" .Values.auth.tls.existingSecret -}}
{{- end -}}
{{- if eq $mode "token" -}}
{{- $_ := required "auth.tokens.existingSecret: the Secret with key tokens" .Values.auth.tokens.existingSecret -}}
{{- end -}}
{{- end -}}
