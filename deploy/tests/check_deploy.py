#!/usr/bin/env python3
"""Checks every artefact under deploy/ against the tools that read it and
against the icsflow binary itself; then runs the pipeline on simulated data
under a real Prometheus and evaluates every dashboard query and rule.

    python deploy/tests/check_deploy.py --icsflow target/debug/icsflow

`make test` runs it from a virtual environment holding PyYAML,
check-jsonschema, jsonschema and kubernetes-validate; promtool, prometheus,
kubectl, java and jshell come from the machine, the custom resources'
definitions from target/crds and Apache Kafka from target/kafka/libs (both
installed by `make deploy-check`). Each check prints one line; every failure
is listed at the end and the exit status is 1 if there was any.
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

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
TOOLS = Path(sys.executable).parent
ROLES = {"ingest", "join", "run"}
ADMIN_PATHS = {"/metrics", "/healthz", "/readyz"}
# The session timeouts a Kafka 4.1 broker accepts from a consumer of the
# classic group protocol (librdkafka's), by default:
# group.min.session.timeout.ms and group.max.session.timeout.ms.
BROKER_SESSION_TIMEOUT_MS = range(6_000, 1_800_000 + 1)
# librdkafka's max.poll.interval.ms, which the session timeout may not pass.
LIBRDKAFKA_MAX_POLL_INTERVAL_MS = 300_000
# What a drain's reschedule of a join pod takes once the old pod is gone:
# the StatefulSet recreates it under the same name, the scheduler places it
# on another node, the node pulls the image, the process starts and joins
# its group.
RESCHEDULE_SECONDS = 30


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
    checks.check(
        set(boards) == {"ics-flow-by-place.json", "pipeline-health.json", "data-quality.json"},
        "three dashboards provisioned",
        str(list(boards)),
    )
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
    # Completeness is green from the level IcsflowFieldCompletenessLow
    # compares with (the default of icsflow-thresholds.yml), red below it.
    completeness_level = float(
        re.search(
            r"record: icsflow:threshold:field_completeness_ratio_default\n\s+expr: vector\(([\d.]+)\)",
            (DEPLOY / "prometheus" / "rules" / "icsflow-thresholds.yml").read_text(),
        ).group(1)
    )
    completeness_panels = [
        (board_name, item)
        for board_name, board in boards.items()
        for item in board["panels"]
        if any("icsflow_quality_completeness_recorded:ratio" in target["expr"] for target in item.get("targets", []))
    ]
    checks.check(
        {board_name for board_name, _ in completeness_panels} == {"ics-flow-by-place.json", "data-quality.json"},
        "the place and data-quality dashboards show completeness",
        str([board_name for board_name, _ in completeness_panels]),
    )
    for board_name, item in completeness_panels:
        green = [step["value"] for step in item["fieldConfig"]["defaults"]["thresholds"]["steps"] if step["color"] == "green"]
        checks.check(
            green == [completeness_level],
            f"{board_name} / {item['title']}: green from the completeness level in icsflow-thresholds.yml",
            str(green),
        )
    checks.check(
        all(any(link.get("type") == "dashboards" and "icsflow" in link.get("tags", []) for link in board.get("links", [])) for board in boards.values()),
        "each dashboard links to the other icsflow dashboards",
    )
    quality_uid = boards.get("data-quality.json", {}).get("uid")
    checks.check(
        all(
            any(link.get("url") == f"/d/{quality_uid}" for link in boards.get(name, {}).get("links", []))
            for name in ("ics-flow-by-place.json", "pipeline-health.json")
        ),
        "the place and pipeline dashboards link to the data-quality dashboard",
    )
    variables = {variable["name"] for variable in flow.get("templating", {}).get("list", [])}
    checks.check({"place", "provider"} <= variables, "ICS flow by place has place and provider variables", str(variables))
    quality_variables = {variable["name"] for variable in boards.get("data-quality.json", {}).get("templating", {}).get("list", [])}
    checks.check("organisation" in quality_variables, "Data quality per partner has a partner variable", str(quality_variables))
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
    # The topics job creates the topics `icsflow topics` plans (the one
    # place for partitions and retention): every configured topic, the
    # journey topic kept longer than the eviction horizon.
    command = services["topics"]["command"]
    checks.check(command[0] == "topics" and "--create" in command, "compose's topics job runs `icsflow topics --create`", str(command))
    config = mapped_file(services["topics"], "/etc/icsflow/icsflow.toml", folder)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ICSFLOW__")}
    environment["ICSFLOW__REFERENCE__FILE"] = mapped_file(services["topics"], "/etc/icsflow/reference.toml", folder)
    result = subprocess.run([icsflow, "topics", "--config", config], capture_output=True, text=True, env=environment)
    planned = {}
    for line in result.stdout.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 4 and fields[2].isdigit():
            planned[fields[0]] = (int(fields[1]), int(fields[2]))
    topics = {key: name for key, name in default_settings["topics"].items() if key != "layout"}
    checks.check(set(planned) == set(topics.values()), "compose creates every configured topic", f"{planned} vs {topics}")
    horizon = default_settings["engine"]["eviction_horizon_days"]
    checks.check(
        planned.get(topics["journey"], (0, 0))[1] > horizon,
        f"journey topic retention exceeds the {horizon}-day eviction horizon",
    )


def mapped_file(service, target, folder):
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if len(parts) >= 2 and parts[1] == target:
            return str((folder / parts[0]).resolve())
    return target


# ----------------------------------------------------------------- Kubernetes


def check_kubernetes(checks, icsflow, version, crds):
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
    # Those two against the Prometheus Operator's own definitions instead.
    schemas = crd_schemas(checks, crds)
    check_crd_validation_refuses(checks, schemas)
    for document in yaml.safe_load_all(rendered["overlays/example"]):
        if document and document["kind"] in {"PodMonitor", "PrometheusRule"}:
            check_custom_resource(checks, schemas, document)
    checks.command(
        [sys.executable, DEPLOY / "k8s" / "render_monitoring.py", "--check"],
        "the k8s PrometheusRule and dashboard ConfigMaps are rendered from deploy/prometheus and deploy/grafana",
    )
    os.unlink(file.name)

    check_strimzi(checks, rendered["overlays/example"], schemas)

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
    # Each role's effective settings and environment, by workload.
    role_settings = {}
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
                role_settings[name] = (settings, environment)
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
    return check_availability(checks, by_kind, role_settings)
    for policy in by_kind.get("NetworkPolicy", []):
        pods = selected(policy["spec"]["podSelector"]["matchLabels"])
        names = {port for _, ports in pods for port in ports}
        for rule in policy["spec"]["ingress"]:
            for port in rule["ports"]:
                checks.check(port["port"] in names, f"k8s NetworkPolicy port {port['port']} is a named container port")


def selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def check_availability(checks, by_kind, role_settings):
    """What keeps the roles' partitions owned through a node drain or loss:
    replicas spread over nodes (and zones where there are zones), one pod of
    a role disrupted at a time, join's StatefulSet governed by a headless
    Service, and a session timeout that outlasts a join pod's reschedule.
    Returns join's group and session timeout, for the scale-down run."""
    join = {}
    workloads = {
        workload["metadata"]["name"]: workload
        for workload in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
        if workload["metadata"]["name"] in role_settings
    }
    pod_labels = {name: workload["spec"]["template"]["metadata"]["labels"] for name, workload in workloads.items()}
    every_pod_labels = [
        workload["spec"]["template"]["metadata"]["labels"]
        for workload in by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    ]

    def selects_only(selector, name):
        """The selector picks this workload's pods and no other workload's."""
        return selects(selector, pod_labels[name]) and sum(selects(selector, labels) for labels in every_pod_labels) == 1

    for name, workload in workloads.items():
        constraints = workload["spec"]["template"]["spec"].get("topologySpreadConstraints", [])
        by_key = {constraint["topologyKey"]: constraint for constraint in constraints}
        host = by_key.get("kubernetes.io/hostname", {})
        checks.check(
            host.get("maxSkew") == 1
            and host.get("whenUnsatisfiable") == "DoNotSchedule"
            and selects_only(host.get("labelSelector", {}).get("matchLabels", {}), name),
            f"k8s {name}: spread over nodes, at most one replica more on any node than another, counting its own pods",
            str(host),
        )
        # Without Honor a cordoned node counts as a node with no replica, so
        # the pod a drain evicts could go nowhere else.
        checks.check(
            host.get("nodeTaintsPolicy") == "Honor",
            f"k8s {name}: the node spread leaves out nodes the pod cannot go to (cordoned in a drain)",
        )
        zone = by_key.get("topology.kubernetes.io/zone", {})
        checks.check(
            zone.get("whenUnsatisfiable") == "ScheduleAnyway"
            and selects_only(zone.get("labelSelector", {}).get("matchLabels", {}), name),
            f"k8s {name}: spread over zones, as a preference (nodes without zones still schedule)",
            str(zone),
        )
        # A key the pods do not carry would leave the constraint counting
        # nothing; the controllers add these two to every pod they make.
        carried = set(pod_labels[name]) | {{"Deployment": "pod-template-hash", "StatefulSet": "controller-revision-hash"}[workload["kind"]]}
        for key in sorted({key for constraint in constraints for key in constraint.get("matchLabelKeys", [])}):
            checks.check(key in carried, f"k8s {name}: spread matchLabelKeys {key} is a label its pods carry")
        budgets = [
            budget
            for budget in by_kind.get("PodDisruptionBudget", [])
            if selects(budget["spec"]["selector"]["matchLabels"], pod_labels[name])
        ]
        checks.check(
            len(budgets) == 1
            and budgets[0]["spec"].get("maxUnavailable") == 1
            and "minAvailable" not in budgets[0]["spec"]
            and selects_only(budgets[0]["spec"]["selector"]["matchLabels"], name),
            f"k8s {name}: one PodDisruptionBudget, of its own pods, lets a drain take one at a time",
            str([budget["metadata"]["name"] for budget in budgets]),
        )
        settings, environment = role_settings[name]
        session = int(environment.get("ICSFLOW__KAFKA__SESSION_TIMEOUT_MS", settings["kafka"]["session_timeout_ms"]))
        max_poll = int(settings["kafka"].get("librdkafka", {}).get("max.poll.interval.ms", LIBRDKAFKA_MAX_POLL_INTERVAL_MS))
        checks.check(
            session in BROKER_SESSION_TIMEOUT_MS and session <= max_poll,
            f"k8s {name}: session timeout {session} ms is one a Kafka 4.1 broker accepts (6 s to 30 min) and within max.poll.interval.ms",
        )
        if workload["kind"] == "StatefulSet":
            grace = workload["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
            checks.check(
                session >= 1000 * (grace + RESCHEDULE_SECONDS),
                f"k8s {name}: session timeout ({session} ms) outlasts a drain's reschedule: the grace period ({grace} s) and {RESCHEDULE_SECONDS} s to place and start the new pod",
            )
            join = {"group_id": settings["join"]["group_id"], "session_timeout_ms": session}
            service_name = workload["spec"].get("serviceName")
            governing = [service for service in by_kind.get("Service", []) if service["metadata"]["name"] == service_name]
            checks.check(
                len(governing) == 1
                and governing[0]["spec"].get("clusterIP") == "None"
                and selects_only(governing[0]["spec"].get("selector", {}), name),
                f"k8s {name}: its serviceName ({service_name}) is a headless Service of its own pods",
            )
    return join


def crd_schemas(checks, crds):
    """{(apiVersion, kind): the CRD's version entry} from every definition
    in `crds` (make deploy-check puts the released ones there)."""
    paths = sorted(Path(crds).glob("*.yaml"))
    checks.check(
        len(paths) >= 4,
        f"the custom resources' definitions are in {crds}",
        "`make deploy-check` fetches and generates them (the Makefile's target/crds)",
    )
    schemas = {}
    for path in paths:
        definition = yaml.safe_load(path.read_text())
        group = definition["spec"]["group"]
        kind = definition["spec"]["names"]["kind"]
        for version in definition["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version
    return schemas


def strict_json_schema(node, branch=False):
    """A CRD's OpenAPI v3 schema as a JSON Schema that refuses fields it does
    not define, as the API server does under kubectl's strict field
    validation (where it would otherwise drop them unseen). Kubernetes'
    extensions (x-kubernetes-*) are dropped; the CEL rules they carry are not
    evaluated here. A branch of allOf, anyOf, oneOf or not only adds
    conditions to the fields its parent defines, so it refuses none."""
    if isinstance(node, list):
        return [strict_json_schema(item, branch) for item in node]
    if not isinstance(node, dict):
        return node
    schema = {
        key: strict_json_schema(value, key in {"allOf", "anyOf", "oneOf", "not"})
        for key, value in node.items()
        if not key.startswith("x-kubernetes-")
    }
    if node.get("nullable") and "type" in schema:
        schema["type"] = [schema["type"], "null"]
    schema.pop("nullable", None)
    if (
        "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and not branch
    ):
        schema["additionalProperties"] = False
    return schema


def custom_resource_problems(schemas, document):
    """Why the API server would refuse the custom resource, or []."""
    version = schemas.get((document.get("apiVersion"), document.get("kind")))
    if version is None:
        return [f"no definition of {document.get('kind')} in {document.get('apiVersion')}"]
    if not version.get("served"):
        return [f"{document['apiVersion']} {document['kind']} is defined but not served"]
    validator = jsonschema.Draft4Validator(strict_json_schema(version["schema"]["openAPIV3Schema"]))
    return [
        f"{'.'.join(str(part) for part in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda error: list(map(str, error.absolute_path)))
    ]


def check_custom_resource(checks, schemas, document):
    problems = custom_resource_problems(schemas, document)
    checks.check(
        not problems,
        f"{document['kind']} {document['metadata']['name']} is valid {document['apiVersion']} by its CustomResourceDefinition",
        "\n      ".join(problems[:10]),
    )


def check_crd_validation_refuses(checks, schemas):
    """The validation can fail: what the operators would refuse, it refuses."""
    broken = {
        "a PodMonitor endpoint with a field the CRD does not define": {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {"name": "broken"},
            "spec": {"selector": {}, "podMetricsEndpoints": [{"port": "admin", "scrapeEvery": "15s"}]},
        },
        "a PrometheusRule group evaluated at an interval Prometheus cannot read": {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {"name": "broken"},
            "spec": {"groups": [{"name": "icsflow", "interval": "every minute", "rules": []}]},
        },
        "a KafkaUser ACL with an operation Kafka does not have": {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaUser",
            "metadata": {"name": "broken"},
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {"type": "simple", "acls": [{"resource": {"type": "topic", "name": "t"}, "operations": ["Writ"]}]},
            },
        },
        "a KafkaTopic with partitions as text": {
            "apiVersion": "kafka.strimzi.io/v1beta2",
            "kind": "KafkaTopic",
            "metadata": {"name": "broken"},
            "spec": {"partitions": "three"},
        },
        "a KafkaTopic of an API version Strimzi never served": {
            "apiVersion": "kafka.strimzi.io/v2",
            "kind": "KafkaTopic",
            "metadata": {"name": "broken"},
            "spec": {},
        },
    }
    for what, document in broken.items():
        checks.check(bool(custom_resource_problems(schemas, document)), f"CRD validation refuses {what}")


def check_strimzi(checks, example, schemas):
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
    # Against Strimzi's own definitions, in the API version each names
    # (which the definitions must serve), and as kafka.strimzi.io/v1 too:
    # Strimzi 1.0 and later serve v1 alone.
    for document in documents:
        check_custom_resource(checks, schemas, document)
    as_v1 = [(document, dict(document, apiVersion="kafka.strimzi.io/v1")) for document in documents]
    refused = [
        f"{document['kind']} {document['metadata']['name']}: {problems}"
        for document, problems in ((document, custom_resource_problems(schemas, v1)) for document, v1 in as_v1)
        if problems
    ]
    checks.check(
        not refused,
        f"the {len(documents)} Strimzi resources are valid as kafka.strimzi.io/v1 too (Strimzi 1.0 and later serve v1 alone)",
        "\n      ".join(refused[:10]),
    )
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


def stop_all(processes, stop_signal):
    """Signals every process still running (the last started first), then
    waits up to 30 s for each, killing any that does not stop."""
    for process in reversed(processes):
        if process.poll() is None:
            process.send_signal(stop_signal)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


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
    for name in ("place", "provider", "pathway", "reason_family", "organisation"):
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
        # The simulated partners publish nothing that links to no journey
        # (metric 11) once their records are all in, so one social-care
        # event for a person no trust reported goes in through `icsflow
        # publish`, as a partner's would: the data-quality panel then has
        # its series.
        broker = re.search(r"broker (\S+) \(embedded", (scratch / "demo.log").read_text()).group(1)
        unlinked = dict(
            json.loads((ROOT / "schemas" / "examples" / "social_care.jsonl").read_text().splitlines()[0]),
            event_id="5e1f0c2a-9d4b-4c6e-8a1f-00000000e2e1",
            source_organisation="840",
            place="E06000047",
            patient_pseudonym="e2" * 32,
            episode_reference=None,
            occurred_at=int(time.time() * 1000) - 3_600_000,
            recorded_at=int(time.time() * 1000) - 3_000_000,
        )
        (scratch / "unlinked.jsonl").write_text(json.dumps(unlinked) + "\n")
        checks.command(
            [icsflow, "publish", "--feed", "social_care", "-b", broker, scratch / "unlinked.jsonl"],
            "icsflow publish puts a partner's record on the demo's broker",
        )
        wait_for(
            "the unlinked event counted",
            lambda: "icsflow_quality_unlinked_events{" in http_get(f"http://{admin}/metrics"),
            60,
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
        # icsflow quality reads one partner's figures from this Prometheus:
        # the trust that omits most delay reasons (RR7) shows it, and its
        # figures are RR7's own series (the sum over every partner, which
        # a report mixing in another's would give, is larger), read from
        # Prometheus before and after the report since the demo runs on.
        def own_counts():
            return {
                series["metric"]["field"]: float(series["value"][1])
                for series in instant_query(
                    prometheus_address,
                    'sum by (field) (icsflow_quality_completeness_records_window{organisation="RR7", period="7d", recorded="yes"})',
                )
            }

        before = own_counts()
        report = subprocess.run(
            [icsflow, "quality", "--organisation", "RR7", "--prometheus-url", f"http://{prometheus_address}", "--format", "jsonl"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        after = own_counts()
        everyone = {
            series["metric"]["field"]: float(series["value"][1])
            for series in instant_query(
                prometheus_address,
                'sum by (field) (icsflow_quality_completeness_records_window{period="7d", recorded="yes"})',
            )
        }
        lines = [json.loads(line) for line in report.stdout.splitlines() if line.strip()]
        completeness = {line["field"]: line for line in lines if line.get("measure") == "completeness"}
        reasons = completeness.get("delay_reason")
        share = (
            reasons["recorded"] / (reasons["recorded"] + reasons["not_recorded"])
            if reasons and reasons["recorded"] + reasons["not_recorded"] > 0
            else None
        )
        own = all(
            min(before.get(field, 0), after.get(field, 0)) <= line["recorded"] <= max(before.get(field, 0), after.get(field, 0))
            for field, line in completeness.items()
        )
        others_larger = any(everyone.get(field, 0) > max(before.get(field, 0), after.get(field, 0)) for field in completeness)
        checks.check(
            report.returncode == 0 and completeness and own and others_larger and share is not None and share < 0.7,
            "icsflow quality --prometheus-url: one partner's figures, its own series only, from a real Prometheus (RR7 records few delay reasons)",
            f"exit {report.returncode}, delay reasons recorded {share}, own {own}, others larger {others_larger}; "
            f"{report.stderr[-500:]} {report.stdout[:500]}",
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
        stop_all(processes, signal.SIGINT)
        shutil.rmtree(scratch, ignore_errors=True)


def check_scale_down(checks, icsflow, kafka_libs, join):
    """The scale-down of deploy/README.md on a real Kafka broker: two join
    replicas as static members (the StatefulSet's pod names) with the
    manifests' session timeout; one stops, as a scale-down stops it, and its
    partitions stay unowned; deploy/k8s/remove-static-members.jsh takes it
    out of the group and the other replica owns them all at once."""
    group, session_ms = join.get("group_id"), join.get("session_timeout_ms")
    jshell = shutil.which("jshell")
    if not checks.check(
        bool(group and session_ms) and jshell is not None and any(kafka_libs.glob("kafka_2.13-*.jar")),
        "scale-down: join's settings, jshell (a JDK) and Apache Kafka's jars are at hand",
        f"jshell: {jshell}; Kafka: {kafka_libs} (make kafka)",
    ):
        return
    scratch = Path(tempfile.mkdtemp(prefix="icsflow-scale-down-"))
    processes = []
    broker_port, controller_port = free_port(), free_port()
    bootstrap = f"127.0.0.1:{broker_port}"
    (scratch / "server.properties").write_text(
        f"""process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://{bootstrap},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://{bootstrap}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={scratch / "data"}
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=2097152
"""
    )
    (scratch / "log4j2.properties").write_text(
        "status = error\nappender.out.type = Console\nappender.out.name = OUT\n"
        "appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = %p %m%n\n"
        "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = OUT\n"
        "logger.started.name = kafka.server.KafkaRaftServer\nlogger.started.level = INFO\n"
    )
    java = ["java", "-Xmx256m", f"-Dlog4j2.configurationFile={scratch / 'log4j2.properties'}", "-cp", f"{kafka_libs}/*"]
    replicas = {}

    def owned(name):
        text = http_get(f"http://{replicas[name][1]}/metrics")
        found = re.search(r"^icsflow_join_owned_partitions (\d+)", text, re.MULTILINE)
        return int(found.group(1)) if found else None

    def remove(member):
        environment = dict(os.environ, BOOTSTRAP_SERVERS=bootstrap, GROUP=group, MEMBERS=member)
        return subprocess.run(
            [jshell, "-J-Xmx128m", "-R-Xmx128m", "--class-path", f"{kafka_libs}/*", DEPLOY / "k8s" / "remove-static-members.jsh"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", "--standalone", "-t", "aWNzZmxvdy1zY2FsZS1kb3du", "-c", scratch / "server.properties"],
            check=True,
            capture_output=True,
        )
        processes.append(subprocess.Popen([*java, "kafka.Kafka", scratch / "server.properties"], stdout=open(scratch / "kafka.log", "w"), stderr=subprocess.STDOUT))
        wait_for("the Kafka broker", lambda: "Kafka Server started" in (scratch / "kafka.log").read_text(), 90)
        settings = tomllib.loads((DEPLOY / "config" / "icsflow.example.toml").read_text())
        subprocess.run(
            [*java, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", bootstrap, "--create",
             "--topic", settings["topics"]["journey"], "--partitions", "6"],
            check=True,
            capture_output=True,
        )
        config = scratch / "icsflow.toml"
        config.write_text(
            f'[kafka]\nbootstrap_servers = "{bootstrap}"\nsession_timeout_ms = {session_ms}\n'
            f'[join]\ngroup_id = "{group}"\n'
            f'[reference]\nfile = "{DEPLOY / "config" / "reference.toml"}"\n'
        )
        for name in ["icsflow-join-0", "icsflow-join-1"]:
            admin = f"127.0.0.1:{free_port()}"
            environment = {key: value for key, value in os.environ.items() if not key.startswith("ICSFLOW__")}
            environment["ICSFLOW__KAFKA__GROUP_INSTANCE_ID"] = name
            log = open(scratch / f"{name}.log", "w")
            processes.append(subprocess.Popen([icsflow, "join", "--config", config, "--admin-addr", admin], env=environment, stdout=log, stderr=subprocess.STDOUT))
            replicas[name] = (processes[-1], admin)
        wait_for("both replicas owning 3 partitions", lambda: owned("icsflow-join-0") == 3 and owned("icsflow-join-1") == 3, 60)
        checks.check(True, "scale-down: two join replicas, static members of their group, own 3 of the 6 journey partitions each")
        stopping = replicas["icsflow-join-1"][0]
        stopping.send_signal(signal.SIGTERM)
        stopping.wait(timeout=30)
        stopped = time.monotonic()
        time.sleep(5)
        checks.check(
            owned("icsflow-join-0") == 3,
            f"scale-down: a static member that stops keeps its partitions, unowned, for the session timeout ({session_ms // 1000} s)",
        )
        result = remove("icsflow-join-1")
        removed = time.monotonic()
        checks.check(
            result.returncode == 0 and "removed icsflow-join-1" in result.stdout,
            "scale-down: remove-static-members.jsh takes the stopped replica out of the group",
            (result.stdout + result.stderr)[-2000:],
        )
        wait_for("the remaining replica owning all 6 partitions", lambda: owned("icsflow-join-0") == 6, 20)
        checks.check(
            True,
            f"scale-down: the remaining replica owns all 6 partitions {time.monotonic() - removed:.0f} s after the removal "
            f"({time.monotonic() - stopped:.0f} s after the stop, not {session_ms // 1000} s)",
        )
        again = remove("icsflow-join-1")
        checks.check(
            again.returncode == 1 and "UnknownMemberId" in again.stderr,
            "scale-down: remove-static-members.jsh exits 1 and says why for a member that is not in the group",
            (again.stdout + again.stderr)[-2000:],
        )
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        logs = "".join(f"\n--- {path.name}\n" + path.read_text()[-1500:] for path in sorted(scratch.glob("*.log")))
        checks.check(False, f"scale-down: {error}", logs)
    finally:
        stop_all(processes, signal.SIGTERM)
        shutil.rmtree(scratch, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--icsflow", required=True, help="the built icsflow binary")
    parser.add_argument("--settle-seconds", type=float, default=15, help="scraping time before the queries")
    parser.add_argument("--static-only", action="store_true", help="skip the end-to-end runs")
    parser.add_argument("--crds", default=str(ROOT / "target" / "crds"), help="the custom resources' CustomResourceDefinitions (make deploy-check puts them in target/crds)")
    parser.add_argument("--kafka-libs", default=str(ROOT / "target" / "kafka" / "libs"), help="Apache Kafka's jars, for the scale-down run (make kafka)")
    arguments = parser.parse_args()
    icsflow = str(Path(arguments.icsflow).resolve())
    checks = Checks()
    version = cargo_version()
    default_settings = tomllib.loads((DEPLOY / "config" / "icsflow.example.toml").read_text())
    check_prometheus(checks)
    check_grafana(checks)
    check_dockerfile(checks, icsflow)
    check_compose(checks, icsflow, version, default_settings)
    join = check_kubernetes(checks, icsflow, version, arguments.crds)
    if not arguments.static_only:
        check_end_to_end(checks, icsflow, arguments.settle_seconds)
        check_scale_down(checks, icsflow, Path(arguments.kafka_libs), join)
    if checks.failures:
        print(f"\n{len(checks.failures)} deploy check(s) failed:", file=sys.stderr)
        for failure in checks.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print("\nevery deploy check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
