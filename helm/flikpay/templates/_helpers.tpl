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
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "flikpay.selector" -}}
app.kubernetes.io/name: {{ include "flikpay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* bankart-sim's pods (sandbox mode): a component of their own, never matched by flikpay's. */}}
{{- define "flikpay.simName" -}}
{{- printf "%s-bankart-sim" (include "flikpay.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "flikpay.simSelector" -}}
app.kubernetes.io/name: {{ include "flikpay.name" . }}-bankart-sim
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The helm test pod's labels: flikpay's NetworkPolicy lets it in. */}}
{{- define "flikpay.testSelector" -}}
app.kubernetes.io/name: {{ include "flikpay.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "flikpay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "flikpay.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository@digest when a digest is given, else repository:tag. Takes (list repo tag digest). */}}
{{- define "flikpay.imageRef" -}}
{{- $repo := index . 0 -}}{{- $tag := index . 1 -}}{{- $digest := index . 2 -}}
{{- if $digest -}}
{{- printf "%s@%s" $repo $digest -}}
{{- else -}}
{{- printf "%s:%s" $repo $tag -}}
{{- end -}}
{{- end -}}

{{- define "flikpay.image" -}}
{{- include "flikpay.imageRef" (list .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) .Values.image.digest) -}}
{{- end -}}

{{- define "flikpay.simImage" -}}
{{- $i := .Values.sandbox.image -}}
{{- include "flikpay.imageRef" (list ($i.repository | default (printf "%s-sandbox" .Values.image.repository)) ($i.tag | default .Values.image.tag | default .Chart.AppVersion) $i.digest) -}}
{{- end -}}

{{/*
The Pod Security Standard "restricted", for every pod of the chart: non-root with numeric ids,
RuntimeDefault seccomp; per container: no privilege escalation, every capability dropped, a
read-only root file system.
*/}}
{{- define "flikpay.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "flikpay.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
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
The Secrets the pods mount: the chart's own (create: true, or sandbox mode's credentials) or an
existing one. Each prints the name, or nothing when there is none.
*/}}
{{- define "flikpay.credentialsSecret" -}}
{{- if .Values.sandbox.enabled -}}
{{- include "flikpay.fullname" . }}-bankart-sandbox
{{- else if .Values.credentials.create -}}
{{- include "flikpay.fullname" . }}-bankart
{{- else -}}
{{- .Values.credentials.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "flikpay.redisSecret" -}}
{{- if .Values.redis.urlSecret.create -}}
{{- include "flikpay.fullname" . }}-redis
{{- else -}}
{{- .Values.redis.urlSecret.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "flikpay.tlsSecret" -}}
{{- if include "flikpay.grpcTls" . -}}
{{- if .Values.auth.tls.create -}}
{{- include "flikpay.fullname" . }}-grpc-tls
{{- else -}}
{{- .Values.auth.tls.existingSecret -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "flikpay.tokensSecret" -}}
{{- if eq .Values.auth.mode "token" -}}
{{- if .Values.auth.tokens.create -}}
{{- include "flikpay.fullname" . }}-caller-tokens
{{- else -}}
{{- .Values.auth.tokens.existingSecret -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The sandbox's credentials: bankart-sim's own defaults (gateway/sim/bankart_sim_main.cc, the same
scripts/run.sh gives the server). The fingerprint key must be the same on every replica and
across upgrades; in a sandbox it need not be secret, so it is derived from the release.
*/}}
{{- define "flikpay.sandboxCredentials" -}}
api-user: flikpay-sim
api-password: flikpay-sim-password
ecommerce-api-key: sim-ecommerce-key
ecommerce-shared-secret: sim-ecommerce-secret
in-person-api-key: sim-in-person-key
in-person-shared-secret: sim-in-person-secret
out-of-band-api-key: sim-out-of-band-key
out-of-band-shared-secret: sim-out-of-band-secret
payout-api-key: sim-payout-key
payout-shared-secret: sim-payout-secret
fingerprint-key: {{ printf "flikpay-sandbox/%s/%s" .Release.Namespace .Release.Name | sha256sum }}
{{- end -}}

{{/* The Bankart credential files: FLIKPAY_<FLAG>_FILE and the Secret key it reads. */}}
{{- define "flikpay.credentialKeys" -}}
API_USER: api-user
API_PASSWORD: api-password
ECOMMERCE_API_KEY: ecommerce-api-key
ECOMMERCE_SHARED_SECRET: ecommerce-shared-secret
IN_PERSON_API_KEY: in-person-api-key
IN_PERSON_SHARED_SECRET: in-person-shared-secret
OUT_OF_BAND_API_KEY: out-of-band-api-key
OUT_OF_BAND_SHARED_SECRET: out-of-band-shared-secret
PAYOUT_API_KEY: payout-api-key
PAYOUT_SHARED_SECRET: payout-shared-secret
FINGERPRINT_KEY: fingerprint-key
{{- end -}}

{{/* A duration the server reads ("1h30m", "20s", "500ms"; whole numbers) in whole seconds, rounded up. */}}
{{- define "flikpay.seconds" -}}
{{- $ms := 0 -}}
{{- range $part := regexFindAll "[0-9]+(ms|h|m|s)" (toString .) -1 -}}
{{- $n := regexFind "^[0-9]+" $part | atoi -}}
{{- $unit := regexFind "[a-z]+$" $part -}}
{{- if eq $unit "h" }}{{ $ms = add $ms (mul $n 3600000) }}
{{- else if eq $unit "m" }}{{ $ms = add $ms (mul $n 60000) }}
{{- else if eq $unit "s" }}{{ $ms = add $ms (mul $n 1000) }}
{{- else }}{{ $ms = add $ms $n }}{{ end -}}
{{- end -}}
{{- div (add $ms 999) 1000 -}}
{{- end -}}

{{/*
Every combination the chart or the server would refuse, refused at render time so a mistake
shows in `helm template` / `helm upgrade` rather than as pods that never become ready.
*/}}
{{- define "flikpay.validate" -}}
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
{{- if .Values.auth.tls.create -}}
{{- $_ := required "auth.tls.crt: the server's certificate chain (PEM) for auth.tls.create" .Values.auth.tls.crt -}}
{{- $_ := required "auth.tls.key: the server's private key (PEM) for auth.tls.create" .Values.auth.tls.key -}}
{{- if eq $mode "mtls" -}}
{{- $_ := required "auth.tls.ca: the CA(s) of callers' certificates (PEM) for auth.tls.create in mtls mode" .Values.auth.tls.ca -}}
{{- end -}}
{{- else -}}
{{- $_ := required "auth.tls.existingSecret (or auth.tls.create): the Secret with tls.crt, tls.key (and ca.crt for mtls)" .Values.auth.tls.existingSecret -}}
{{- end -}}
{{- end -}}
{{- if eq $mode "token" -}}
{{- if .Values.auth.tokens.create -}}
{{- $_ := required "auth.tokens.tokens: the token file's text for auth.tokens.create" .Values.auth.tokens.tokens -}}
{{- else -}}
{{- $_ := required "auth.tokens.existingSecret (or auth.tokens.create): the Secret with key tokens" .Values.auth.tokens.existingSecret -}}
{{- end -}}
{{- end -}}
{{- if .Values.redis.urlSecret.create -}}
{{- $_ := required "redis.urlSecret.url: the Redis URL with its credentials for redis.urlSecret.create" .Values.redis.urlSecret.url -}}
{{- end -}}
{{- if not .Values.sandbox.enabled -}}
{{- if .Values.credentials.create -}}
{{- $v := .Values.credentials.values -}}
{{- if not (and (index $v "api-user") (index $v "api-password")) -}}
{{- fail "credentials.values: api-user and api-password are required with credentials.create" -}}
{{- end -}}
{{- if and (ne $mode "insecureDev") (lt (len (toString (index $v "fingerprint-key" | default ""))) 16) -}}
{{- fail "credentials.values.fingerprint-key: at least 16 bytes (openssl rand -hex 32), the same for every replica" -}}
{{- end -}}
{{- $connectors := 0 -}}
{{- range $c := list "ecommerce" "in-person" "out-of-band" "payout" -}}
{{- $k := index $v (printf "%s-api-key" $c) -}}{{- $s := index $v (printf "%s-shared-secret" $c) -}}
{{- if and $k $s -}}{{- $connectors = add1 $connectors -}}
{{- else if or $k $s -}}{{- fail (printf "credentials.values: %s-api-key and %s-shared-secret go together" $c $c) -}}
{{- end -}}
{{- end -}}
{{- if eq $connectors 0 -}}
{{- fail "credentials.values: no Bankart connector (<kind>-api-key and <kind>-shared-secret)" -}}
{{- end -}}
{{- else -}}
{{- $_ := required "credentials.existingSecret (or credentials.create): the Secret with Bankart's credentials" .Values.credentials.existingSecret -}}
{{- end -}}
{{- end -}}
{{- if and .Values.sandbox.enabled (not .Values.sandbox.forStagingOnly) -}}
{{- fail "sandbox.enabled runs bankart-sim, a stand-in for Bankart: no real payment can be made, and anyone who reaches it can drive it. It is for staging only: set sandbox.forStagingOnly=true as well" -}}
{{- end -}}
{{- $p := .Values.ports -}}
{{- if or (eq (int $p.grpc) (int $p.callbacks)) (eq (int $p.grpc) (int $p.admin)) (eq (int $p.callbacks) (int $p.admin)) -}}
{{- fail "ports: grpc, callbacks and admin must be three different ports" -}}
{{- end -}}
{{- if and .Values.sandbox.enabled (has (int .Values.sandbox.port) (list (int $p.grpc) (int $p.callbacks) (int $p.admin))) -}}
{{- fail "sandbox.port must differ from flikpay's own ports" -}}
{{- end -}}
{{- $drain := include "flikpay.seconds" .Values.config.drainTime | int -}}
{{- $grace := int .Values.terminationGracePeriodSeconds -}}
{{- $preStop := int .Values.preStopSleepSeconds -}}
{{- if le $grace (add $drain $preStop) -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be above preStopSleepSeconds (%d) + config.drainTime (%s = %ds), or Kubernetes kills the pod before its calls have drained" $grace $preStop .Values.config.drainTime $drain) -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (not (kindIs "invalid" .Values.podDisruptionBudget.minAvailable)) (ne (toString .Values.podDisruptionBudget.minAvailable) "") (ne (toString .Values.podDisruptionBudget.maxUnavailable) "") -}}
{{- fail "podDisruptionBudget: set minAvailable or maxUnavailable, not both" -}}
{{- end -}}
{{- $pdbMin := .Values.podDisruptionBudget.minAvailable -}}
{{- $replicas := ternary .Values.autoscaling.minReplicas .Values.replicaCount .Values.autoscaling.enabled | int -}}
{{- if and .Values.podDisruptionBudget.enabled (has (kindOf $pdbMin) (list "float64" "int64" "int")) (ge (int $pdbMin) $replicas) -}}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) must be below the replicas (%d), or no node could ever be drained; lower it, use maxUnavailable, or podDisruptionBudget.enabled=false" (int $pdbMin) $replicas) -}}
{{- end -}}
{{- if and .Values.podDisruptionBudget.enabled (eq (toString $pdbMin) "100%") -}}
{{- fail "podDisruptionBudget.minAvailable 100% means no node could ever be drained; lower it or use maxUnavailable" -}}
{{- end -}}
{{- if and (not .Values.sandbox.enabled) (not (hasPrefix "https://" .Values.gateway.publicCallbackUrl)) -}}
{{- fail (printf "gateway.publicCallbackUrl (%s) must be https://: Bankart posts signed payment results there (only a staging sandbox may use http)" .Values.gateway.publicCallbackUrl) -}}
{{- end -}}
{{- if and .Values.ingress.enabled .Values.ingress.nginxAnnotations (not (contains "nginx" .Values.ingress.className)) -}}
{{- fail (printf "ingress.className %s is not ingress-nginx, so the annotations holding the proxy to the callback listener's limits would be ignored; set ingress.nginxAnnotations=false and apply the same limits (256 KiB body, 10 s timeouts) in your controller" .Values.ingress.className) -}}
{{- end -}}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) -}}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (not .Values.sandbox.enabled) (not .Values.networkPolicy.egress.gateway.cidrs) -}}
{{- fail "networkPolicy.egress.gateway.cidrs: Bankart's addresses (CIDRs) the pods may reach on networkPolicy.egress.gateway.port" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.egress.redis.to) -}}
{{- fail "networkPolicy.egress.redis.to: where Redis is (NetworkPolicy peers)" -}}
{{- end -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.tls.secretName) -}}
{{- fail "ingress.tls.secretName: the callback Ingress is served over TLS only" -}}
{{- end -}}
{{- end -}}

{{/* The gRPC probe (plaintext) or the admin port's /healthz (TLS): liveness and startup. */}}
{{- define "flikpay.liveProbeAction" -}}
{{- if include "flikpay.grpcTls" . -}}
httpGet:
  path: /healthz
  port: admin
{{- else -}}
grpc:
  port: {{ .Values.ports.grpc }}
{{- end -}}
{{- end -}}

{{- define "flikpay.readyProbeAction" -}}
{{- if include "flikpay.grpcTls" . -}}
httpGet:
  path: /readyz
  port: admin
{{- else -}}
grpc:
  port: {{ .Values.ports.grpc }}
  service: flikpay.v1.PaymentService
{{- end -}}
{{- end -}}
