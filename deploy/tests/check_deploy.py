#!/usr/bin/env python3
"""Checks every artefact under deploy/ against the tools that read it and
against the icsflow binary itself; then runs the pipeline on simulated data
under a real Prometheus and evaluates every dashboard query and rule.

    python deploy/tests/check_deploy.py --icsflow target/debug/icsflow

`make test` runs it from a virtual environment holding PyYAML,
check-jsonschema and kubernetes-validate; promtool, prometheus and kubectl
come from the machine. Each check prints one line; every failure is listed
at the end and the exit status is 1 if there was any.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = Path(sys.executable).parent
ROLES = {"ingest", "join", "run"}
ADMIN_PATHS = {"/metrics", "/healthz", "/readyz"}


class Checks:
    def __init__(self):
        self.failures = []

    def check(self, condition, what, detail=""):
        print(("ok    " if condition else "FAIL  ") + what, flush=True)
        if not condition:
            self.failures.append(what + (f"\n      {detail}" if detail else ""))
        return condition

    def command(self, arguments, what, env=None, cwd=ROOT):
        result = subprocess.run(
            [str(argument) for argument in arguments],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        output = (result.stdout + result.stderr).strip()
        self.check(result.returncode == 0, what, output[-3000:])
        return result


def cargo_version():
    with open(ROOT / "Cargo.toml", "rb") as file:
        return tomllib.load(file)["workspace"]["package"]["version"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def long_flags(arguments):
    return [argument.split("=")[0] for argument in arguments if argument.startswith("--")]


# ---------------------------------------------------------------- Prometheus


def check_prometheus(checks):
    prometheus = DEPLOY / "prometheus"
    checks.command(["promtool", "check", "config", prometheus / "prometheus.yml"], "promtool check config")
    rules = sorted((prometheus / "rules").glob("*.yml"))
    checks.command(["promtool", "check", "rules", *rules], "promtool check rules")
    tests = sorted((prometheus / "tests").glob("*.test.yml"))
    checks.command(["promtool", "test", "rules", *tests], "promtool test rules (every alert)")
    alerts = [
        rule["alert"]
        for path in rules
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    tested = set()
    for path in tests:
        for test in yaml.safe_load(path.read_text())["tests"]:
            tested.update(case["alertname"] for case in test.get("alert_rule_test", []))
    untested = sorted(set(alerts) - tested)
    checks.check(not untested, f"every alert has a promtool unit test ({len(alerts)} alerts)", f"untested: {untested}")
    for path in rules:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    summary = rule.get("annotations", {}).get("summary", "")
                    description = rule.get("annotations", {}).get("description", "")
                    checks.check(
                        bool(summary) and len(description) > 40,
                        f"alert {rule['alert']} has a summary and an actionable description",
                    )
                    # A runbook section for every alert, where runbook_url points.
                    runbook = (prometheus / "runbook.md").read_text()
                    anchor = rule.get("annotations", {}).get("runbook_url", "").partition("#")[2]
                    sections = {line[3:].strip().lower() for line in runbook.splitlines() if line.startswith("## ")}
                    checks.check(
                        anchor == rule["alert"].lower() and anchor in sections,
                        f"alert {rule['alert']} has a runbook_url to its section of runbook.md",
                        anchor,
                    )


def rule_expressions():
    """(name, expression) of every recording rule."""
    found = []
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    found.append((rule["record"], rule["expr"]))
    return found


# ------------------------------------------------------------------- Grafana


def dashboards():
    return {
        path.name: json.loads(path.read_text())
        for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
    }


def dashboard_queries():
    """(dashboard, panel title, expression) of every panel query."""
    found = []
    for name, board in dashboards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                found.append((name, panel["title"], target["expr"]))
    return found


def check_grafana(checks):
    checks.command(
        [sys.executable, DEPLOY / "grafana" / "build_dashboards.py", "--check"],
        "dashboards are as build_dashboards.py makes them",
    )
    boards = dashboards()
    checks.check(len(boards) == 2, "two dashboards provisioned", str(list(boards)))
    for name, board in boards.items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            checks.check(
                len(panel.get("description", "")) > 30,
                f"{name}: panel '{panel['title']}' states its definition",
            )
    flow = boards.get("ics-flow-by-place.json", {})
    # Every panel colours by a level of its own or a neutral colour, never
    # Grafana's default (green, red from 80); the headline uses the level of
    # deploy/prometheus/rules/icsflow-thresholds.yml.
    for board_name, board in boards.items():
        for item in board["panels"]:
            if item.get("type") == "row":
                continue
            steps = item.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps")
            checks.check(bool(steps), f"{board_name} / {item['title']}: thresholds set, not Grafana's default")
    level = re.search(
        r"record: icsflow:threshold:not_meeting_criteria_patients_default\n\s+expr: vector\((\d+)\)",
        (DEPLOY / "prometheus" / "rules" / "icsflow-thresholds.yml").read_text(),
    ).group(1)
    headline = next(item for item in flow["panels"] if item.get("title") == "Not meeting the criteria to reside")
    red = [step["value"] for step in headline["fieldConfig"]["defaults"]["thresholds"]["steps"] if step["color"] == "red"]
    checks.check(red == [int(level)], "the headline panel turns red at the level in icsflow-thresholds.yml", str(red))
    checks.check(
        all(any(link.get("type") == "dashboards" and "icsflow" in link.get("tags", []) for link in board.get("links", [])) for board in boards.values()),
        "each dashboard links to the other icsflow dashboards",
    )
    variables = {variable["name"] for variable in flow.get("templating", {}).get("list", [])}
    checks.check({"place", "provider"} <= variables, "ICS flow by place has place and provider variables", str(variables))
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    uids = {source["uid"] for source in datasource["datasources"]}
    for board in boards.values():
        default = next(v for v in board["templating"]["list"] if v["name"] == "datasource")
        checks.check(
            default["current"]["value"] in uids,
            f"dashboard '{board['title']}' defaults to the provisioned datasource",
        )


# ------------------------------------------------------------------- Compose


def check_compose(checks, icsflow, version, default_settings):
    compose_path = DEPLOY / "compose" / "compose.yaml"
    checks.command(
        [TOOLS / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", compose_path],
        "compose.yaml matches the compose specification",
    )
    compose = yaml.safe_load(compose_path.read_text())
    services = compose["services"]
    folder = compose_path.parent
    # The Kafka the stack runs is the Kafka the tests run.
    tested = re.search(r"<kafka.version>([^<]+)</kafka.version>", (ROOT / "tests" / "kafka" / "pom.xml").read_text()).group(1)
    for name, service in services.items():
        image = service.get("image", "")
        checks.check(
            ":" in image and not image.endswith(":latest"),
            f"compose {name}: image pinned to a version ({image})",
        )
        if image.startswith("apache/kafka:"):
            checks.check(
                image == f"apache/kafka:{tested}",
                f"compose {name}: Kafka {tested}, the version the tests run",
                image,
            )
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                checks.check((folder / source).exists(), f"compose {name}: mounted {source} exists")
        build = service.get("build")
        if build:
            context = folder / build["context"]
            checks.check((context / build["dockerfile"]).exists(), f"compose {name}: Dockerfile exists")
            checks.check(image == f"icsflow:{version}", f"compose {name}: icsflow image is tagged {version}", image)
            command = service["command"]
            config = mapped_file(service, "/etc/icsflow/icsflow.toml", folder)
            arguments = [config if argument == "/etc/icsflow/icsflow.toml" else argument for argument in command]
            # A file the configuration names (the reference data) is mounted too.
            environment = {}
            named = tomllib.loads(Path(config).read_text()).get("reference", {}).get("file")
            if named:
                mapped = mapped_file(service, named, folder)
                checks.check(mapped != named, f"compose {name}: reference.file {named} is mounted")
                environment["ICSFLOW__REFERENCE__FILE"] = mapped
            check_icsflow_arguments(checks, icsflow, f"compose {name}", arguments, environment)
    # Grafana finds the dashboards where compose mounts them.
    provisioning = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/icsflow.yml").read_text())
    provider_path = provisioning["providers"][0]["options"]["path"]
    checks.check(
        f"../grafana/dashboards:{provider_path}:ro" in services["grafana"]["volumes"],
        f"compose mounts the dashboards at the provisioned path {provider_path}",
    )
    # Prometheus scrapes the roles' admin ports by service name.
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    admin_port = default_settings["admin"]["addr"].rsplit(":", 1)[1]
    for job in prometheus["scrape_configs"]:
        for target in job["static_configs"][0]["targets"]:
            host, port = target.rsplit(":", 1)
            checks.check(
                host in services and port == admin_port and services[host]["command"][0] in ROLES,
                f"prometheus.yml target {target} is a role's admin port in compose",
            )
    # The topics job creates exactly the configured topics, the journey
    # topic kept longer than the eviction horizon.
    script = "\n".join(services["topics"]["command"])
    created = dict(re.findall(r"create (\S+) \d+ \$\$\(\((\d+) \* day\)\)", script))
    topics = {key: name for key, name in default_settings["topics"].items() if key != "layout"}
    checks.check(set(created) == set(topics.values()), "compose creates every configured topic", f"{created} vs {topics}")
    horizon = default_settings["engine"]["eviction_horizon_days"]
    checks.check(
        int(created.get(topics["journey"], 0)) > horizon,
        f"journey topic retention exceeds the {horizon}-day eviction horizon",
    )


def mapped_file(service, target, folder):
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if len(parts) >= 2 and parts[1] == target:
            return str((folder / parts[0]).resolve())
    return target


# ----------------------------------------------------------------- Kubernetes


def check_kubernetes(checks, icsflow, version):
    rendered = {}
    for overlay in ["base", "overlays/example"]:
        result = checks.command(["kubectl", "kustomize", DEPLOY / "k8s" / overlay], f"kustomize renders k8s/{overlay}")
        rendered[overlay] = result.stdout
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
        file.write(rendered["overlays/example"])
    result = checks.command(
        [TOOLS / "kubernetes-validate", "--strict", file.name],
        "kubernetes-validate --strict accepts the example overlay",
    )
    skipped = re.findall(r"Couldn't find schema for kind (\w+)", result.stdout + result.stderr)
    checks.check(
        set(skipped) <= {"PodMonitor", "PrometheusRule"},
        "only the Prometheus Operator's CRDs (PodMonitor, PrometheusRule) lack a built-in schema",
        str(skipped),
    )
    checks.command(
        [sys.executable, DEPLOY / "k8s" / "render_monitoring.py", "--check"],
        "the k8s PrometheusRule and dashboard ConfigMaps are rendered from deploy/prometheus and deploy/grafana",
    )
    os.unlink(file.name)

    check_strimzi(checks, rendered["overlays/example"])

    documents = [document for document in yaml.safe_load_all(rendered["overlays/example"]) if document]
    by_kind = {}
    for document in documents:
        by_kind.setdefault(document["kind"], []).append(document)
    config_maps = {c["metadata"]["name"]: c.get("data", {}) for c in by_kind.get("ConfigMap", [])}
    secrets = {s["metadata"]["name"]: s.get("data", {}) for s in by_kind.get("Secret", [])}
    # Every workload: ingest and the simulator are Deployments, join a
    # StatefulSet (its pod names are its static group membership).
    deployments = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    kinds = set(by_kind)
    for kind in ["Deployment", "StatefulSet", "Service", "PodMonitor", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "Secret"]:
        checks.check(kind in kinds, f"example overlay has a {kind}")
    roles_seen = set()
    pod_ports = {}
    for deployment in deployments:
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        checks.check(
            all(labels.get(k) == v for k, v in deployment["spec"]["selector"]["matchLabels"].items()),
            f"k8s {name}: selector matches its pod labels",
        )
        volumes = {volume["name"]: volume for volume in pod["spec"].get("volumes", [])}
        for container in pod["spec"]["containers"]:
            image = container["image"]
            checks.check(image.endswith(f"/icsflow:{version}") or image == f"icsflow:{version}", f"k8s {name}: image is icsflow {version} ({image})")
            arguments = list(container["args"])
            ports = {port["name"]: port["containerPort"] for port in container.get("ports", [])}
            pod_ports[name] = (labels, ports)
            # Files the arguments name come from mounted ConfigMaps and Secrets.
            files = {}
            for mount in container.get("volumeMounts", []):
                volume = volumes.get(mount["name"])
                checks.check(volume is not None, f"k8s {name}: volume {mount['name']} is defined")
                if volume is None:
                    continue
                if "configMap" in volume:
                    data = config_maps.get(volume["configMap"]["name"])
                    checks.check(data is not None, f"k8s {name}: ConfigMap {volume['configMap']['name']} exists")
                    for key, text in (data or {}).items():
                        files[f"{mount['mountPath']}/{key}"] = text.encode()
                if "secret" in volume:
                    data = secrets.get(volume["secret"]["secretName"])
                    checks.check(data is not None, f"k8s {name}: Secret {volume['secret']['secretName']} exists")
                    for key in data or {}:
                        files[f"{mount['mountPath']}/{key}"] = b"a placeholder key of at least 32 bytes, for the check"
            environment = {}
            for variable in container.get("env", []):
                reference = variable.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    checks.check(
                        reference["key"] in secrets.get(reference["name"], {}),
                        f"k8s {name}: {variable['name']} comes from an existing Secret key",
                    )
                environment[variable["name"]] = variable.get("value", "from-a-secret")
            with tempfile.TemporaryDirectory() as scratch:
                local = []
                for argument in arguments:
                    if argument in files:
                        path = Path(scratch) / argument.lstrip("/").replace("/", "_")
                        path.write_bytes(files[argument])
                        local.append(str(path))
                    else:
                        if argument.startswith("/"):
                            checks.check(False, f"k8s {name}: {argument} is mounted from a ConfigMap or Secret")
                        local.append(argument)
                # A file the configuration names (the reference data) is
                # mounted too; the check reads the mounted copy.
                if "--config" in arguments and arguments[arguments.index("--config") + 1] in files:
                    config = tomllib.loads(files[arguments[arguments.index("--config") + 1]].decode())
                    named = config.get("reference", {}).get("file")
                    if named:
                        checks.check(named in files, f"k8s {name}: reference.file {named} is mounted from a ConfigMap")
                        if named in files:
                            path = Path(scratch) / named.lstrip("/").replace("/", "_")
                            path.write_bytes(files[named])
                            environment["ICSFLOW__REFERENCE__FILE"] = str(path)
                settings = check_icsflow_arguments(checks, icsflow, f"k8s {name}", local, environment)
            if arguments[0] in ROLES:
                roles_seen.add(arguments[0])
                check_probes(checks, name, container, ports, settings)
                grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
                checks.check(
                    grace > settings["shutdown"]["timeout_seconds"],
                    f"k8s {name}: termination grace ({grace} s) exceeds shutdown.timeout_seconds",
                )
                limits = container.get("resources", {})
                checks.check(
                    "requests" in limits and "limits" in limits,
                    f"k8s {name}: resource requests and limits set",
                )
    checks.check({"ingest", "join"} <= roles_seen, "a workload per role (ingest, join)", str(roles_seen))
    join_workload = next((d for d in by_kind.get("StatefulSet", []) if d["metadata"]["name"].endswith("icsflow-join")), None)
    checks.check(join_workload is not None, "join runs as a StatefulSet (stable names for static membership)")
    if join_workload is not None:
        environment = {e["name"]: e for e in join_workload["spec"]["template"]["spec"]["containers"][0].get("env", [])}
        instance = environment.get("ICSFLOW__KAFKA__GROUP_INSTANCE_ID", {})
        checks.check(
            instance.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
            "join's group.instance.id is its pod name",
        )

    def selected(selector):
        return [
            (name, ports)
            for name, (labels, ports) in pod_ports.items()
            if all(labels.get(k) == v for k, v in selector.items())
        ]

    for service in by_kind.get("Service", []):
        pods = selected(service["spec"]["selector"])
        checks.check(bool(pods), f"k8s Service {service['metadata']['name']} selects a workload's pods")
        for port in service["spec"]["ports"]:
            checks.check(
                all(port["targetPort"] in ports for _, ports in pods),
                f"k8s Service {service['metadata']['name']}: port {port['targetPort']} exists on its pods",
            )
    for monitor in by_kind.get("PodMonitor", []):
        pods = selected(monitor["spec"]["selector"]["matchLabels"])
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            checks.check(
                bool(pods) and all(endpoint["port"] in ports for name, ports in pods if not name.endswith("simulator")),
                f"k8s PodMonitor scrapes the named port {endpoint['port']} of the roles",
            )
            checks.check(endpoint.get("path") in ADMIN_PATHS, "k8s PodMonitor path is /metrics")
        # The job names the alerts match (IcsflowRoleDown, IcsflowMetricsAbsent).
        checks.check(
            monitor["spec"].get("jobLabel") == "app.kubernetes.io/name",
            "k8s PodMonitor takes the job from app.kubernetes.io/name (icsflow-ingest, icsflow-join)",
        )
    for budget in by_kind.get("PodDisruptionBudget", []):
        checks.check(
            bool(selected(budget["spec"]["selector"]["matchLabels"])),
            f"k8s PodDisruptionBudget {budget['metadata']['name']} selects pods",
        )
    for policy in by_kind.get("NetworkPolicy", []):
        pods = selected(policy["spec"]["podSelector"]["matchLabels"])
        names = {port for _, ports in pods for port in ports}
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                checks.check(port["port"] in names, f"k8s NetworkPolicy port {port['port']} is a named container port")


def check_strimzi(checks, example):
    """The example's Kafka users and topics (rendered by `icsflow acls`; a
    cargo test holds the rendering current) cover every principal of the
    reference data and the roles' credentials, and the overlay's reference
    data is the demo ICS's."""
    overlay = DEPLOY / "k8s" / "overlays" / "example"
    checks.check(
        (overlay / "reference.toml").read_bytes() == (DEPLOY / "config" / "reference.toml").read_bytes(),
        "k8s example: reference.toml is a copy of deploy/config/reference.toml",
    )
    result = checks.command(["kubectl", "kustomize", overlay / "strimzi"], "kustomize renders k8s/overlays/example/strimzi")
    documents = [document for document in yaml.safe_load_all(result.stdout) if document]
    users = {d["metadata"]["name"]: d for d in documents if d["kind"] == "KafkaUser"}
    topics = {d["spec"]["topicName"] for d in documents if d["kind"] == "KafkaTopic"}
    checks.check(all(d["metadata"]["namespace"] == "kafka" for d in documents), "strimzi resources are in the Kafka namespace")
    reference = tomllib.loads((overlay / "reference.toml").read_text())
    principals = [reference["roles"]["ingest_principal"], reference["roles"]["join_principal"]]
    principals += [partner["principal"] for partner in reference["partners"]]
    for principal in principals:
        checks.check(principal.removeprefix("User:") in users, f"strimzi: a KafkaUser for {principal}")
    for partner in reference["partners"]:
        acls = users.get(partner["principal"].removeprefix("User:"), {}).get("spec", {}).get("authorization", {}).get("acls", [])
        written = [acl["resource"]["name"] for acl in acls if "Write" in acl["operations"]]
        checks.check(
            len(written) == 1 and written[0].endswith("." + partner["code"]) and written[0] in topics,
            f"strimzi: partner {partner['code']} writes only its own topic, which exists",
            str(written),
        )
    for document in yaml.safe_load_all(example):
        if document and document["kind"] == "Secret" and document["metadata"]["name"].endswith("-kafka-credentials"):
            username = base64.b64decode(document["data"]["username"]).decode()
            checks.check(username in users, f"k8s Secret {document['metadata']['name']}: user {username} has a KafkaUser")


