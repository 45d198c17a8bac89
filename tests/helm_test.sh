#!/usr/bin/env bash
# helm/flikpay with the real helm: `helm lint --strict`, then `helm template` for the defaults,
# every optional feature on, sandbox mode and insecureDev, with the rendered manifests checked in
# Python (PyYAML): the restricted Pod Security Standard on every pod, probes of the right kind on
# the right port per mode, no secret in a ConfigMap or in the environment, ports agreeing from the
# server's --*_addr variables through containers to Services, an Ingress that routes only the
# callback path with the listener's own limits, checksum annotations, and values the chart must
# refuse. The chart is also checked against the code it deploys (server/flags.cc, server/main.cc,
# server/http_server.h, gateway/sim/bankart_sim_main.cc), and broken on purpose in a copy to prove
# that each kind of check can fail.
set -euo pipefail
root=${1:?usage: helm_test.sh SOURCE_DIR}
cd "$root"
fail() { echo "FAIL: $*" >&2; exit 1; }

helm=""
if command -v go >/dev/null 2>&1 && [ -x "$(go env GOPATH)/bin/helm" ]; then
  helm="$(go env GOPATH)/bin/helm"
elif command -v helm >/dev/null 2>&1; then
  helm=$(command -v helm)
fi
[ -n "$helm" ] || fail "helm not found (scripts/install-deps.sh installs it into \$(go env GOPATH)/bin)"
python3 -c 'import yaml' 2>/dev/null || fail "python3 with PyYAML needed (Debian: python3-yaml)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# No kube config, no repositories: helm must not reach for anything.
export HELM_CACHE_HOME="$work/helm-cache" HELM_CONFIG_HOME="$work/helm-config"
export HELM_DATA_HOME="$work/helm-data" KUBECONFIG="$work/no-kubeconfig"

# ---- the cases -----------------------------------------------------------------------------------
cat >"$work/features.yaml" <<'EOF'
replicaCount: 4
image:
  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
ports: {grpc: 7001, callbacks: 7002, admin: 7003}
auth:
  mode: token
  tls: {enabled: true, create: true, crt: "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n", key: "-----BEGIN PRIVATE KEY-----\nMIIEfakeprivatekeymaterial\n-----END PRIVATE KEY-----\n"}
  tokens: {create: true, tokens: "spiffe://example.org/ns/shop/sa/shop sha256:8a2b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a\n"}
  policy:
    callers:
      "spiffe://example.org/ns/shop/sa/shop":
        rpcs: [GetStatus]
redis:
  urlSecret: {create: true, url: "redis://flikpay:redis-pass-0f3e9a@redis.data.svc:6379/0"}
credentials:
  create: true
  values:
    api-user: bankart-user-7c1d
    api-password: bankart-password-94be
    ecommerce-api-key: ecom-key-51aa
    ecommerce-shared-secret: ecom-secret-c3f0
    payout-api-key: payout-key-77e2
    payout-shared-secret: payout-secret-19d4
    fingerprint-key: fingerprint-key-2b8f6d0e4a
autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 9}
podDisruptionBudget: {minAvailable: null, maxUnavailable: 1}
networkPolicy:
  enabled: true
  egress:
    gateway: {cidrs: ["192.0.2.0/24"], port: 443}
serviceMonitor: {enabled: true, labels: {release: prometheus}}
ingress:
  limitRps: 20
EOF
cat >"$work/sandbox.yaml" <<'EOF'
auth: {mode: token, tokens: {create: true, tokens: "shop sha256:8a2b1f0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a\n"}}
sandbox: {enabled: true, forStagingOnly: true, timeScale: 0.01}
networkPolicy:
  enabled: true
EOF
cat >"$work/sentinel.yaml" <<'EOF'
redis:
  url: redis-sentinel://redis-sentinel-0.redis:26379,redis-sentinel-1.redis:26379/flikpay/2
  minReplicaAcks: 2
  replicaAckTimeout: 500ms
networkPolicy:
  enabled: true
  egress:
    gateway: {cidrs: ["192.0.2.0/24"], port: 443}
EOF
# The Sentinel URL with its passwords in the chart-made Secret: the sentinels, the master and the
# Sentinel password (an unescaped '@' in it) are in that URL only.
cat >"$work/sentinelsecret.yaml" <<'EOF'
redis:
  urlSecret:
    create: true
    url: "redis-sentinel://flikpay:redis-pass-6d2a@redis-sentinel-0.redis:26379,redis-sentinel-1.redis:26379/flikpay/0?sentinel_password=sentinel-pass-@e41b"
networkPolicy:
  enabled: true
  egress:
    gateway: {cidrs: ["192.0.2.0/24"], port: 443}
EOF
cat >"$work/insecure.yaml" <<'EOF'
auth: {mode: insecureDev, allowInsecureDev: true}
ingress: {enabled: false}
EOF

"$helm" lint --strict helm/flikpay >"$work/lint.out" 2>&1 || { cat "$work/lint.out"; fail "helm lint --strict (defaults)"; }
for case in features sandbox insecure sentinel sentinelsecret; do
  "$helm" lint --strict helm/flikpay -f "$work/$case.yaml" >"$work/lint.out" 2>&1 ||
    { cat "$work/lint.out"; fail "helm lint --strict ($case)"; }
done

