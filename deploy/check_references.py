"""What a schema cannot see in the deployment files: that they refer to each other rightly.

Run by deploy/check.sh (PyYAML comes with kubernetes-validate). Checks that
- every probe, Service targetPort and Prometheus port names or numbers a container port;
- Service, PodDisruptionBudget and Deployment selectors pick the Deployment's pods;
- the HorizontalPodAutoscaler scales this Deployment;
- every ConfigMap and Secret a pod reads is defined here (or is marked optional);
- the Job and the Deployment run the same image;
- every POS_GATEWAY_* / OTEL_* variable set anywhere is one the gateway reads (today's
  config.rs, or one of the contract's configuration section) - a misspelt name would be
  silently ignored;
- docker-compose.yml publishes no gateway port, and its load balancer config checks /healthz.
"""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"

# Variables of the contract (shared/API.md's configuration section, issues 13 and 14) that
# a build may not read yet; today's build ignores them. The rest come from config.rs.
COMING = {
    "POS_GATEWAY_OPS_LISTEN",
    "POS_GATEWAY_JWT_SECRETS",
    "POS_GATEWAY_JWT_KID",
    "POS_GATEWAY_JWT_MAX_TTL",
    "POS_GATEWAY_CATALOG_RATE",
    "POS_GATEWAY_CATALOG_BURST",
    "POS_GATEWAY_MAX_BULKS_IN_FLIGHT",
    "POS_GATEWAY_BODY_TIMEOUT",
    "POS_GATEWAY_SYNC_INTERVAL",
    "POS_GATEWAY_LOG_FORMAT",
}
# The standard OpenTelemetry SDK variables a deployment may set.
OTEL = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
}

# Secrets an operator makes with kubectl for one task, described where they are used.
MADE_BY_HAND = {"pos-gateway-credentials-next"}

problems: list[str] = []


def problem(text: str) -> None:
    problems.append(text)


def known_variables() -> set[str]:
    config = (ROOT / "crates" / "http-api" / "src" / "config.rs").read_text()
    return set(re.findall(r'"(POS_GATEWAY_[A-Z_]+)"', config)) | COMING | OTEL | {"RUST_LOG"}


def check_variable(name: str, where: str, known: set[str]) -> None:
    if (name.startswith("POS_GATEWAY_") or name.startswith("OTEL_")) and name not in known:
        problem(f"{where}: {name} is not a variable the gateway reads")


def load_k8s() -> list[tuple[str, dict]]:
    documents = []
    paths = sorted(K8S.glob("*.yaml"))
    for folder in ("secrets", "once"):
        paths += sorted((K8S / folder).glob("*.yaml"))
    for path in paths:
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents.append((path.relative_to(ROOT).as_posix(), document))
    return documents


def selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def check_pod(where: str, pod: dict, defined: dict, known: set[str]) -> set[str]:
    """Checks one pod template; returns its images."""
    images = set()
    optional_configmaps = {
        v["configMap"]["name"]
        for v in pod.get("volumes", [])
        if "configMap" in v and v["configMap"].get("optional")
    }
    for volume in pod.get("volumes", []):
        if "configMap" in volume:
            name = volume["configMap"]["name"]
            if name not in defined["ConfigMap"] and name not in optional_configmaps:
                problem(f"{where}: volume from ConfigMap {name}, defined nowhere")
    for container in pod["containers"]:
        images.add(container["image"])
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        numbers = set(ports.values())
        for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
            probe = container.get(probe_name)
            if probe and "httpGet" in probe:
                port = probe["httpGet"]["port"]
                if port not in ports and port not in numbers:
                    problem(f"{where}: {probe_name} on port {port!r}, which the container lacks")
        mounts = {m["name"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"] for v in pod.get("volumes", [])}
        for missing in mounts - volumes:
            problem(f"{where}: mounts volume {missing}, which the pod lacks")
        for source in container.get("envFrom", []):
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source:
                    name = source[key]["name"]
                    if (
                        name not in defined[kind]
                        and name not in MADE_BY_HAND
                        and not source[key].get("optional")
                    ):
                        problem(f"{where}: reads {kind} {name}, defined nowhere")
        for variable in container.get("env", []):
            check_variable(variable["name"], where, known)
    return images


def check_k8s(known: set[str]) -> None:
    documents = load_k8s()
    defined: dict[str, dict[str, dict]] = {}
    for _, document in documents:
        defined.setdefault(document["kind"], {})[document["metadata"]["name"]] = document
    for kind in ("ConfigMap", "Secret"):
        defined.setdefault(kind, {})
        for name, document in defined[kind].items():
            for key in list(document.get("data", {})) + list(document.get("stringData", {})):
                check_variable(key, f"{kind} {name}", known)

    namespace = next(iter(defined["Namespace"]))
    for where, document in documents:
        if document["kind"] != "Namespace" and document["metadata"].get("namespace") != namespace:
            problem(f"{where}: {document['kind']} {document['metadata']['name']} is not in {namespace}")

    deployments = defined["Deployment"]
    if len(deployments) != 1:
        problem(f"expected one Deployment, found {sorted(deployments)}")
        return
    (name, deployment), = deployments.items()
    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    if not selects(deployment["spec"]["selector"]["matchLabels"], labels):
        problem("the Deployment's selector does not pick its own pods")
    images = check_pod(f"Deployment {name}", template["spec"], defined, known)
    ports = {
        p.get("name"): p["containerPort"]
        for c in template["spec"]["containers"]
        for p in c.get("ports", [])
    }
    if "ops" not in ports:
        problem("the Deployment has no port named ops")

    for job_name, job in defined.get("Job", {}).items():
        job_images = check_pod(f"Job {job_name}", job["spec"]["template"]["spec"], defined, known)
        if job_images != images:
            problem(f"Job {job_name} runs {job_images}, the Deployment {images}")

    for service_name, service in defined.get("Service", {}).items():
        if not selects(service["spec"]["selector"], labels):
            problem(f"Service {service_name} does not select the Deployment's pods")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            if target not in ports and target not in ports.values():
                problem(f"Service {service_name}: targetPort {target!r} is no container port")
        scrape_port = service["metadata"].get("annotations", {}).get("prometheus.io/port")
        if scrape_port is not None and int(scrape_port) != ports.get("ops"):
            problem(f"Service {service_name}: Prometheus scrapes {scrape_port}, not the ops port")

    for hpa_name, hpa in defined.get("HorizontalPodAutoscaler", {}).items():
        target = hpa["spec"]["scaleTargetRef"]
        if (target["kind"], target["name"]) != ("Deployment", name):
            problem(f"HorizontalPodAutoscaler {hpa_name} scales {target}, not Deployment {name}")
        if hpa["spec"]["minReplicas"] > deployment["spec"]["replicas"]:
            problem(f"HorizontalPodAutoscaler {hpa_name}: minReplicas above the Deployment's")
    for pdb_name, pdb in defined.get("PodDisruptionBudget", {}).items():
        if not selects(pdb["spec"]["selector"]["matchLabels"], labels):
            problem(f"PodDisruptionBudget {pdb_name} does not select the Deployment's pods")


def check_compose(known: set[str]) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for service_name, service in services.items():
        for variable in service.get("environment", {}) or {}:
            check_variable(variable, f"docker-compose.yml {service_name}", known)
    if services["gateway"].get("ports"):
        problem("docker-compose.yml: the gateway's ports are published; only the load balancer's may be")
    if services["gateway"]["deploy"]["replicas"] < 3:
        problem("docker-compose.yml: fewer than three gateway replicas")
    ops = services["gateway"]["environment"].get("POS_GATEWAY_OPS_LISTEN", "")
    if not ops.endswith(":9090") or "9090" not in [str(p) for p in services["gateway"].get("expose", [])]:
        problem("docker-compose.yml: the ops listener is not on the exposed port 9090")
    condition = services["gateway"]["depends_on"].get("migrate", {}).get("condition")
    if condition != "service_completed_successfully":
        problem("docker-compose.yml: the replicas do not wait for the migration")
    haproxy = (ROOT / "deploy" / "compose" / "haproxy.cfg").read_text()
    if "uri /healthz" not in haproxy or "balance roundrobin" not in haproxy:
        problem("haproxy.cfg: not round robin with a /healthz check")


def main() -> int:
    known = known_variables()
    check_k8s(known)
    check_compose(known)
    for text in problems:
        print(f"problem: {text}", file=sys.stderr)
    if problems:
        return 1
    print("references: ok (ports, selectors, ConfigMaps and Secrets, images, variable names)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