def check_probes(checks, name, container, ports, settings):
    admin_port = int(settings["admin"]["addr"].rsplit(":", 1)[1])
    checks.check(ports.get("admin") == admin_port, f"k8s {name}: container port 'admin' is admin.addr's port ({admin_port})")
    published = settings["admin"].get("published_addr", "")
    if "published" in ports:
        checks.check(
            published.endswith(f":{ports['published']}"),
            f"k8s {name}: container port 'published' is the published view's port",
            published,
        )
    for probe in ["livenessProbe", "readinessProbe"]:
        get = container.get(probe, {}).get("httpGet", {})
        checks.check(
            get.get("path") in {"/healthz", "/readyz"} and get.get("port") in ports,
            f"k8s {name}: {probe} is an HTTP GET of {get.get('path')} on a declared port",
        )
    checks.check(
        container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
        f"k8s {name}: readiness is /readyz",
    )


def check_icsflow_arguments(checks, icsflow, where, arguments, environment):
    """Every flag exists on the subcommand; a role's settings load (through
    the binary's own --check). Returns the role's effective settings."""
    subcommand = arguments[0]
    help_text = subprocess.run([icsflow, subcommand, "--help"], capture_output=True, text=True).stdout
    unknown = [flag for flag in long_flags(arguments) if not re.search(rf"(^|\s){re.escape(flag)}[\s,=]", help_text)]
    checks.check(not unknown, f"{where}: every flag exists on `icsflow {subcommand}`", f"unknown: {unknown}")
    if subcommand not in ROLES:
        return {}
    env = {key: value for key, value in os.environ.items() if not key.startswith("ICSFLOW__")}
    env.update(environment)
    checks.command([icsflow, *arguments, "--check"], f"{where}: `icsflow {' '.join(arguments[:1])} --check` accepts its settings", env=env)
    settings = tomllib.loads((DEPLOY / "config" / "icsflow.example.toml").read_text())
    config = arguments[arguments.index("--config") + 1] if "--config" in arguments else None
    if config:
        for section, values in tomllib.loads(Path(config).read_text()).items():
            settings.setdefault(section, {}).update(values)
    if "--published-addr" in arguments:
        settings["admin"]["published_addr"] = arguments[arguments.index("--published-addr") + 1]
    return settings


