#!/usr/bin/env python3
"""Checks a rendered kustomization for what neither the schemas nor checkov know about this
service: that the parts refer to each other correctly and that the probes, ports and settings
say what docs/operations.md promises.

    check_manifests.py RENDERED.yaml [--min-replicas N] [--label NAME]

Prints every violation and exits 1 if there is any.
"""

import argparse
import sys

import yaml

GRPC_PORT = 50051
METRICS_PORT = 9464
API_SERVICE = "entitlement.v1.EntitlementService"
LIVENESS_SERVICE = "liveness"
SECRET_KEYS = ("ENTITLEMENTS_DATABASE_URL", "ENTITLEMENTS_SMTP_URL", "ENTITLEMENTS_MAIL_KEY")


def matches(selector, labels):
    """matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist) against labels."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


def check(docs, min_replicas):
    errors = []
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def one(kind, name):
        found = [d for d in by_kind.get(kind, []) if d["metadata"]["name"] == name]
        return found[0] if found else None

    deployments = by_kind.get("Deployment", [])
    jobs = by_kind.get("Job", [])
    if len(deployments) != 1:
        return [f"expected one Deployment, found {len(deployments)}"]
    if len(jobs) != 1:
        return [f"expected one Job (the migration), found {len(jobs)}"]
    dep, job = deployments[0], jobs[0]
    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"].get("labels") or {}
    container = pod["spec"]["containers"][0]
    job_pod = job["spec"]["template"]
    job_container = job_pod["spec"]["containers"][0]

    # Selectors: the Deployment's own, Services, PDB, spread constraints, NetworkPolicy, HPA.
    if not matches(dep["spec"]["selector"], pod_labels):
        errors.append("Deployment selector does not match its pod template's labels")
    for svc in by_kind.get("Service", []):
        if not matches({"matchLabels": svc["spec"].get("selector")}, pod_labels):
            errors.append(f"Service {svc['metadata']['name']}: selector does not match the pods")
        names = {p["name"] for p in container.get("ports", [])}
        for p in svc["spec"]["ports"]:
            target = p.get("targetPort", p["port"])
            if isinstance(target, str) and target not in names:
                errors.append(f"Service {svc['metadata']['name']}: targetPort {target} is no container port")
    if not by_kind.get("Service"):
        errors.append("no Service")
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if len(pdbs) != 1 or not matches(pdbs[0]["spec"]["selector"], pod_labels):
        errors.append("there must be one PodDisruptionBudget selecting the server's pods")
    for tsc in pod["spec"].get("topologySpreadConstraints", []):
        if not matches(tsc.get("labelSelector"), pod_labels):
            errors.append(f"topologySpreadConstraint on {tsc['topologyKey']} selects no server pod")
    policies = by_kind.get("NetworkPolicy", [])
    for labels, what in ((pod_labels, "server"), (job_pod["metadata"].get("labels") or {}, "migration Job")):
        if not any(matches(np["spec"]["podSelector"], labels) for np in policies):
            errors.append(f"no NetworkPolicy selects the {what}'s pods")
    hpas = by_kind.get("HorizontalPodAutoscaler", [])
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["kind"] != "Deployment" or ref["name"] != dep["metadata"]["name"]:
            errors.append(f"HPA {hpa['metadata']['name']} scales {ref['kind']}/{ref['name']}, not the Deployment")
        if hpa["spec"].get("minReplicas", 1) < min_replicas:
            errors.append(f"HPA minReplicas {hpa['spec'].get('minReplicas', 1)} < {min_replicas}")
    if dep["spec"].get("replicas", 1) < min_replicas:
        errors.append(f"Deployment replicas {dep['spec'].get('replicas', 1)} < {min_replicas}")

    # Service account: the one that exists, with no API token.
    for name, spec in (("Deployment", pod["spec"]), ("Job", job_pod["spec"])):
        sa = spec.get("serviceAccountName", "default")
        if sa == "default" or one("ServiceAccount", sa) is None:
            errors.append(f"{name}: service account {sa!r} is not the service's own")
        if spec.get("automountServiceAccountToken") is not False:
            errors.append(f"{name}: automountServiceAccountToken must be false")

    # Ports and settings agree: container ports, ConfigMap listen addresses, scrape annotations.
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if ports.get("grpc") != GRPC_PORT or ports.get("metrics") != METRICS_PORT:
        errors.append(f"container ports must be grpc={GRPC_PORT}, metrics={METRICS_PORT}: {ports}")
    annotations = pod["metadata"].get("annotations") or {}
    if annotations.get("prometheus.io/scrape") != "true" or annotations.get("prometheus.io/port") != str(METRICS_PORT):
        errors.append("pod must carry prometheus.io/scrape=true and prometheus.io/port=9464")
    config = {}
    for ref in container.get("envFrom", []):
        if "configMapRef" in ref:
            cm = one("ConfigMap", ref["configMapRef"]["name"])
            if cm is None:
                errors.append(f"ConfigMap {ref['configMapRef']['name']} is referenced but not rendered")
            else:
                config.update(cm.get("data") or {})
    if not config:
        errors.append("the server reads no ConfigMap")
    for key, port in (("ENTITLEMENTS_LISTEN", GRPC_PORT), ("ENTITLEMENTS_METRICS_LISTEN", METRICS_PORT)):
        if key not in config or port_of(config[key]) != port or not config[key].startswith("0.0.0.0:"):
            errors.append(f"{key} must be 0.0.0.0:{port}, is {config.get(key)!r}")
    # The AuthZEN HTTP door, where served: its port is the container port `http`, and the
    # Service forwards to it.
    if "ENTITLEMENTS_HTTP_LISTEN" in config:
        http_port = port_of(config["ENTITLEMENTS_HTTP_LISTEN"])
        if ports.get("http") != http_port:
            errors.append(f"ENTITLEMENTS_HTTP_LISTEN port {http_port} is not the container port `http`: {ports}")
        main = one("Service", "entitlements")
        if main is not None and not any(p.get("targetPort") == "http" for p in main["spec"]["ports"]):
            errors.append("Service entitlements does not forward to the container port `http`")

    # Probes: readiness and startup follow the API service (database + warm cache); liveness
    # must not, or a database outage would restart every pod.
    # With the service's own TLS on (docs/operations.md, "TLS"), the kubelet's probes, which
    # cannot speak TLS, ask the plaintext health port instead.
    settings = {**config, **{e["name"]: e.get("value") for e in container.get("env", [])}}
    probe_port = GRPC_PORT
    if settings.get("ENTITLEMENTS_TLS_CERT"):
        if not settings.get("ENTITLEMENTS_HEALTH_LISTEN"):
            errors.append("ENTITLEMENTS_TLS_CERT is set but ENTITLEMENTS_HEALTH_LISTEN is not: gRPC probes cannot speak TLS")
        else:
            probe_port = port_of(settings["ENTITLEMENTS_HEALTH_LISTEN"])
            if probe_port not in ports.values():
                errors.append(f"the health port {probe_port} is no container port")

    def grpc_probe(name, service):
        probe = container.get(name)
        if not probe or "grpc" not in probe:
            errors.append(f"{name}: must be a gRPC probe")
            return
        if probe["grpc"].get("port") != probe_port or probe["grpc"].get("service") != service:
            errors.append(f"{name}: must ask port {probe_port} for service {service!r}, asks {probe['grpc']}")

    grpc_probe("readinessProbe", API_SERVICE)
    grpc_probe("startupProbe", API_SERVICE)
    grpc_probe("livenessProbe", LIVENESS_SERVICE)
    startup = container.get("startupProbe") or {}
    if startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3) < 240:
        errors.append("startupProbe allows less than 4 minutes for the cache to warm")

    if config.get("ENTITLEMENTS_LOG_JSON") != "true":
        errors.append("ENTITLEMENTS_LOG_JSON must be true")
    if not str(config.get("ENTITLEMENTS_AUTH_JWKS", "")).startswith("https://"):
        errors.append("ENTITLEMENTS_AUTH_JWKS must be an https:// URL")
    if not str(config.get("ENTITLEMENTS_AUTH_ISSUER", "")).strip():
        errors.append("ENTITLEMENTS_AUTH_ISSUER must be set: the server refuses to start without it")
    for cm in by_kind.get("ConfigMap", []):
        for key in cm.get("data") or {}:
            if key in SECRET_KEYS:
                errors.append(f"ConfigMap {cm['metadata']['name']} holds {key}: it belongs in the Secret")
            if key == "ENTITLEMENTS_DEV":
                errors.append(f"ConfigMap {cm['metadata']['name']} sets ENTITLEMENTS_DEV: never in a cluster")
    for c in (container, job_container):
        for env in c.get("env", []):
            if env["name"] == "ENTITLEMENTS_DEV" or (env["name"] in SECRET_KEYS and "value" in env):
                errors.append(f"container {c['name']}: {env['name']} set inline")
        if "--dev" in (c.get("args") or []) + (c.get("command") or []):
            errors.append(f"container {c['name']}: --dev in a cluster")
    if not any("secretRef" in ref for ref in container.get("envFrom", [])):
        errors.append("the server reads no Secret (" + ", ".join(SECRET_KEYS) + ")")

    # The migration Job runs `migrate` with the server's image, once.
    if job_container.get("args") != ["migrate"]:
        errors.append(f"Job must run `migrate`, runs {job_container.get('args')}")
    if job_container["image"] != container["image"]:
        errors.append(f"Job image {job_container['image']} differs from the server's {container['image']}")
    if job_pod["spec"].get("restartPolicy") != "Never":
        errors.append("Job restartPolicy must be Never")
    if container["image"].endswith(":latest") or ":" not in container["image"].rsplit("/", 1)[-1]:
        errors.append(f"image {container['image']} must be pinned by tag")
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered")
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--label", help="name to print instead of the file's path")
    args = parser.parse_args()
    label = args.label or args.rendered
    with open(args.rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    errors = check(docs, args.min_replicas)
    for e in errors:
        print(f"ERROR {label}: {e}")
    if errors:
        return 1
    print(f"OK {label}: {len(docs)} resources refer to each other correctly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
