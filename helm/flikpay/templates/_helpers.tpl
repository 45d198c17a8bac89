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