def check_dockerfile(checks, icsflow):
    text = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE):
        checks.check((ROOT / source).exists(), f"Dockerfile copies {source}, which exists")
    # The build stage's context is exactly what it copies: every file the
    # compiler read for the binary (cargo's dep-info lists include_str!
    # files too) must be inside it, or the image does not build.
    build_stage = re.split(r"^FROM ", text, flags=re.MULTILINE)[1]
    copied = []
    for line in re.findall(r"^COPY (?!--from)(.+)$", build_stage, re.MULTILINE):
        copied.extend(line.split()[:-1])
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    every_copy = re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE)
    excluded = [item for item in copied + every_copy if any(item == pattern or item.startswith(pattern + "/") for pattern in ignored)]
    checks.check(not excluded, ".dockerignore keeps out nothing the Dockerfile copies", f"excluded: {excluded}")
    dep_info = Path(icsflow + ".d")
    checks.check(dep_info.exists(), "the binary's dep-info (cargo's list of the files it was built from) exists", str(dep_info))
    if dep_info.exists():
        sources = dep_info.read_text().split(":", 1)[1].split()
        outside = []
        for source in sources:
            path = Path(os.path.normpath(source))
            try:
                relative = path.relative_to(ROOT)
            except ValueError:
                continue  # a dependency from the registry, fetched in the build
            if relative.parts[0] in (".git", "target"):
                continue  # the revision is "unknown" without git; target is output
            if not any(relative == Path(item) or Path(item) in relative.parents for item in copied):
                outside.append(str(relative))
        checks.check(not outside, "every file the binary is built from is in the image's build context (the Dockerfile's COPY lines)", f"outside it: {sorted(set(outside))}")
    exposed = set(re.findall(r"^EXPOSE (.+)$", text, re.MULTILINE)[0].split())
    checks.check({"9464", "9465"} <= exposed, "Dockerfile exposes the admin and published ports")