# render CHART CASE [helm args...]: the manifests, and NOTES.txt (which `helm template` leaves out)
# rendered through tpl in a copy of the chart.
render() {
  local chart=$1 case=$2
  shift 2
  "$helm" template rel "$chart" --namespace pay "$@" >"$work/$case.rendered" 2>"$work/$case.err" ||
    { cat "$work/$case.err"; return 1; }
  rm -rf "$work/notes-chart"
  cp -r "$chart" "$work/notes-chart"
  cp "$chart/templates/NOTES.txt" "$work/notes-chart/NOTES.copy"
  printf '%s\n' 'notes: {{ tpl (.Files.Get "NOTES.copy") . | quote }}' \
    >"$work/notes-chart/templates/zz-notes.yaml"
  "$helm" template rel "$work/notes-chart" --namespace pay "$@" \
    --show-only templates/zz-notes.yaml >"$work/$case.notes"
}

check() {
  python3 - "$root" "$@" <<'PY'
import base64, hashlib, json, re, sys, yaml

root, case, rendered, notes_file = sys.argv[1:5]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
notes = yaml.safe_load(open(notes_file))["notes"]
errors = []
def check(cond, what):
    if not cond:
        errors.append(what)
def src(path):
    return open(f"{root}/{path}").read()
def kinds(kind):
    return [d for d in docs if d["kind"] == kind]
def named(kind, suffix):
    found = [d for d in kinds(kind) if d["metadata"]["name"].endswith(suffix)]
    return found[0] if found else None

# ---- what the code says ------------------------------------------------------------------------
flags = set(re.findall(r"ABSL_FLAG\(\s*[^,]+,\s*(\w+)", src("server/flags.cc")))
sim_main = src("gateway/sim/bankart_sim_main.cc")
sim_flags = set(re.findall(r"ABSL_FLAG\(\s*[^,]+?,\s*(\w+)", sim_main))
for f in ("grpc_addr", "callback_addr", "admin_addr", "gateway_url", "gateway_is_standin", "drain_time"):
    check(f in flags, f"server/flags.cc has no --{f}")
main_cc = src("server/main.cc")
check('SetServingStatus("flikpay.v1.PaymentService"' in main_cc and "ReadinessWatch" in main_cc,
      "server/main.cc no longer sets the health service flikpay.v1.PaymentService from the "
      "readiness watch the gRPC readiness probe asks for")
check("health->SetServingStatus(true);" in main_cc,
      "server/main.cc no longer sets the server's own health (\"\") the liveness probe asks for")
listeners = src("server/http_listeners.cc")
for path in ("/healthz", "/readyz", "/metrics", "/callbacks/bankart"):
    check(f'"{path}"' in listeners, f"server/http_listeners.cc has no route {path}")
check(re.search(r'"/readyz".{0,200}ready\(\)', listeners, re.S) is not None,
      "/readyz no longer follows ready() (Redis): readiness must")
hdr = src("server/http_server.h")
def limit(name):
    m = re.search(rf"\b{name}\s*=\s*([^;]+);", hdr)
    return m.group(1).strip() if m else None
def seconds(expr):
    m = re.fullmatch(r"absl::Seconds\((\d+)\)", expr or "")
    return int(m.group(1)) if m else None
body_expr = limit("max_body_bytes")
max_body = eval(body_expr, {}) if body_expr and re.fullmatch(r"[\d\s*<]+", body_expr) else None
deadline, idle, write = (seconds(limit(n)) for n in ("request_deadline", "idle_timeout", "write_timeout"))
check(None not in (max_body, deadline, idle, write), "server/http_server.h: listener limits not found")
check(re.search(r"CallbackListenerOptions\(\)\s*\{\s*return HttpListenerOptions\(\);\s*\}",
                src("server/http_server.cc")) is not None,
      "CallbackListenerOptions() is no longer the defaults in http_server.h: read its limits instead")

# ---- the pods ----------------------------------------------------------------------------------
deployments = kinds("Deployment")
flikpay = named("Deployment", "-flikpay")
check(flikpay is not None, "no flikpay Deployment")
hooks = [d for d in kinds("Pod") if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
check(len(hooks) == 1, "exactly one helm test Pod (helm.sh/hook: test)")
pods = [(d["metadata"]["name"], d["spec"]["template"]["spec"], d["spec"]["template"]["metadata"])
        for d in deployments] + [(d["metadata"]["name"], d["spec"], d["metadata"]) for d in hooks]
allowed_volumes = {"configMap", "secret", "emptyDir", "projected", "downwardAPI", "csi",
                   "persistentVolumeClaim", "ephemeral"}

# Kubernetes' "restricted" Pod Security Standard, field by field.
for name, spec, _ in pods:
    psc = spec.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot")
    for f in ("runAsUser", "runAsGroup", "fsGroup"):
        check(isinstance(psc.get(f), int) and psc.get(f) > 0, f"{name}: pod {f} numeric, not root")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: pod seccomp RuntimeDefault")
    check(spec.get("automountServiceAccountToken") is False, f"{name}: automountServiceAccountToken false")
    for h in ("hostNetwork", "hostPID", "hostIPC"):
        check(not spec.get(h), f"{name}: {h}")
    for v in spec.get("volumes", []):
        check(set(v) - {"name"} <= allowed_volumes, f"{name}: volume {v['name']} of a restricted type")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        sc, cn = c.get("securityContext", {}), f"{name}/{c['name']}"
        check(sc.get("allowPrivilegeEscalation") is False, f"{cn}: allowPrivilegeEscalation false")
        check(sc.get("readOnlyRootFilesystem") is True, f"{cn}: readOnlyRootFilesystem true")
        check(sc.get("privileged") in (None, False), f"{cn}: not privileged")
        check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{cn}: capabilities drop ALL")
        check(not sc.get("capabilities", {}).get("add"), f"{cn}: no capabilities added")
        check(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{cn}: runAsNonRoot")
        check(sc.get("runAsUser", psc.get("runAsUser")) not in (None, 0), f"{cn}: runAsUser not root")
        check(sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") == "RuntimeDefault",
              f"{cn}: seccomp RuntimeDefault")
        check(all("hostPort" not in p for p in c.get("ports", [])), f"{cn}: no hostPort")

# The servers write only to $TMPDIR: an emptyDir in memory, of bounded size, at /tmp.
for d in deployments:
    spec = d["spec"]["template"]["spec"]
    c = spec["containers"][0]
    name = d["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    check(env.get("TMPDIR") == "/tmp", f"{name}: TMPDIR=/tmp")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    vol = next((v for v in spec.get("volumes", []) if v["name"] == mounts.get("/tmp")), None)
    check(vol is not None and vol.get("emptyDir", {}).get("medium") == "Memory"
          and vol["emptyDir"].get("sizeLimit"), f"{name}: /tmp is an emptyDir, medium Memory, sizeLimit")
    sa = spec.get("serviceAccountName")
    check(any(s["metadata"]["name"] == sa and s.get("automountServiceAccountToken") is False
              for s in kinds("ServiceAccount")), f"{name}: its ServiceAccount {sa} made here, without a token")

# ---- the server's configuration --------------------------------------------------------------
spec = flikpay["spec"]["template"]["spec"]
server = spec["containers"][0]
env = {e["name"]: e.get("value") for e in server["env"]}
for var in env:
    if var.startswith("FLIKPAY_"):
        flag = var[len("FLIKPAY_"):].lower()
        flag = flag[:-len("_file")] if flag.endswith("_file") and flag[:-len("_file")] in flags else flag
        check(flag in flags, f"{var} names no flag in server/flags.cc")
ports = {p["name"]: p["containerPort"] for p in server["ports"]}
for name, var in (("grpc", "FLIKPAY_GRPC_ADDR"), ("callbacks", "FLIKPAY_CALLBACK_ADDR"),
                  ("admin", "FLIKPAY_ADMIN_ADDR")):
    addr = env.get(var, "")
    check(addr.rsplit(":", 1)[-1] == str(ports.get(name)),
          f"{var}={addr} and containerPort {name}={ports.get(name)} disagree")
expected_ports = {"defaults": (50051, 8080, 9090), "features": (7001, 7002, 7003)}.get(case, (50051, 8080, 9090))
check((ports.get("grpc"), ports.get("callbacks"), ports.get("admin")) == expected_ports,
      f"container ports {ports} are not values.ports {expected_ports}")
# A setting named like a secret is a file's path (FLIKPAY_*_FILE, the TLS key, the token file).
secret_envs = [v for v in env if re.search(r"PASSWORD|SECRET|KEY|TOKEN", v) and v != "FLIKPAY_PASSWORD_MODE"
               and not str(env[v]).startswith("/")]
check(not secret_envs, f"secrets as plain environment variables: {secret_envs}")

def resolve(pod_spec, target):
    for c in pod_spec["containers"]:
        for p in c.get("ports", []):
            if target in (p.get("name"), p["containerPort"]):
                return p["containerPort"]
    return None
def pod_spec_for(selector):
    for d in deployments:
        labels = d["spec"]["template"]["metadata"]["labels"]
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            return d["spec"]["template"]["spec"]
    return None
for svc in kinds("Service"):
    ps = pod_spec_for(svc["spec"].get("selector"))
    check(ps is not None, f"Service {svc['metadata']['name']} selects no pod of the chart")
    for p in svc["spec"]["ports"] if ps else []:
        check(resolve(ps, p["targetPort"]) is not None,
              f"Service {svc['metadata']['name']} targetPort {p['targetPort']} is no container port")
svc_grpc, svc_cb, svc_admin = (named("Service", s) for s in ("-flikpay", "-callbacks", "-admin"))
check(svc_grpc and resolve(spec, svc_grpc["spec"]["ports"][0]["targetPort"]) == ports.get("grpc"),
      "the gRPC Service does not reach the gRPC port")
check(svc_cb and resolve(spec, svc_cb["spec"]["ports"][0]["targetPort"]) == ports.get("callbacks"),
      "the callbacks Service does not reach the callback port")
check(svc_admin and resolve(spec, svc_admin["spec"]["ports"][0]["targetPort"]) == ports.get("admin"),
      "the admin Service does not reach the admin port")

# ---- probes ------------------------------------------------------------------------------------
grpc_plaintext = case in ("insecure", "sandbox")
ready_probe = server.get("readinessProbe", {})
if grpc_plaintext:
    check(ready_probe.get("grpc", {}).get("port") == ports.get("grpc")
          and ready_probe["grpc"].get("service") == "flikpay.v1.PaymentService",
          "readiness: native gRPC probe on the gRPC port, service flikpay.v1.PaymentService "
          "(follows Redis)")
else:
    ready = ready_probe.get("httpGet", {})
    check("grpc" not in ready_probe and ready.get("path") == "/readyz"
          and resolve(spec, ready.get("port")) == ports.get("admin"),
          "readiness: httpGet /readyz on the admin port (gRPC has TLS)")
for kind in ("livenessProbe", "startupProbe"):
    probe = server.get(kind, {})
    if grpc_plaintext:
        check(probe.get("grpc", {}).get("port") == ports.get("grpc")
              and probe["grpc"].get("service", "") == "",
              f"{kind}: native gRPC probe on the gRPC port, service \"\" (the server, not Redis)")
    else:
        g = probe.get("httpGet", {})
        check("grpc" not in probe and g.get("path") == "/healthz"
              and resolve(spec, g.get("port")) == ports.get("admin"),
              f"{kind}: httpGet /healthz on the admin port (gRPC has TLS)")
def duration_s(text):
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)(ms|h|m|s)", text))
pre_stop = server.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", ["", "0"])
grace = spec.get("terminationGracePeriodSeconds", 30)
check(grace > duration_s(env["FLIKPAY_DRAIN_TIME"]) + int(pre_stop[-1]),
      f"terminationGracePeriodSeconds {grace} not above preStop + drain time {env['FLIKPAY_DRAIN_TIME']}")

# ---- secrets -----------------------------------------------------------------------------------
secret_values = []
for s in kinds("Secret"):
    data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
    data.update(s.get("stringData") or {})
    secret_values += [v for v in data.values() if len(v) >= 6]
for cm in kinds("ConfigMap"):
    for k, v in (cm.get("data") or {}).items():
        check(not re.search(r"password|secret|key|token", k, re.I),
              f"ConfigMap {cm['metadata']['name']} has a key named like a secret: {k}")
        for sv in secret_values:
            check(sv not in v, f"ConfigMap {cm['metadata']['name']} holds a Secret's value")
for d in deployments:
    for c in d["spec"]["template"]["spec"]["containers"]:
        for e in c.get("env", []):
            for sv in secret_values:
                check(sv not in str(e.get("value", "")), f"{d['metadata']['name']}: env {e['name']} holds a Secret's value")
mounted = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
annotations = flikpay["spec"]["template"]["metadata"].get("annotations", {})
for s in kinds("Secret"):
    check(s["metadata"]["name"] in mounted, f"Secret {s['metadata']['name']} made but not mounted")
    check(re.fullmatch(r"[0-9a-f]{64}", annotations.get("checksum/secrets", "")),
          f"Secret {s['metadata']['name']} is the chart's, but the pods carry no checksum/secrets")
for cm in kinds("ConfigMap"):
    check(re.fullmatch(r"[0-9a-f]{64}", annotations.get("checksum/caller-policy", "")),
          f"ConfigMap {cm['metadata']['name']} is the chart's, but the pods carry no checksum/caller-policy")

# ---- the Ingress: the callback path, and the listener's limits ---------------------------------
def nginx_bytes(size):
    m = re.fullmatch(r"(\d+)([kKmM]?)", str(size))
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1 << 20}[m.group(2).lower()] if m else None
for ing in kinds("Ingress"):
    n = ing["metadata"]["name"]
    check(ing["spec"].get("tls"), f"Ingress {n}: TLS")
    for rule in ing["spec"]["rules"]:
        for p in rule["http"]["paths"]:
            svc = next((s for s in kinds("Service") if s["metadata"]["name"] == p["backend"]["service"]["name"]), None)
            sp = next((x for x in svc["spec"]["ports"] if p["backend"]["service"]["port"].get("name") == x["name"]
                       or p["backend"]["service"]["port"].get("number") == x["port"]), None) if svc else None
            target = resolve(spec, sp["targetPort"]) if sp else None
            check(target == ports.get("callbacks"), f"Ingress {n} routes {p['path']} to port {target}, not the callback port")
            check(target != ports.get("admin"), f"Ingress {n} exposes the admin port")
            check(p["path"] == "/callbacks/bankart" and p["pathType"] == "Exact",
                  f"Ingress {n} routes {p['path']} ({p['pathType']}): only /callbacks/bankart, Exact")
    a = ing["metadata"].get("annotations", {})
    pre = "nginx.ingress.kubernetes.io/"
    check(nginx_bytes(a.get(pre + "proxy-body-size")) == max_body,
          f"Ingress {n}: proxy-body-size {a.get(pre + 'proxy-body-size')} is not the listener's {max_body} bytes")
    check(a.get(pre + "proxy-request-buffering") == "on", f"Ingress {n}: proxy-request-buffering on")
    check(a.get(pre + "proxy-send-timeout") == str(deadline), f"Ingress {n}: proxy-send-timeout = request deadline {deadline}")
    check(a.get(pre + "proxy-read-timeout") == str(write), f"Ingress {n}: proxy-read-timeout = write timeout {write}")
    check(a.get(pre + "proxy-connect-timeout") == str(idle), f"Ingress {n}: proxy-connect-timeout = idle timeout {idle}")

# ---- the helm test pod -------------------------------------------------------------------------
for h in hooks:
    c = h["spec"]["containers"][0]
    cmd = " ".join(c.get("command", []) + c.get("args", []))
    if grpc_plaintext:
        check("grpc.health.v1.Health/Check" in cmd and "-plaintext" in cmd and f":{ports['grpc']}" in cmd,
              "helm test: grpcurl health check on the gRPC port")
    else:
        check(re.search(rf"-admin:{ports['admin']}/readyz", cmd) is not None, "helm test: curl the admin /readyz")

# ---- NOTES: grpcurl for the auth mode ----------------------------------------------------------
for what in (" list", "grpc.health.v1.Health/Check", "flikpay.v1.PaymentService/GetStatus"):
    check(what in notes, f"NOTES: no grpcurl{what}")
grpcurl_lines = [l for l in notes.splitlines() if l.strip().startswith("grpcurl")]
check(len(grpcurl_lines) == 3, "NOTES: three grpcurl lines")
for l in grpcurl_lines:
    if case in ("defaults", "sentinel", "sentinelsecret"):
        check("-cert caller.crt" in l and "-key caller.key" in l and "-cacert" in l and "-plaintext" not in l,
              "NOTES (mtls): -cert/-key/-cacert")
    elif case == "features":
        check("authorization: Bearer" in l and "-cacert" in l and "-plaintext" not in l, "NOTES (token+TLS)")
    elif case == "sandbox":
        check("authorization: Bearer" in l and "-plaintext" in l, "NOTES (token, plaintext)")
    else:
        check("-plaintext" in l and "authorization" not in l and "-cert" not in l, "NOTES (insecureDev)")

# ---- per case ----------------------------------------------------------------------------------
pdb = kinds("PodDisruptionBudget")
hpa = kinds("HorizontalPodAutoscaler")
np = kinds("NetworkPolicy")
sm = kinds("ServiceMonitor")
spread = {t["topologyKey"]: t for t in spec.get("topologySpreadConstraints", [])}
for key in ("kubernetes.io/hostname", "topology.kubernetes.io/zone"):
    t = spread.get(key, {})
    check(t.get("whenUnsatisfiable") == "ScheduleAnyway"
          and t.get("labelSelector", {}).get("matchLabels") == flikpay["spec"]["selector"]["matchLabels"],
          f"topologySpreadConstraints over {key}, ScheduleAnyway, on the pods' labels")
check(len(pdb) == 1 and pdb[0]["spec"]["selector"]["matchLabels"] == flikpay["spec"]["selector"]["matchLabels"],
      "a PodDisruptionBudget on the pods")
if case == "defaults":
    check(flikpay["spec"].get("replicas") == 3, "replicas 3")
    check(pdb[0]["spec"].get("minAvailable") == 2, "PDB minAvailable 2")
    check(not hpa and not np and not sm and not kinds("Secret"), "defaults: no HPA, NetworkPolicy, ServiceMonitor, Secret")
    check(re.fullmatch(r"\S+:0\.1\.0", server["image"]) is not None, "defaults: the image by the chart's appVersion")
    check(server.get("grpc") is None and "FLIKPAY_GRPC_CLIENT_CA" in env, "defaults: mtls")
if case == "features":
    check("replicas" not in flikpay["spec"], "with an HPA the Deployment sets no replicas")
    check(len(hpa) == 1 and hpa[0]["apiVersion"] == "autoscaling/v2"
          and hpa[0]["spec"]["scaleTargetRef"]["name"] == flikpay["metadata"]["name"]
          and hpa[0]["spec"]["metrics"][0]["resource"]["name"] == "cpu", "an autoscaling/v2 HPA on CPU")
    check(pdb[0]["spec"].get("maxUnavailable") == 1 and "minAvailable" not in pdb[0]["spec"], "PDB maxUnavailable")
    check(server["image"].endswith("@sha256:" + "0123456789abcdef" * 4), "image by digest")
    made = {s["metadata"]["name"]: s for s in kinds("Secret")}
    for suffix, keys in (("-bankart", {"api-user", "fingerprint-key"}), ("-redis", {"url"}),
                         ("-grpc-tls", {"tls.crt", "tls.key"}), ("-caller-tokens", {"tokens"})):
        s = next((v for k, v in made.items() if k.endswith(suffix)), None)
        check(s is not None and keys <= set(s.get("data", {})), f"the chart's Secret *{suffix} with {keys}")
    check(env.get("FLIKPAY_REDIS_URL_FILE") and "FLIKPAY_REDIS_URL" not in env, "Redis URL from the Secret's file")
    check(env.get("FLIKPAY_CALLER_TOKENS") and env.get("FLIKPAY_GRPC_TLS_CERT") and "FLIKPAY_GRPC_CLIENT_CA" not in env,
          "token mode with TLS")
    check(len(np) == 1, "one NetworkPolicy")
    pol = np[0]["spec"] if np else {"ingress": [], "egress": []}
    check(set(pol.get("policyTypes", [])) == {"Ingress", "Egress"}, "NetworkPolicy: ingress and egress")
    by_port = {r["ports"][0]["port"]: r["from"] for r in pol["ingress"]}
    check(set(by_port) == {7001, 7002, 7003}, f"NetworkPolicy ingress on exactly the three ports: {set(by_port)}")
    check(any("namespaceSelector" in f and "podSelector" not in f for f in by_port.get(7001, [])),
          "NetworkPolicy: gRPC from the callers' namespaces")
    check(any("namespaceSelector" in f and "podSelector" in f for f in by_port.get(7002, [])),
          "NetworkPolicy: callbacks from the ingress controller's pods")
    check(any(f.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") == "monitoring"
              for f in by_port.get(7003, [])), "NetworkPolicy: admin from monitoring")
    eg = {(p["port"], p.get("protocol", "TCP")) for r in pol["egress"] for p in r["ports"]}
    check(eg == {(6379, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP")}, f"NetworkPolicy egress: Redis, DNS, gateway only: {eg}")
    check(any(t.get("ipBlock", {}).get("cidr") == "192.0.2.0/24" for r in pol["egress"] for t in r["to"]),
          "NetworkPolicy egress: the gateway's CIDR")
    check(len(sm) == 1 and sm[0]["apiVersion"] == "monitoring.coreos.com/v1", "a ServiceMonitor")
    ep = sm[0]["spec"]["endpoints"][0] if sm else {}
    check(ep.get("port") == "admin" and ep.get("path") == "/metrics", "ServiceMonitor: admin port, /metrics")
    sel = sm[0]["spec"]["selector"]["matchLabels"] if sm else {}
    matched = [s["metadata"]["name"] for s in kinds("Service") if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
    check(matched == [svc_admin["metadata"]["name"]], f"ServiceMonitor selects the admin Service only: {matched}")
    check(sm and sm[0]["metadata"]["labels"].get("release") == "prometheus", "ServiceMonitor labels")
if case == "sandbox":
    sim = named("Deployment", "-bankart-sim")
    check(sim is not None and sim["spec"]["replicas"] == 1, "bankart-sim: one replica")
    sc = sim["spec"]["template"]["spec"]["containers"][0]
    args = dict(a[2:].split("=", 1) for a in sc["args"])
    for a in args:
        check(a in sim_flags, f"bankart-sim has no flag --{a}")
    sim_port = sc["ports"][0]["containerPort"]
    check(args.get("listen") == f"0.0.0.0:{sim_port}", "bankart-sim listens on its container port")
    check(args.get("time_scale") == "0.01", "sandbox.timeScale reaches --time_scale")
    check(sc["command"] == ["/usr/local/bin/bankart-sim"] and "-sandbox" in sc["image"], "bankart-sim from the sandbox image")
    check(sc.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/_sim/health" and '"/_sim/health"' in src("gateway/sim/bankart_sim.cc"),
          "bankart-sim readiness on /_sim/health")
    sim_svc = named("Service", "-bankart-sim")
    check(sim_svc and resolve(sim["spec"]["template"]["spec"], sim_svc["spec"]["ports"][0]["targetPort"]) == sim_port,
          "bankart-sim's Service reaches it")
    check(env.get("FLIKPAY_GATEWAY_URL") == f"http://{sim_svc['metadata']['name']}:{sim_svc['spec']['ports'][0]['port']}/api/v3",
          f"the server's gateway is bankart-sim's Service: {env.get('FLIKPAY_GATEWAY_URL')}")
    check(env.get("FLIKPAY_GATEWAY_IS_STANDIN") == "true", "--gateway_is_standin in sandbox mode")
    check(env.get("FLIKPAY_PUBLIC_CALLBACK_URL", "").startswith(f"http://{svc_cb['metadata']['name']}.pay.svc:80/callbacks/bankart"),
          "bankart-sim calls back on the callback Service")
    # The credentials are the simulator's own defaults, read from its source.
    creds = next((s for s in kinds("Secret") if s["metadata"]["name"].endswith("-bankart-sandbox")), None)
    data = {k: base64.b64decode(v).decode() for k, v in (creds or {}).get("data", {}).items()}
    want = {"api-user": re.search(r'api_user, "([^"]+)"', sim_main).group(1),
            "api-password": re.search(r'api_password, "([^"]+)"', sim_main).group(1)}
    for kind, key, secret in re.findall(r'"(\w+)=([^:"]+):([^"]+)"', sim_main):
        want[kind.replace("_", "-") + "-api-key"] = key
        want[kind.replace("_", "-") + "-shared-secret"] = secret
    check(len(want) == 10 and all(data.get(k) == v for k, v in want.items()),
          "the sandbox Secret holds bankart-sim's own credentials")
    check(len(data.get("fingerprint-key", "")) >= 16, "the sandbox Secret has a fingerprint key")
    sim_np = named("NetworkPolicy", "-bankart-sim")
    main_np = named("NetworkPolicy", "-flikpay")
    check(sim_np is not None, "bankart-sim has a NetworkPolicy")
    check(main_np and any(r["ports"][0]["port"] == sim_port and "ipBlock" not in r["to"][0] for r in main_np["spec"]["egress"]),
          "flikpay may reach bankart-sim's pod")
if case == "defaults":
    check("FLIKPAY_MIN_REPLICA_ACKS" not in env and env.get("FLIKPAY_REPLICA_ACK_TIMEOUT") == "1s",
          "defaults: replica acknowledgements left to the URL's scheme, 1s timeout")
if case == "sentinel":
    check(env.get("FLIKPAY_REDIS_URL", "").startswith("redis-sentinel://redis-sentinel-0.redis:26379,"),
          "the Sentinel URL in FLIKPAY_REDIS_URL")
    check(env.get("FLIKPAY_MIN_REPLICA_ACKS") == "2" and env.get("FLIKPAY_REPLICA_ACK_TIMEOUT") == "500ms",
          f"redis.minReplicaAcks/replicaAckTimeout in the environment: {env.get('FLIKPAY_MIN_REPLICA_ACKS')}, "
          f"{env.get('FLIKPAY_REPLICA_ACK_TIMEOUT')}")
    pol = np[0]["spec"] if np else {"egress": []}
    eg = {(p["port"], p.get("protocol", "TCP")) for r in pol["egress"] for p in r["ports"]}
    check({(6379, "TCP"), (26379, "TCP")} <= eg, f"NetworkPolicy egress: the data nodes and the sentinels: {eg}")
if case == "sentinelsecret":
    made = next((d for d in kinds("Secret") if d["metadata"]["name"].endswith("-redis")), None)
    url = base64.b64decode(made["data"]["url"]).decode() if made else ""
    check(url.startswith("redis-sentinel://") and url.endswith("?sentinel_password=sentinel-pass-@e41b"),
          f"the chart's Secret *-redis holds the whole Sentinel URL: {url!r}")
    check(env.get("FLIKPAY_REDIS_URL_FILE") and "FLIKPAY_REDIS_URL" not in env, "Redis URL from the Secret's file")
    others = yaml.safe_dump_all([d for d in docs if d["kind"] != "Secret"])
    check("sentinel-pass-" not in others and "redis-pass-" not in others, "the passwords only in the Secret")
    pol = np[0]["spec"] if np else {"egress": []}
    eg = {(p["port"], p.get("protocol", "TCP")) for r in pol["egress"] for p in r["ports"]}
    check({(6379, "TCP"), (26379, "TCP")} <= eg,
          f"NetworkPolicy egress: the sentinels' port from the Secret's redis-sentinel:// URL: {eg}")
if case == "insecure":
    check(env.get("FLIKPAY_INSECURE_DEV") == "true", "insecureDev")
    check(not kinds("Ingress"), "ingress.enabled=false: no Ingress")

if errors:
    print(f"[{case}] " + f"\n[{case}] ".join(errors))
    sys.exit(1)
print(f"ok: {case}: {len(docs)} manifests checked")
PY
}

run_case() {  # run_case CASE [helm args...]
  local case=$1
  shift
  render helm/flikpay "$case" "$@" || fail "helm template ($case)"
  check "$case" "$work/$case.rendered" "$work/$case.notes" || fail "rendered manifests ($case)"
}
run_case defaults
run_case features -f "$work/features.yaml"
run_case sandbox -f "$work/sandbox.yaml"
run_case insecure -f "$work/insecure.yaml"
run_case sentinel -f "$work/sentinel.yaml"
run_case sentinelsecret -f "$work/sentinelsecret.yaml"

# A changed chart-made Secret or policy changes the pods' checksum (so `helm upgrade` rolls them).
annotation() {
  python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-flikpay"):
        print(d["spec"]["template"]["metadata"]["annotations"].get(sys.argv[2], ""))' "$@"
}
"$helm" template rel helm/flikpay -f "$work/features.yaml" --set credentials.values.api-password=other \
  --set 'auth.policy.callers.x.rpcs={GetStatus}' >"$work/changed.rendered"
for a in checksum/secrets checksum/caller-policy; do
  [ "$(annotation "$work/features.rendered" $a)" != "$(annotation "$work/changed.rendered" $a)" ] ||
    fail "$a did not change with what it sums"
done

# ---- values the chart must refuse, each with its reason ------------------------------------------
refuse() {  # refuse EXPECTED-MESSAGE helm-args...
  local want=$1
  shift
  if "$helm" template rel helm/flikpay "$@" >/dev/null 2>"$work/refused.err"; then
    fail "accepted: $*"
  fi
  grep -q -- "$want" "$work/refused.err" || { cat "$work/refused.err"; fail "refused for another reason than '$want': $*"; }
}
refuse 'auth.mode must be one of' --set auth.mode=bogus
refuse 'the chart sets FLIKPAY_GRPC_ADDR itself' --set config.extraEnv.FLIKPAY_GRPC_ADDR=0.0.0.0:1
refuse 'looks like a secret' --set config.extraEnv.FLIKPAY_API_PASSWORD=hunter2
refuse 'replicaCount: Must be greater than or equal to 1' --set replicaCount=-1
refuse 'config.recordCacheSize needs config.changeNotices' --set config.recordCacheSize=100000
refuse 'a maintenance run' --set config.extraEnv.FLIKPAY_DROP_CHANGE_NOTICES=true
refuse 'config.recordCacheSize: Must be greater than or equal to 0' --set config.recordCacheSize=-1
refuse 'must be above preStopSleepSeconds' --set config.drainTime=30s
refuse 'must be above preStopSleepSeconds' --set config.drainTime=25s
refuse 'must be above preStopSleepSeconds' --set terminationGracePeriodSeconds=20
refuse 'config.drainTime: Does not match pattern' --set-string config.drainTime=20
refuse 'config.retention: Does not match pattern' --set config.retention=30days
refuse 'gateway.url: Does not match pattern' --set gateway.url=http://gateway.example/api/v3
refuse 'redis.url: Does not match pattern' --set redis.url=redis://user:pw@redis:6379/0
refuse 'redis.url: Does not match pattern' --set 'redis.url=redis-sentinel://s1:26379/m?sentinel_password=pw'
refuse 'redis.url: Does not match pattern' --set redis.url=redis-sentinel://s1:26379
refuse 'redis.minReplicaAcks: Must be greater than or equal to 0' --set redis.minReplicaAcks=-1
refuse 'redis.replicaAckTimeout: Does not match pattern' --set-string redis.replicaAckTimeout=1
refuse 'ports.admin: Must be less than or equal to 65535' --set ports.admin=70000
refuse 'three different ports' --set ports.admin=50051
refuse 'Additional property replicaCont is not allowed' --set replicaCont=3
refuse 'image.digest: Does not match pattern' --set image.digest=latest
refuse 'allowInsecureDev=true' --set auth.mode=insecureDev
refuse 'for staging only' --set sandbox.enabled=true
refuse 'needs a caller policy' --set auth.policy=null
refuse 'networkPolicy.egress.gateway.cidrs' --set networkPolicy.enabled=true
refuse 'fingerprint-key: at least 16 bytes' --set credentials.create=true \
  --set credentials.values.api-user=u --set credentials.values.api-password=p \
  --set credentials.values.payout-api-key=k --set credentials.values.payout-shared-secret=s
refuse 'Property name of "apiPassword" does not match' --set credentials.values.apiPassword=p
refuse 'not both' --set podDisruptionBudget.maxUnavailable=1
refuse 'auth.tls.crt' --set auth.tls.create=true
refuse 'no node could ever be drained' --set replicaCount=2
refuse 'minAvailable 100% means no node' --set podDisruptionBudget.minAvailable=100%
refuse 'publicCallbackUrl (http://pay.example.com/callbacks/bankart) must be https' \
  --set gateway.publicCallbackUrl=http://pay.example.com/callbacks/bankart
refuse 'is not ingress-nginx' --set ingress.className=traefik

# ---- the checks themselves must bite: each break of a copy of the chart is caught --------------
broken() {  # broken WHAT CASE FILE SED-EXPRESSION: CASE's values on a copy of the chart so edited
  local what=$1 case=$2 file=$3 expr=$4 values=()
  [ "$case" = defaults ] || values=(-f "$work/$case.yaml")
  rm -rf "$work/broken"
  cp -r helm/flikpay "$work/broken"
  sed -i -e "$expr" "$work/broken/$file"
  cmp -s "helm/flikpay/$file" "$work/broken/$file" && fail "mutation '$what' changed nothing"
  render "$work/broken" broken "${values[@]}" || fail "mutation '$what' broke rendering, not the checks"
  if check "$case" "$work/broken.rendered" "$work/broken.notes" >"$work/broken.out" 2>&1; then
    fail "a chart broken by '$what' passed the checks"
  fi
  echo "caught $what: $(head -n 1 "$work/broken.out")"
}
broken writable-root defaults templates/_helpers.tpl 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/'
broken root-user defaults templates/_helpers.tpl 's/^runAsUser: .*/runAsUser: 0/'
broken no-seccomp defaults templates/_helpers.tpl 's/type: RuntimeDefault/type: Unconfined/'
broken token-mounted defaults templates/deployment.yaml 's/automountServiceAccountToken: false/automountServiceAccountToken: true/'
broken tmp-on-disk defaults templates/deployment.yaml 's/medium: Memory/medium: ""/'
broken http-probe-in-plaintext insecure templates/_helpers.tpl 's/if include "flikpay.grpcTls" . -}}$/if true -}}/'
broken readiness-on-healthz defaults templates/_helpers.tpl 's|path: /readyz|path: /healthz|'
broken readiness-on-liveness insecure templates/_helpers.tpl 's|service: flikpay.v1.PaymentService|service: ""|'
broken port-drift defaults templates/deployment.yaml 's|value: "0.0.0.0:{{ .Values.ports.admin }}"|value: "0.0.0.0:9999"|'
broken service-target defaults templates/services.yaml 's/targetPort: callbacks/targetPort: admin/'
broken admin-in-ingress defaults templates/ingress.yaml 's/-callbacks$/-admin/; s/name: callbacks$/name: admin/'
broken extra-ingress-path defaults templates/ingress.yaml 's|path: /callbacks/bankart|path: /|'
# shellcheck disable=SC2016 # a template variable, for sed
broken body-size defaults templates/ingress.yaml 's/$maxBody := "256k"/$maxBody := "1m"/'
broken no-checksum features templates/deployment.yaml 's|checksum/secrets:|checksum/other:|'
broken secret-in-configmap defaults templates/caller-policy.yaml 's#policy.json: |-#api-password: hunter2-secret\n  policy.json: |-#'
broken secret-in-env features templates/deployment.yaml 's|- name: TMPDIR|- name: FLIKPAY_API_PASSWORD\n              value: bankart-password-94be\n            - name: TMPDIR|'
broken notes-mode defaults templates/NOTES.txt 's/-cert caller.crt/-plaintext/'
# shellcheck disable=SC2016 # template variables, for sed
broken no-sentinel-egress sentinel templates/networkpolicy.yaml 's/\$sentinelPort = 26379/$sentinelPort = 6379/'
# shellcheck disable=SC2016 # template variables, for sed
broken sentinel-port-not-from-secret sentinelsecret templates/networkpolicy.yaml 's/\$redisUrl = .Values.redis.urlSecret.url/$redisUrl = .Values.redis.url/'
broken acks-dropped sentinel templates/deployment.yaml 's/name: FLIKPAY_MIN_REPLICA_ACKS$/name: FLIKPAY_MIN_REPLICA_ACKS_X/'
broken sim-creds sandbox templates/_helpers.tpl 's/api-user: flikpay-sim/api-user: someone/'

echo "PASS: helm/flikpay: lint, six renderings checked, $(grep -c '^refuse ' "$0") refusals, $(grep -c '^broken ' "$0") broken charts caught"
