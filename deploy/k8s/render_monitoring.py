"""Renders the Kubernetes monitoring resources from the files compose uses,
so the two cannot drift: the PrometheusRule (every group of
deploy/prometheus/rules/*.yml) and one ConfigMap per Grafana dashboard
(deploy/grafana/dashboards/*.json, labelled for Grafana's dashboard
sidecar), into deploy/k8s/base/monitoring/.

    python deploy/k8s/render_monitoring.py          # write
    python deploy/k8s/render_monitoring.py --check  # exit 1 if stale

`make test` runs the check through deploy/tests/check_deploy.py."""

import json
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent.parent
OUT = DEPLOY / "k8s" / "base" / "monitoring"
HEADER = "# Rendered by deploy/k8s/render_monitoring.py from {source}; edit that, not this.\n"


def prometheus_rule():
    groups = []
    for path in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "icsflow",
            # Match your Prometheus's ruleSelector (kube-prometheus-stack
            # selects release: <its release name> by default).
            "labels": {"app.kubernetes.io/part-of": "icsflow", "role": "alert-rules"},
        },
        "spec": {"groups": groups},
    }
    return HEADER.format(source="deploy/prometheus/rules/*.yml") + yaml.safe_dump(resource, sort_keys=False, width=1000)


def dashboards():
    documents = []
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        documents.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "icsflow-dashboard-" + path.stem,
                    # Grafana's dashboard sidecar loads ConfigMaps with this label.
                    "labels": {"app.kubernetes.io/part-of": "icsflow", "grafana_dashboard": "1"},
                },
                "data": {path.name: json.dumps(json.loads(path.read_text()), indent=1, sort_keys=True) + "\n"},
            }
        )
    return HEADER.format(source="deploy/grafana/dashboards/*.json") + yaml.safe_dump_all(documents, sort_keys=False, width=1000)


def main(argv):
    rendered = {OUT / "prometheusrule.yaml": prometheus_rule(), OUT / "grafana-dashboards.yaml": dashboards()}
    stale = [path for path, text in rendered.items() if not path.exists() or path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(DEPLOY.parent)} is stale: run python deploy/k8s/render_monitoring.py")
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for path, text in rendered.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(DEPLOY.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