# ----------------------------------------------------------------------- E2E


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def wait_for(what, predicate, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception as error:  # noqa: BLE001 - retried until the deadline
            last = error
        time.sleep(0.5)
    raise RuntimeError(f"{what}: not within {seconds} s ({last})")


def instant_query(prometheus, expression):
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    answer = json.loads(http_get(url))
    if answer["status"] != "success":
        raise RuntimeError(answer)
    return answer["data"]["result"]


def with_variables(expression):
    for name in ("place", "provider", "pathway", "reason_family"):
        expression = expression.replace(f"${name}", ".*")
    # Totals over the last 28 days, the period the dashboard opens on.
    return expression.replace("$period", "28d")


def check_end_to_end(checks, icsflow, settle_seconds):
    scratch = Path(tempfile.mkdtemp(prefix="icsflow-deploy-"))
    admin = f"127.0.0.1:{free_port()}"
    published = f"127.0.0.1:{free_port()}"
    prometheus_address = f"127.0.0.1:{free_port()}"
    processes = []
    try:
        demo_log = open(scratch / "demo.log", "w")
        processes.append(
            subprocess.Popen(
                [icsflow, "demo", "--admin-addr", admin, "--published-addr", published, "--summary-every", "3600"],
                stdout=demo_log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_for(
            "the pipeline's flow gauges",
            lambda: "icsflow_flow_discharges{" in http_get(f"http://{admin}/metrics"),
            120,
        )
        # The shipped Prometheus configuration, pointed at this pipeline and
        # scraping every second.
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(DEPLOY / "prometheus" / path) for path in config["rule_files"]]
        config["scrape_configs"] = [{"job_name": "icsflow-join", "static_configs": [{"targets": [admin]}]}]
        (scratch / "prometheus.yml").write_text(yaml.safe_dump(config))
        prometheus_log = open(scratch / "prometheus.log", "w")
        processes.append(
            subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={scratch / 'prometheus.yml'}",
                    f"--storage.tsdb.path={scratch / 'data'}",
                    f"--web.listen-address={prometheus_address}",
                ],
                stdout=prometheus_log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_for(
            "Prometheus scraping the pipeline",
            lambda: instant_query(prometheus_address, 'up{job="icsflow-join"} == 1'),
            60,
        )
        # Rates and deltas need two samples; recording rules a few rounds.
        time.sleep(settle_seconds)
        empty = []
        queries = [(f"{board} / {title}", with_variables(expression)) for board, title, expression in dashboard_queries()]
        for name, expression in rule_expressions():
            queries.append((f"recording rule {name}", expression))
            queries.append((f"recorded series {name}", name))
        for where, expression in queries:
            try:
                series = instant_query(prometheus_address, expression)
            except Exception as error:  # noqa: BLE001 - reported as a failure
                series = []
                expression = f"{expression} ({error})"
            if not series:
                empty.append(f"{where}: {expression}")
        checks.check(
            not empty,
            f"every dashboard query and recording rule returns series on a real Prometheus ({len(queries)} queries)",
            "\n      ".join(empty),
        )
        # Names come from the reference data through the info metrics: every
        # panel that shows a place or provider by name shows the names of
        # deploy/config/reference.toml (the demo's), never a bare code.
        reference = tomllib.loads((DEPLOY / "config" / "reference.toml").read_text())
        names = {place["name"] for place in reference["places"]} | {partner["name"] for partner in reference["partners"]}
        named_queries = [
            (f"{board} / {title}", with_variables(expression))
            for board, title, expression in dashboard_queries()
            if "group_left(name)" in expression and ("by (place)" in expression or "by (provider)" in expression)
        ]
        checks.check(len(named_queries) >= 2, "panels by place and by provider show names", str(len(named_queries)))
        for where, expression in named_queries:
            shown = {series["metric"].get("name") for series in instant_query(prometheus_address, expression)}
            checks.check(
                bool(shown) and shown <= names,
                f"{where}: names from the reference data",
                str(sorted(str(name) for name in shown)),
            )
        for board in dashboards().values():
            for variable in board["templating"]["list"]:
                if variable.get("type") != "query":
                    continue
                match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"])
                selector, label = match.group(1), match.group(2)
                url = f"http://{prometheus_address}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
                    {"match[]": with_variables(selector)}
                )
                values = json.loads(http_get(url))["data"]
                checks.check(bool(values), f"dashboard variable {variable['name']} has values ({', '.join(values)})")
        rules = json.loads(http_get(f"http://{prometheus_address}/api/v1/rules"))["data"]["groups"]
        unhealthy = [
            f"{rule['name']}: {rule.get('lastError')}"
            for group in rules
            for rule in group["rules"]
            if rule.get("health") not in ("ok", "unknown")
        ]
        checks.check(not unhealthy, "every rule evaluates without error on Prometheus", "; ".join(unhealthy))
        # The published view parses as Prometheus exposition.
        view = http_get(f"http://{published}/metrics")
        result = subprocess.run(["promtool", "check", "metrics"], input=view, capture_output=True, text=True)
        checks.check(result.returncode == 0 and "icsflow_flow_" in view, "the published view passes promtool check metrics", result.stderr[-2000:])
    except RuntimeError as error:
        logs = "".join((scratch / name).read_text()[-2000:] for name in ["demo.log", "prometheus.log"] if (scratch / name).exists())
        checks.check(False, f"end to end: {error}", logs)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--icsflow", required=True, help="the built icsflow binary")
    parser.add_argument("--settle-seconds", type=float, default=15, help="scraping time before the queries")
    parser.add_argument("--static-only", action="store_true", help="skip the end-to-end run")
    arguments = parser.parse_args()
    icsflow = str(Path(arguments.icsflow).resolve())
    checks = Checks()
    version = cargo_version()
    default_settings = tomllib.loads((DEPLOY / "config" / "icsflow.example.toml").read_text())
    check_prometheus(checks)
    check_grafana(checks)
    check_dockerfile(checks, icsflow)
    check_compose(checks, icsflow, version, default_settings)
    check_kubernetes(checks, icsflow, version)
    if not arguments.static_only:
        check_end_to_end(checks, icsflow, arguments.settle_seconds)
    if checks.failures:
        print(f"\n{len(checks.failures)} deploy check(s) failed:", file=sys.stderr)
        for failure in checks.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("\nevery deploy check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
