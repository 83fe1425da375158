"""Checks of everything under deploy/ that can be checked without Docker or a cluster.

- every YAML file parses (PyYAML);
- every built-in Kubernetes manifest passes `kubernetes-validate` (offline OpenAPI schemas, strict:
  unknown fields are errors) for the oldest and the newest Kubernetes version we support;
- the CRDs that package has no schema for (KEDA ScaledObject/TriggerAuthentication, Prometheus
  Operator ServiceMonitor/PrometheusRule) against minimal schemas written here (required fields and
  types of the parts we use, from the KEDA 2.17 and Prometheus Operator v1 docs), since the real
  CRD schemas are not available offline;
- references: every volume a container mounts is defined in its pod; every ConfigMap, Secret,
  PersistentVolumeClaim and ServiceAccount a pod uses (volumes, env valueFrom, envFrom) is defined
  under deploy/k8s with the keys read from it (or allow-listed in EXTERNAL with a reason); every
  $(VAR) in a command is defined; selectors and named ports match. A deliberately broken copy of the
  manifests must fail this check (negative tests);
- the scorer TOML in the ConfigMap and in the compose stack names only config fields of
  scorer/src/config.rs (plus the fields announced by the lead that are landing now, ANNOUNCED), and
  so do the SCORER__* environment variables; cross-file invariants (ports, timeouts, topics,
  partitions = KEDA's maximum, KEDA's brokers = the scorer's, shard count = completions);
- the alert rules: the compose rule file equals the PrometheusRule, every scorer_* metric they use
  exists in scorer/src/metrics.rs, every alert has a section in docs/operations.md;
- Dockerfiles: base images pinned (a tag, never `latest`), the Rust image = rust-toolchain.toml,
  every ONNX Runtime version = requirements.txt (they drifted once), torch = requirements.txt,
  non-root final stages, ORT_DYLIB_PATH set; .dockerignore keeps what cargo needs;
- the compose file: services use defined networks and volumes, images pinned;
- the model-sync script of the scorer pods, run for real against a fake `aws` command.

A missing dependency (PyYAML, kubernetes-validate) is an import error here: the module fails, it is
never skipped.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import re
import shutil
import stat
import subprocess
import time
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "docker-compose.yml"
ALERTS = DEPLOY / "compose" / "prometheus" / "alerts.yml"
NAMESPACE = "trendscore"

# Oldest Kubernetes we support (Indexed Job backoffLimitPerIndex is beta and on by default from
# 1.29) and the newest the installed kubernetes-validate has schemas for.
K8S_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]

# Objects the manifests may reference without defining them under deploy/k8s: (kind, name) ->
# why. Empty: the Secrets are defined (as examples) in deploy/k8s/examples/.
EXTERNAL: dict[tuple[str, str], str] = {}

# Metrics the alert rules may use that the scorer does not export: name -> who exports it.
EXTERNAL_METRICS = {
    "up": "Prometheus itself (scrape health)",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
}

# Config fields the lead is adding to scorer/src/config.rs now (issue 10); allowed here before they
# land so the manifests can use them. None = a scalar field; a dict = a section.
ANNOUNCED = {
    "kafka": {
        "group_instance_id": None,
        "create_topics": None,
        "security": {
            "protocol": None,
            "sasl_mechanism": None,
            "sasl_username": None,
            "sasl_password_file": None,
            "sasl_password_env": None,
            "ca_file": None,
            "cert_file": None,
            "key_file": None,
        },
    },
    "sink": {"object_store": {"endpoint": None, "region": None, "allow_http": None}},
    "health": {"stall_timeout_ms": None},
}
SECURITY_PROTOCOLS = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl"}
SASL_MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
CRD_GROUPS = {"keda.sh", "monitoring.coreos.com"}


# ---------------------------------------------------------------------------------------------
# Loading


def yaml_files(under: Path = DEPLOY) -> list[Path]:
    return sorted(p for p in under.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def load_docs(path: Path) -> list[dict]:
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def manifests(under: Path = K8S) -> list[tuple[Path, dict]]:
    """Every Kubernetes object under `under` (the kustomization file is not one)."""
    out = []
    for p in yaml_files(under):
        if p.name == "kustomization.yaml":
            continue
        out.extend((p, d) for d in load_docs(p))
    return out


def by_kind(docs, kind: str) -> list[dict]:
    return [d for _, d in docs if d.get("kind") == kind]


def one(docs, kind: str, name: str) -> dict:
    found = [d for d in by_kind(docs, kind) if d["metadata"].get("name") == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in POD_KINDS:
        return doc["spec"]["template"]["spec"]
    if doc.get("kind") == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if doc.get("kind") == "Pod":
        return doc["spec"]
    return None


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers", [])) + list(spec.get("containers", []))


def doc_name(doc: dict) -> str:
    m = doc.get("metadata", {})
    return f"{doc.get('kind')}/{m.get('name') or m.get('generateName', '?')}"


def api_group(doc: dict) -> str:
    av = doc.get("apiVersion", "")
    return av.split("/")[0] if "/" in av else ""


def scorer_toml() -> dict:
    cm = one(manifests(), "ConfigMap", "trendscore-scorer-config")
    return tomllib.loads(cm["data"]["scorer.toml"])


# ---------------------------------------------------------------------------------------------
# Every YAML file parses


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_parses(path):
    docs = load_docs(path)
    assert docs, f"{path}: no YAML document"
    for d in docs:
        assert isinstance(d, dict), f"{path}: a document is not a mapping"


def test_deploy_has_the_expected_files():
    # The pieces deploy/README.md describes; a rename must update the docs and this test.
    for rel in [
        "docker/scorer.Dockerfile",
        "docker/trainer.Dockerfile",
        "docker/trainer-requirements.txt",
        "k8s/kustomization.yaml",
        "k8s/jobs/backfill-job.yaml",
        "k8s/examples/secrets.example.yaml",
        "compose/docker-compose.yml",
        "compose/scorer.toml",
        "compose/prometheus/prometheus.yml",
        "compose/prometheus/alerts.yml",
        "README.md",
        "broker/README.md",
    ]:
        assert (DEPLOY / rel).is_file(), rel
    assert (ROOT / ".dockerignore").is_file()
    assert (ROOT / "docs" / "operations.md").is_file()


# ---------------------------------------------------------------------------------------------
# Kubernetes schemas


def builtin_cases():
    cases = []
    for path, doc in manifests():
        if api_group(doc) in CRD_GROUPS:
            continue
        for v in K8S_VERSIONS:
            cases.append(pytest.param(doc, v, id=f"{path.relative_to(K8S)}:{doc_name(doc)}@{v}"))
    return cases


@pytest.mark.parametrize("doc,version", builtin_cases())
def test_builtin_manifest_validates(doc, version):
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(x) for x in e.path)
        pytest.fail(f"{doc_name(doc)} @ {version}: {path}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        pytest.fail(f"{doc_name(doc)}: no schema ({e.message}); a CRD needs a schema in CRD_SCHEMAS")


def test_kubernetes_validate_catches_a_bad_manifest():
    # The validator itself must be able to fail: an unknown field and a wrong type.
    dep = copy.deepcopy(one(manifests(), "Deployment", "trendscore-scorer"))
    dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSIONS[-1], strict=True)
    dep = copy.deepcopy(one(manifests(), "Deployment", "trendscore-scorer"))
    dep["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "soon"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, K8S_VERSIONS[-1], strict=True)


_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "additionalProperties": False,
}
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
_LABEL_SELECTOR = {
    "type": "object",
    "properties": {"matchLabels": _STR_MAP, "matchExpressions": {"type": "array"}},
    "additionalProperties": False,
}


def _crd(api_version: str, kind: str, spec: dict) -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": api_version},
            "kind": {"const": kind},
            "metadata": _META,
            "spec": spec,
        },
        "additionalProperties": False,
    }


# Minimal schemas of the CRDs we use (not the full CRDs: those are not available offline).
CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): _crd(
        "keda.sh/v1alpha1",
        "ScaledObject",
        {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                    "additionalProperties": False,
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {
                    "type": "object",
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                            "additionalProperties": False,
                        },
                    },
                    "additionalProperties": False,
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "metadata": _STR_MAP,  # every value is a string in KEDA
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                                "additionalProperties": False,
                            },
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
    ("keda.sh/v1alpha1", "TriggerAuthentication"): _crd(
        "keda.sh/v1alpha1",
        "TriggerAuthentication",
        {
            "type": "object",
            "properties": {
                "secretTargetRef": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["parameter", "name", "key"],
                        "properties": {
                            "parameter": {"type": "string"},
                            "name": {"type": "string"},
                            "key": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                },
                "env": {"type": "array"},
                "podIdentity": {"type": "object"},
            },
            "additionalProperties": False,
        },
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _crd(
        "monitoring.coreos.com/v1",
        "ServiceMonitor",
        {
            "type": "object",
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": _LABEL_SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                    "additionalProperties": False,
                },
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
    ("monitoring.coreos.com/v1", "PrometheusRule"): _crd(
        "monitoring.coreos.com/v1",
        "PrometheusRule",
        {
            "type": "object",
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string"},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr"],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]*$"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _DURATION,
                                        "labels": _STR_MAP,
                                        "annotations": _STR_MAP,
                                    },
                                    "additionalProperties": False,
                                },
                            },
                        },
                        "additionalProperties": False,
                    },
                },
            },
            "additionalProperties": False,
        },
    ),
}


def crd_cases():
    return [
        pytest.param(doc, id=f"{path.relative_to(K8S)}:{doc_name(doc)}")
        for path, doc in manifests()
        if api_group(doc) in CRD_GROUPS
    ]


@pytest.mark.parametrize("doc", crd_cases())
def test_crd_manifest_matches_minimal_schema(doc):
    schema = CRD_SCHEMAS.get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"{doc_name(doc)}: no minimal schema for {doc['apiVersion']} {doc['kind']}"
    jsonschema.validate(doc, schema)


def test_every_crd_kind_we_use_has_a_schema_and_is_present():
    kinds = {(d["apiVersion"], d["kind"]) for _, d in manifests() if api_group(d) in CRD_GROUPS}
    assert kinds == set(CRD_SCHEMAS), kinds ^ set(CRD_SCHEMAS)


def test_crd_schema_catches_a_bad_manifest():
    so = copy.deepcopy(one(manifests(), "ScaledObject", "trendscore-scorer"))
    so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 50000  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(so, CRD_SCHEMAS[("keda.sh/v1alpha1", "ScaledObject")])


# ---------------------------------------------------------------------------------------------
# References between manifests


def _labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def reference_problems(docs: list[tuple[Path, dict]]) -> list[str]:
    """Every broken reference in `docs`, as sentences; empty when all resolve."""
    problems: list[str] = []
    defined: dict[tuple[str, str], dict] = {}
    for _, d in docs:
        name = d.get("metadata", {}).get("name")
        if name:
            defined[(d["kind"], name)] = d

    def data_keys(d: dict) -> set[str]:
        return set(d.get("data") or {}) | set(d.get("stringData") or {}) | set(d.get("binaryData") or {})

    def need(kind: str, name: str, where: str, key: str | None = None, optional: bool = False):
        if (kind, name) in EXTERNAL:
            return
        obj = defined.get((kind, name))
        if obj is None:
            problems.append(f"{where}: {kind} {name!r} is not defined in deploy/k8s")
            return
        if key is not None and not optional and key not in data_keys(obj):
            problems.append(f"{where}: {kind} {name!r} has no key {key!r}")

    for path, d in docs:
        spec = pod_spec(d)
        if spec is None:
            continue
        where0 = f"{path.name}:{doc_name(d)}"
        vols = [v["name"] for v in spec.get("volumes", [])]
        if len(vols) != len(set(vols)):
            problems.append(f"{where0}: duplicate volume names {vols}")
        sa = spec.get("serviceAccountName")
        if sa:
            need("ServiceAccount", sa, where0)
        for v in spec.get("volumes", []):
            w = f"{where0}: volume {v['name']!r}"
            if "configMap" in v:
                cm = v["configMap"]
                opt = cm.get("optional", False)
                need("ConfigMap", cm["name"], w)
                for it in cm.get("items", []):
                    need("ConfigMap", cm["name"], w, it["key"], opt)
            if "secret" in v:
                s = v["secret"]
                opt = s.get("optional", False)
                need("Secret", s["secretName"], w)
                for it in s.get("items", []):
                    need("Secret", s["secretName"], w, it["key"], opt)
            if "persistentVolumeClaim" in v:
                need("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"], w)
            for src in v.get("projected", {}).get("sources", []):
                if "configMap" in src:
                    need("ConfigMap", src["configMap"]["name"], w)
                if "secret" in src:
                    need("Secret", src["secret"]["name"], w)
        for c in containers(spec):
            w = f"{where0}: container {c['name']!r}"
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    problems.append(f"{w}: mounts volume {m['name']!r}, which the pod does not define")
            env_names = set()
            for ef in c.get("envFrom", []):
                prefix = ef.get("prefix", "")
                for kind, ref in (("ConfigMap", ef.get("configMapRef")), ("Secret", ef.get("secretRef"))):
                    if ref is None:
                        continue
                    need(kind, ref["name"], f"{w} envFrom")
                    obj = defined.get((kind, ref["name"]))
                    if obj is not None:
                        env_names |= {prefix + k for k in data_keys(obj)}
            for e in c.get("env", []):
                env_names.add(e["name"])
                vf = e.get("valueFrom", {})
                for kind, ref in (
                    ("ConfigMap", vf.get("configMapKeyRef")),
                    ("Secret", vf.get("secretKeyRef")),
                ):
                    if ref is not None:
                        need(kind, ref["name"], f"{w} env {e['name']}", ref["key"], ref.get("optional", False))
            # $(VAR) in command/args must be defined in the container's environment.
            for arg in list(c.get("command", [])) + list(c.get("args", [])):
                for var in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", arg):
                    if var not in env_names:
                        problems.append(f"{w}: $({var}) in its command is not in its environment")
            ports = {p.get("name") for p in c.get("ports", [])}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                port = c.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in ports:
                    problems.append(f"{w}: {probe} uses port {port!r}, which the container does not name")

    workloads = [(d, d["spec"]["template"]["metadata"].get("labels", {})) for _, d in docs if d.get("kind") in POD_KINDS and "template" in d.get("spec", {})]
    for _, d in docs:
        kind = d.get("kind")
        w = doc_name(d)
        if kind == "Service":
            sel = d["spec"].get("selector", {})
            matched = [wd for wd, labels in workloads if _labels_match(sel, labels)]
            if not matched:
                problems.append(f"{w}: selector {sel} matches no pod template")
            for p in d["spec"].get("ports", []):
                tp = p.get("targetPort")
                if isinstance(tp, str) and not any(
                    tp in {cp.get("name") for c in containers(pod_spec(wd)) for cp in c.get("ports", [])}
                    for wd in matched
                ):
                    problems.append(f"{w}: targetPort {tp!r} is not a named port of the selected pods")
        if kind == "PodDisruptionBudget":
            sel = d["spec"]["selector"].get("matchLabels", {})
            if not any(_labels_match(sel, labels) for _, labels in workloads):
                problems.append(f"{w}: selector {sel} matches no pod template")
        if kind == "ServiceMonitor":
            sel = d["spec"]["selector"].get("matchLabels", {})
            services = [s for s in by_kind(docs, "Service") if _labels_match(sel, s["metadata"].get("labels", {}))]
            if not services:
                problems.append(f"{w}: selector {sel} matches no Service's labels")
            names = d["spec"].get("namespaceSelector", {}).get("matchNames")
            for s in services:
                if names is not None and s["metadata"].get("namespace") not in names:
                    problems.append(f"{w}: namespaceSelector excludes Service {s['metadata']['name']}")
            for ep in d["spec"]["endpoints"]:
                if ep.get("port") and not any(ep["port"] in {p.get("name") for p in s["spec"]["ports"]} for s in services):
                    problems.append(f"{w}: endpoint port {ep['port']!r} is not a port name of the Service")
        if kind == "ScaledObject":
            t = d["spec"]["scaleTargetRef"]
            need(t.get("kind", "Deployment"), t["name"], f"{w} scaleTargetRef")
            for trig in d["spec"]["triggers"]:
                ref = trig.get("authenticationRef")
                if ref:
                    need(ref.get("kind", "TriggerAuthentication"), ref["name"], f"{w} authenticationRef")
        if kind == "TriggerAuthentication":
            for ref in d["spec"].get("secretTargetRef", []):
                need("Secret", ref["name"], f"{w} secretTargetRef {ref['parameter']}", ref["key"])
    return problems


def test_manifests_reference_only_what_they_define():
    problems = reference_problems(manifests())
    assert not problems, "\n".join(problems)


BROKEN = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
  namespace: trendscore
spec:
  selector:
    matchLabels: {app: broken}
  template:
    metadata:
      labels: {app: broken}
    spec:
      containers:
        - name: c
          image: trendscore-scorer:0.1.0
          env:
            - name: PASSWORD
              valueFrom:
                secretKeyRef: {name: no-such-secret, key: password}
          volumeMounts:
            - {name: undefined-volume, mountPath: /data}
            - {name: predictions, mountPath: /predictions}
      volumes:
        - name: predictions
          persistentVolumeClaim: {claimName: no-such-claim}
"""


def test_a_manifest_with_an_undefined_volume_or_secret_fails(tmp_path):
    # The real manifests plus one broken file, in a temporary directory, through the same check.
    shutil.copytree(K8S, tmp_path / "k8s")
    (tmp_path / "k8s" / "broken.yaml").write_text(BROKEN)
    problems = reference_problems(manifests(tmp_path / "k8s"))
    text = "\n".join(problems)
    assert "mounts volume 'undefined-volume'" in text, text
    assert "Secret 'no-such-secret' is not defined" in text, text
    assert "PersistentVolumeClaim 'no-such-claim' is not defined" in text, text
    assert len(problems) == 3, text


def test_removing_a_volume_or_a_secret_key_from_the_real_manifests_fails(tmp_path):
    shutil.copytree(K8S, tmp_path / "k8s")
    scorer = tmp_path / "k8s" / "scorer.yaml"
    docs = load_docs(scorer)
    spec = docs[0]["spec"]["template"]["spec"]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "kafka-credentials"]
    scorer.write_text(yaml.safe_dump_all(docs))
    secrets = tmp_path / "k8s" / "examples" / "secrets.example.yaml"
    sdocs = load_docs(secrets)
    del sdocs[0]["stringData"]["username"]
    secrets.write_text(yaml.safe_dump_all(sdocs))
    text = "\n".join(reference_problems(manifests(tmp_path / "k8s")))
    assert "mounts volume 'kafka-credentials', which the pod does not define" in text, text
    assert "Secret 'trendscore-kafka' has no key 'username'" in text, text
    # The Secret's removal is caught too (envFrom, volumes, KEDA's TriggerAuthentication).
    secrets.unlink()
    text = "\n".join(reference_problems(manifests(tmp_path / "k8s")))
    assert "Secret 'trendscore-kafka' is not defined" in text, text
    assert "TriggerAuthentication/trendscore-kafka secretTargetRef password" in text, text


def test_kustomization_lists_the_applied_manifests_and_never_the_examples():
    k = load_docs(K8S / "kustomization.yaml")[0]
    assert k["kind"] == "Kustomization"
    assert k["namespace"] == NAMESPACE
    listed = set(k["resources"])
    for r in listed:
        assert (K8S / r).is_file(), f"kustomization lists missing {r}"
    top = {p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"}
    assert listed == top, f"not listed: {top - listed}; not top-level files: {listed - top}"
    assert not any(r.startswith(("examples", "jobs")) for r in listed)
    for _, d in manifests(K8S / "examples"):
        assert d["kind"] == "Secret"
        assert d["metadata"]["annotations"]["trendscore.io/example"] == "true"
        for v in (d.get("stringData") or {}).values():
            assert v.startswith("EXAMPLE-ONLY"), "example secrets hold placeholders only"
    image_names = {i["name"] for i in k.get("images", [])}
    assert "trendscore-scorer" in image_names


def test_every_namespaced_object_is_in_the_trendscore_namespace():
    for path, d in manifests():
        if d["kind"] == "Namespace":
            assert d["metadata"]["name"] == NAMESPACE
            continue
        assert d["metadata"].get("namespace") == NAMESPACE, f"{path.name}: {doc_name(d)}"


def test_pods_meet_the_restricted_pod_security_standard():
    for path, d in manifests():
        spec = pod_spec(d)
        if spec is None:
            continue
        w = f"{path.name}:{doc_name(d)}"
        psc = spec.get("securityContext", {})
        assert psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", w
        assert spec.get("automountServiceAccountToken") is False, w
        for v in spec.get("volumes", []):
            assert not {"hostPath"} & set(v), f"{w}: hostPath volume"
        for c in containers(spec):
            cw = f"{w} container {c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, cw
            assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, cw
            assert sc.get("allowPrivilegeEscalation") is False, cw
            assert sc.get("readOnlyRootFilesystem") is True, cw
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], cw
            assert not sc.get("capabilities", {}).get("add"), cw
            assert not sc.get("privileged", False), cw
            res = c.get("resources", {})
            assert res.get("requests", {}).get("memory") and res.get("requests", {}).get("cpu"), f"{cw}: requests"
            assert res.get("limits", {}).get("memory"), f"{cw}: memory limit"


def test_images_are_pinned():
    k = load_docs(K8S / "kustomization.yaml")[0]
    scorer_tag = {i["name"]: i["newTag"] for i in k["images"]}["trendscore-scorer"]
    for path, d in manifests():
        spec = pod_spec(d)
        if spec is None:
            continue
        for c in containers(spec):
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest" and re.search(r"\d", tag), f"{path.name}: {image} is not pinned"
            if name == "trendscore-scorer":
                assert tag == scorer_tag, f"{path.name}: {image} vs kustomization newTag {scorer_tag}"


# ---------------------------------------------------------------------------------------------
# The scorer config (TOML and SCORER__* env) against scorer/src/config.rs


def rust_structs(src: str) -> dict[str, dict[str, str]]:
    out = {}
    for m in re.finditer(r"pub struct (\w+)\s*\{(.*?)\n\}", src, re.S):
        out[m.group(1)] = dict(re.findall(r"^\s*pub (\w+):\s*([^\n]+?),\s*$", m.group(2), re.M))
    return out


def config_schema() -> dict:
    """The config tree of scorer/src/config.rs merged with ANNOUNCED. Leaves: None (scalar) or
    'map' (a free-form table such as kafka.extra)."""
    structs = rust_structs((ROOT / "scorer" / "src" / "config.rs").read_text())
    assert "ScorerConfig" in structs and "KafkaConfig" in structs, "config.rs no longer parses here"

    def tree(struct: str) -> dict:
        out = {}
        for field, ty in structs[struct].items():
            ty = ty.strip()
            if ty in structs:
                out[field] = tree(ty)
            elif ty.startswith(("BTreeMap", "HashMap")):
                out[field] = "map"
            else:
                out[field] = None
        return out

    schema = tree("ScorerConfig")

    def merge(into: dict, extra: dict):
        for k, v in extra.items():
            if isinstance(v, dict):
                if not isinstance(into.get(k), dict):
                    into[k] = {}
                merge(into[k], v)
            else:
                into.setdefault(k, v)

    merge(schema, ANNOUNCED)
    return schema


def unknown_keys(table: dict, schema: dict, prefix: str = "") -> list[str]:
    bad = []
    for k, v in table.items():
        path = f"{prefix}{k}"
        if k not in schema:
            bad.append(path)
        elif isinstance(schema[k], dict):
            if not isinstance(v, dict):
                bad.append(f"{path} (a section, given a value)")
            else:
                bad.extend(unknown_keys(v, schema[k], path + "."))
        elif schema[k] is None and isinstance(v, dict):
            bad.append(f"{path} (a value, given a section)")
    return bad


def env_config_path(var: str, schema: dict) -> str | None:
    """SCORER__KAFKA__SECURITY__PROTOCOL -> None when it names a field, else the reason."""
    parts = [p.lower() for p in var[len("SCORER__"):].split("__")]
    node = schema
    for i, p in enumerate(parts):
        if node == "map":
            return None
        if not isinstance(node, dict) or p not in node:
            return f"{var}: no field {'.'.join(parts[: i + 1])}"
        node = node[p]
    if isinstance(node, dict):
        return f"{var}: names a section, not a field"
    return None


def scorer_tomls() -> list[tuple[str, dict]]:
    return [("ConfigMap trendscore-scorer-config", scorer_toml()),
            ("deploy/compose/scorer.toml", tomllib.loads((DEPLOY / "compose" / "scorer.toml").read_text()))]


def test_scorer_tomls_name_only_known_config_fields():
    schema = config_schema()
    for where, cfg in scorer_tomls():
        bad = unknown_keys(cfg, schema)
        assert not bad, f"{where}: unknown config keys {bad}"
        sec = cfg.get("kafka", {}).get("security", {})
        if "protocol" in sec:
            assert sec["protocol"] in SECURITY_PROTOCOLS, where
        if "sasl_mechanism" in sec:
            assert sec["sasl_mechanism"] in SASL_MECHANISMS, where
        assert cfg["model"]["backend"] in {"auto", "ort-cuda", "ort-cpu", "tract"}, where
        host, _, port = cfg["http"]["listen"].rpartition(":")
        assert host == "0.0.0.0" and port.isdigit(), f"{where}: http.listen must listen on all interfaces in a container"


def test_the_config_check_rejects_an_unknown_field():
    schema = config_schema()
    assert unknown_keys({"kafka": {"brokerz": "x"}}, schema) == ["kafka.brokerz"]
    assert unknown_keys({"sink": {"object_store": {"bucket": "x"}}}, schema) == ["sink.object_store.bucket"]
    assert unknown_keys({"kafka": {"extra": {"socket.keepalive.enable": "true"}}}, schema) == []
    assert env_config_path("SCORER__KAFKA__BROKERS", schema) is None
    assert env_config_path("SCORER__KAFKA__SECURITY__PROTOCOL", schema) is None
    assert env_config_path("SCORER__KAFKA__SECURITY__PROTOKOL", schema)
    assert env_config_path("SCORER__KAFKA", schema)


def test_scorer_env_variables_name_known_config_fields():
    schema = config_schema()
    names: list[tuple[str, str]] = []
    for path, d in manifests():
        if d["kind"] == "ConfigMap":
            names += [(f"{path.name}:{doc_name(d)}", k) for k in (d.get("data") or {}) if k.startswith("SCORER__")]
        spec = pod_spec(d)
        for c in containers(spec) if spec else []:
            names += [(f"{path.name}:{doc_name(d)}", e["name"]) for e in c.get("env", []) if e["name"].startswith("SCORER__")]
    compose = load_docs(COMPOSE)[0]
    for svc, s in compose["services"].items():
        env = s.get("environment", {})
        names += [(f"compose {svc}", k) for k in (env if isinstance(env, dict) else {}) if k.startswith("SCORER__")]
    assert names, "no SCORER__ variable found at all"
    bad = [f"{w}: {msg}" for w, n in names if (msg := env_config_path(n, schema))]
    assert not bad, "\n".join(bad)
    kafka = one(manifests(), "ConfigMap", "trendscore-kafka")["data"]
    assert kafka["SCORER__KAFKA__SECURITY__PROTOCOL"] in SECURITY_PROTOCOLS
    assert kafka["SCORER__KAFKA__SECURITY__SASL_MECHANISM"] in SASL_MECHANISMS


def _container(doc: dict, name: str) -> dict:
    (c,) = [c for c in containers(pod_spec(doc)) if c["name"] == name]
    return c


def _env(c: dict, name: str) -> dict:
    (e,) = [e for e in c.get("env", []) if e["name"] == name]
    return e


def _cpu(q: str) -> float:
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def test_cross_file_invariants():
    docs = manifests()
    cfg = scorer_toml()
    dep = one(docs, "Deployment", "trendscore-scorer")
    spec = pod_spec(dep)
    scorer = _container(dep, "scorer")
    kafka = one(docs, "ConfigMap", "trendscore-kafka")["data"]

    # The metrics port: http.listen = the container's port = the Service's.
    port = int(cfg["http"]["listen"].rpartition(":")[2])
    assert {p["name"]: p["containerPort"] for p in scorer["ports"]}["metrics"] == port
    svc = one(docs, "Service", "trendscore-scorer")
    assert [p["port"] for p in svc["spec"]["ports"] if p["name"] == "metrics"] == [port]
    assert scorer["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert scorer["readinessProbe"]["httpGet"]["path"] == "/readyz"

    # Timeouts: the kubelet's grace > the scorer's shutdown; liveness stall > restore timeout.
    assert spec["terminationGracePeriodSeconds"] * 1000 > cfg["shutdown"]["timeout_ms"]
    assert cfg["health"]["stall_timeout_ms"] > cfg["kafka"]["restore_timeout_ms"]
    assert "replicas" not in dep["spec"], "KEDA owns the replica count"

    # Static membership from the pod name.
    gid = _env(scorer, "SCORER__KAFKA__GROUP_INSTANCE_ID")
    assert gid["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"

    # The model file is on a mounted volume; threads = the CPU request.
    model_dir = str(Path(cfg["model"]["path"]).parent)
    assert model_dir in {m["mountPath"] for m in scorer["volumeMounts"]}
    assert cfg["model"].get("intra_threads") == _cpu(scorer["resources"]["requests"]["cpu"])

    # The SASL password file lies in the mounted Secret, under a key the Secret has.
    pw = Path(kafka["SCORER__KAFKA__SECURITY__SASL_PASSWORD_FILE"])
    mounts = {m["mountPath"]: m["name"] for m in scorer["volumeMounts"]}
    vol = {v["name"]: v for v in spec["volumes"]}[mounts[str(pw.parent)]]
    secret = one(docs, "Secret", vol["secret"]["secretName"])
    assert pw.name in secret["stringData"]

    # The output is object storage (no shared volume between instances).
    assert cfg["sink"]["output_dir"].startswith("s3://")
    assert cfg["kafka"].get("create_topics") is False

    # Topics: the Job creates what the scorer reads; partitions = KEDA's maximum.
    job = one(docs, "Job", "trendscore-topics")
    args = _container(job, "topics")["args"]
    flag = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert args[:2] == ["topics", "create"]
    assert flag["--brokers"] == "$(SCORER__KAFKA__BROKERS)"
    for f, key in [("--input-topic", "input_topic"), ("--predictions-topic", "predictions_topic"),
                   ("--dead-letter-topic", "dead_letter_topic"), ("--changelog-topic", "changelog_topic")]:
        assert flag[f] == cfg["kafka"][key], f
    so = one(docs, "ScaledObject", "trendscore-scorer")
    assert so["spec"]["maxReplicaCount"] == int(flag["--partitions"])
    assert so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"]
    assert so["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]

    # KEDA talks to the same cluster and group as the scorer.
    (trig,) = so["spec"]["triggers"]
    assert trig["type"] == "kafka"
    meta = trig["metadata"]
    assert meta["bootstrapServers"] == kafka["SCORER__KAFKA__BROKERS"]
    assert meta["consumerGroup"] == cfg["kafka"]["group"]
    assert meta["topic"] == cfg["kafka"]["input_topic"]
    assert meta["allowIdleConsumers"] == "false"
    protocol = kafka["SCORER__KAFKA__SECURITY__PROTOCOL"]
    assert meta.get("tls", "disable") == ("enable" if protocol in ("ssl", "sasl_ssl") else "disable")
    keda_sasl = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
    want = keda_sasl[kafka["SCORER__KAFKA__SECURITY__SASL_MECHANISM"]] if protocol.startswith("sasl") else "none"
    assert meta.get("sasl", "none") == want

    # ServiceMonitor -> Service name = the job label the alert rules use.
    assert one(docs, "ServiceMonitor", "trendscore-scorer")["spec"]["endpoints"][0]["port"] == "metrics"


def test_backfill_job_is_sharded_by_completion_index():
    (job,) = [d for _, d in manifests(K8S / "jobs") if d["kind"] == "Job"]
    s = job["spec"]
    assert s["completionMode"] == "Indexed"
    assert job["metadata"]["generateName"], "one Job per backfill"
    c = _container(job, "backfill")
    count = _env(c, "SHARD_COUNT")["value"]
    assert s["completions"] == s["parallelism"] == int(count)
    idx = _env(c, "SHARD_INDEX")["valueFrom"]["fieldRef"]["fieldPath"]
    assert idx == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    args = c["args"]
    assert args[0] == "backfill"
    flag = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert flag["--shard"] == "$(SHARD_INDEX)/$(SHARD_COUNT)"
    assert _env(c, "OUTPUT_URL")["value"].startswith("s3://")
    assert {"--model", "--input", "--output"} <= set(flag)
    assert pod_spec(job)["restartPolicy"] == "Never"  # required by backoffLimitPerIndex


# ---------------------------------------------------------------------------------------------
# Alert rules


def scorer_metric_names() -> set[str]:
    """The exposed names of scorer/src/metrics.rs: prefix scorer_, counters with _total,
    histograms with _bucket/_sum/_count."""
    src = (ROOT / "scorer" / "src" / "metrics.rs").read_text()
    fields = dict(re.findall(r"^\s*pub (\w+):\s*([^\n]+?),\s*$", src, re.M))
    names = set()
    for reg, field in re.findall(r'registry\.register\(\s*"(\w+)",\s*"[^"]*",\s*(\w+)\.clone\(\)', src, re.S):
        ty = fields[field]
        base = f"scorer_{reg}"
        if "Counter" in ty:
            names.add(base + "_total")
        elif "Histogram" in ty:
            names |= {base + "_bucket", base + "_sum", base + "_count"}
        else:
            names.add(base)
    assert len(names) > 10, "metrics.rs no longer parses here"
    return names


def dead_letter_reasons() -> set[str]:
    src = (ROOT / "scorer" / "src" / "validate.rs").read_text()
    return set(re.findall(r'Reason::\w+ => "(\w+)"', src))


PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "increase", "irate", "by", "without", "on",
    "ignoring", "group_left", "group_right", "and", "or", "unless", "absent", "histogram_quantile",
    "le", "bool", "offset", "clamp_min", "deriv", "time", "vector", "scalar",
}


def alert_rules() -> list[dict]:
    return [r for g in load_docs(ALERTS)[0]["groups"] for r in g["rules"]]


def test_compose_rules_equal_the_prometheusrule():
    pr = one(manifests(), "PrometheusRule", "trendscore-scorer")
    assert pr["spec"]["groups"] == load_docs(ALERTS)[0]["groups"]


def test_alert_rules_use_existing_metrics_and_labels():
    known = scorer_metric_names() | set(EXTERNAL_METRICS)
    reasons = dead_letter_reasons()
    assert "late" in reasons
    for r in alert_rules():
        expr = r["expr"]
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), r["alert"]
        no_strings = re.sub(r'"[^"]*"', '""', expr)
        no_labels = re.sub(r"\{[^}]*\}", "", no_strings)
        no_ranges = re.sub(r"\[[^\]]*\]", "", no_labels)
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", no_ranges):
            if word in PROMQL_WORDS or word in {"partition", "reason", "instance", "pod", "job", "model_version", "backend"}:
                continue
            assert word in known, f"{r['alert']}: {word} is neither a scorer metric nor in EXTERNAL_METRICS"
        for value in re.findall(r'reason!?=~?"([^"]*)"', expr):
            assert value in reasons, f"{r['alert']}: reason {value!r} is not a dead-letter reason"
        for value in re.findall(r'result!?="([^"]*)"', expr):
            assert value in {"ok", "failed"}, r["alert"]
        assert 'job="trendscore-scorer"' in expr or "kube_" in expr, f"{r['alert']}: not scoped to the scorer"
        assert r["labels"]["severity"] in {"critical", "warning", "info"}, r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"], r["alert"]
    # The job label: the Service the ServiceMonitor selects, and the compose scrape job.
    prom = load_docs(DEPLOY / "compose" / "prometheus" / "prometheus.yml")[0]
    assert [j["job_name"] for j in prom["scrape_configs"]] == ["trendscore-scorer"]
    assert one(manifests(), "Service", "trendscore-scorer")


def test_the_metric_check_rejects_an_unknown_metric():
    known = scorer_metric_names()
    assert "scorer_rows_in_total" in known and "scorer_consumer_lag" in known
    assert "scorer_inference_seconds_bucket" in known
    assert "scorer_rows_in" not in known  # a counter is exposed with _total only


def test_every_alert_has_a_runbook_section_in_operations_md():
    text = (ROOT / "docs" / "operations.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", text, re.M)}
    for r in alert_rules():
        anchor = r["annotations"]["runbook"].split("#", 1)[1]
        assert anchor == r["alert"].lower(), r["alert"]
        assert anchor in anchors, f"docs/operations.md has no heading for {r['alert']}"


# ---------------------------------------------------------------------------------------------
# Dockerfiles


def dockerfiles() -> list[Path]:
    found = sorted(set(DEPLOY.rglob("*Dockerfile*")) | set(ROOT.glob("*Dockerfile*")))
    assert found, "no Dockerfile found"
    return found


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if not buf and line.lstrip().startswith("#"):
            continue
        if buf and line.lstrip().startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def stages(path: Path) -> list[dict]:
    """Each FROM with its instructions."""
    result = []
    for ins, args in instructions(path):
        if ins == "FROM":
            parts = args.split()
            image = [p for p in parts if not p.startswith("--")][0]
            alias = parts[parts.index("AS") + 1] if "AS" in parts else (parts[parts.index("as") + 1] if "as" in parts else None)
            result.append({"image": image, "alias": alias, "ins": []})
        elif result:
            result[-1]["ins"].append((ins, args))
    return result


def requirement_pin(name: str, path: Path = ROOT / "requirements.txt") -> str:
    for line in path.read_text().splitlines():
        m = re.match(rf"^{re.escape(name)}(\[[^\]]*\])?==([^\s;#]+)", line.strip())
        if m:
            return m.group(2)
    raise AssertionError(f"{path.name}: {name} is not pinned with ==")


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_base_images_are_pinned(path):
    aliases = set()
    channel = tomllib.loads((ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    for st in stages(path):
        image = st["image"]
        if image in aliases:
            continue
        assert "$" not in image, f"{image}: FROM with a variable cannot be checked"
        name, _, tag = image.partition("@")[0].rpartition(":")
        assert name and tag, f"{path.name}: {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{path.name}: {image} is not a pinned tag"
        if name == "rust":
            assert tag.startswith(channel + "-") or tag == channel, f"{image} vs rust-toolchain.toml {channel}"
        if st["alias"]:
            aliases.add(st["alias"])
    text = path.read_text()
    for m in re.finditer(r"RUSTUP_TOOLCHAIN=(\S+)", text):
        assert m.group(1) == channel


@pytest.mark.parametrize("path", dockerfiles(), ids=lambda p: str(p.relative_to(ROOT)))
def test_dockerfile_onnxruntime_version_equals_requirements(path):
    want = requirement_pin("onnxruntime")
    text = path.read_text()
    found = re.findall(r"ORT_VERSION=([0-9][0-9.]*)", text)
    found += re.findall(r"onnxruntime(?:-linux-x64-gpu_cuda\d+|-linux-x64-gpu|-linux-x64|_gpu|-gpu)?-(\d+\.\d+\.\d+)", text)
    found += re.findall(r"libonnxruntime\.so\.(\d+\.\d+\.\d+)", text)
    found += re.findall(r"onnxruntime(?:-gpu)?==(\d+\.\d+\.\d+)", text)
    if "onnxruntime" not in text.lower():
        return  # an image without ONNX Runtime (the trainer)
    assert found, f"{path.name} mentions onnxruntime but no version the test can read"
    assert set(found) == {want}, f"{path.name}: ONNX Runtime {sorted(set(found))}, requirements.txt {want}"
    for sha in re.findall(r"sha=([0-9a-f]+)", text):
        assert len(sha) == 64, sha


def test_scorer_image_targets():
    path = DEPLOY / "docker" / "scorer.Dockerfile"
    st = {s["alias"]: s for s in stages(path)}
    assert stages(path)[-1]["alias"] == "scorer", "the default target is the CPU image"
    build = " ".join(a for _, a in st["build"]["ins"])
    assert "-p trendscore-scorer" in build and "-p trendscore-exporter" in build
    assert "trendscore-trainer" not in build, "only the trainer image links libtorch"
    assert "--locked" in build
    for target in ("scorer", "scorer-cuda"):
        ins = st[target]["ins"]
        env = " ".join(a for i, a in ins if i == "ENV")
        assert "ORT_DYLIB_PATH=/opt/onnxruntime/lib/libonnxruntime.so.${ORT_VERSION}" in env, target
        users = [a for i, a in ins if i == "USER"]
        assert users and not users[-1].startswith(("0", "root")), f"{target} runs as root"
    assert st["scorer-cuda"]["image"].startswith("nvidia/cuda:") and "runtime" in st["scorer-cuda"]["image"]


def test_trainer_image_uses_the_tested_torch():
    path = DEPLOY / "docker" / "trainer.Dockerfile"
    st = stages(path)
    assert all(s["image"].startswith("nvidia/cuda:") for s in st if s["alias"] in ("build", "trainer"))
    build = " ".join(a for s in st if s["alias"] == "build" for _, a in s["ins"])
    assert "-p trendscore-trainer" in build and "LIBTORCH_USE_PYTORCH=1" in build
    reqs = DEPLOY / "docker" / "trainer-requirements.txt"
    assert requirement_pin("torch", reqs) == requirement_pin("torch")
    for line in reqs.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.match(r"^[A-Za-z0-9_.\-]+(\[[^\]]*\])?==[0-9][^\s]*$", line), f"not pinned: {line}"
    users = [a for i, a in st[-1]["ins"] if i == "USER"]
    assert users and not users[-1].startswith(("0", "root"))


def dockerignored(rel: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a pattern matching a
    parent directory excludes everything below it."""
    parts = rel.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pat in patterns:
        neg = pat.startswith("!")
        p = pat[1:] if neg else pat
        p = p.rstrip("/")
        for cand in candidates:
            if fnmatch.fnmatchcase(cand, p) or (p.startswith("**/") and fnmatch.fnmatchcase(cand.split("/")[-1], p[3:])):
                ignored = not neg
                break
    return ignored


def test_dockerignore_keeps_what_cargo_needs():
    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.strip().startswith("#")]
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    keep = ["Cargo.toml", "Cargo.lock", "rust-toolchain.toml", ".cargo/config.toml",
            "deploy/docker/trainer-requirements.txt", "features/README.md"]
    keep += [f"{m}/Cargo.toml" for m in members] + [f"{m}/src/main.rs" for m in members if (ROOT / m / "src" / "main.rs").exists()]
    for rel in keep:
        assert (ROOT / rel).exists(), rel
        assert not dockerignored(rel, patterns), f".dockerignore drops {rel}, which the build needs"
    for rel in ["target/debug/scorer", ".git/HEAD", "runs/demo/model.onnx", "data/x.csv", "deploy/k8s/scorer.yaml",
                "scorer/target/x", "tests/python/test_deploy.py"]:
        assert dockerignored(rel, patterns), f".dockerignore keeps {rel}"


# ---------------------------------------------------------------------------------------------
# Compose


def check_compose(compose: Path):
    c = load_docs(compose)[0]
    services = c["services"]
    networks = set(c.get("networks", {}))
    volumes = set(c.get("volumes", {}))
    for name, s in services.items():
        nets = s.get("networks", [])
        for n in (nets if isinstance(nets, list) else list(nets)):
            assert n in networks, f"service {name}: network {n} is not defined"
        assert nets, f"service {name}: on no network"
        for v in s.get("volumes", []):
            src = (v if isinstance(v, str) else v.get("source", "")).split(":")[0]
            if src.startswith(("/", ".", "~", "$")):
                if src.startswith("./"):
                    assert (compose.parent / src).exists(), f"service {name}: bind source {src} missing"
                continue
            assert src in volumes, f"service {name}: volume {src} is not defined"
        deps = s.get("depends_on", [])
        for d in (deps if isinstance(deps, list) else list(deps)):
            assert d in services, f"service {name}: depends on unknown service {d}"
        image = s.get("image")
        assert image, f"service {name}: no image"
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert tag and tag != "latest" and re.search(r"\d", tag), f"service {name}: {image} not pinned"
        if "build" in s:
            df = s["build"]["dockerfile"]
            assert (COMPOSE.parent / s["build"]["context"] / df).is_file(), df
    for needed in ("kafka", "minio", "minio-init", "topics", "scorer", "prometheus"):
        assert needed in services
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft
    # The scorer reads the config the stack mounts, which points at the stack's Kafka and MinIO.
    cfg = tomllib.loads((compose.parent / "scorer.toml").read_text())
    assert cfg["kafka"]["brokers"] == "kafka:9092"
    assert cfg["sink"]["output_dir"].startswith("s3://trendscore/")
    assert cfg["sink"]["object_store"]["endpoint"] == "http://minio:9000"
    assert "aws s3 mb s3://trendscore" in " ".join(services["minio-init"]["command"])


def test_compose_file_references_are_defined():
    check_compose(COMPOSE)


def test_compose_check_rejects_an_undefined_volume(tmp_path):
    c = load_docs(COMPOSE)[0]
    c["services"]["scorer"]["volumes"].append("no-such-volume:/x")
    shutil.copy(DEPLOY / "compose" / "scorer.toml", tmp_path / "scorer.toml")
    shutil.copytree(DEPLOY / "compose" / "prometheus", tmp_path / "prometheus")
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(yaml.safe_dump(c))
    with pytest.raises(AssertionError, match="no-such-volume"):
        check_compose(bad)
    c = load_docs(COMPOSE)[0]
    c["services"]["scorer"]["networks"] = ["elsewhere"]
    bad.write_text(yaml.safe_dump(c))
    with pytest.raises(AssertionError, match="network elsewhere"):
        check_compose(bad)


# ---------------------------------------------------------------------------------------------
# The model-sync script of the scorer pods, against a fake aws CLI

FAKE_AWS = r"""#!/bin/sh
# Just enough of the aws CLI for model-sync.sh: objects are files under $FAKE_S3.
if [ "$1 $2" = "s3api head-object" ]; then
  shift 2
  while [ $# -gt 0 ]; do
    case "$1" in --bucket) b="$2"; shift 2 ;; --key) k="$2"; shift 2 ;; *) shift ;; esac
  done
  [ -f "$FAKE_S3/$b/$k" ] || { echo "Not Found" >&2; exit 254; }
  echo "\"$(cksum < "$FAKE_S3/$b/$k" | cut -d' ' -f1)\""
elif [ "$1 $2" = "s3 cp" ]; then
  shift 2
  [ "$1" = "--only-show-errors" ] && shift
  [ -f "$FAKE_S3/FAIL_DOWNLOADS" ] && { echo "download failed" >&2; exit 1; }
  src="${1#s3://}"
  cp "$FAKE_S3/$src" "$2"
else
  echo "fake aws: unsupported $*" >&2; exit 2
fi
"""


def _wait_for(pred, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def test_model_sync_script_fetches_and_replaces_atomically(tmp_path):
    script = tmp_path / "model-sync.sh"
    script.write_text(one(manifests(), "ConfigMap", "trendscore-model")["data"]["model-sync.sh"])
    bindir = tmp_path / "bin"
    bindir.mkdir()
    aws = bindir / "aws"
    aws.write_text(FAKE_AWS)
    aws.chmod(aws.stat().st_mode | stat.S_IEXEC)
    s3 = tmp_path / "s3"
    (s3 / "models" / "current").mkdir(parents=True)
    obj = s3 / "models" / "current" / "model.onnx"
    obj.write_bytes(b"model v1")
    models = tmp_path / "models"
    models.mkdir()
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", FAKE_S3=str(s3),
               MODEL_URL="s3://models/current/model.onnx", MODEL_DIR=str(models), MODEL_SYNC_SECONDS="0.2")

    # once: the init container.
    subprocess.run(["sh", str(script), "once"], env=env, check=True, capture_output=True, timeout=30)
    assert (models / "model.onnx").read_bytes() == b"model v1"

    # once fails loudly when the object is missing (the pod must not start without a model).
    bad = dict(env, MODEL_URL="s3://models/none/model.onnx")
    r = subprocess.run(["sh", str(script), "once"], env=bad, capture_output=True, timeout=30)
    assert r.returncode != 0
    r = subprocess.run(["sh", str(script), "once"], env=dict(env, MODEL_URL="http://x/model.onnx"), capture_output=True, timeout=30)
    assert r.returncode == 2

    # loop: the sidecar replaces the file when the object changes, keeps it when a download fails.
    proc = subprocess.Popen(["sh", str(script), "loop"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        inode = (models / "model.onnx").stat().st_ino
        time.sleep(0.6)
        assert (models / "model.onnx").stat().st_ino == inode, "unchanged object: file not rewritten"
        (s3 / "FAIL_DOWNLOADS").write_text("")
        obj.write_bytes(b"model v2")
        time.sleep(0.8)
        assert (models / "model.onnx").read_bytes() == b"model v1", "failed download kept the old model"
        assert not (models / ".model.onnx.incoming").exists()
        (s3 / "FAIL_DOWNLOADS").unlink()
        assert _wait_for(lambda: (models / "model.onnx").read_bytes() == b"model v2")
        assert (models / "model.onnx").stat().st_ino != inode, "replaced by rename, not rewritten in place"
        obj.unlink()  # object gone: the sidecar keeps the current model and keeps running
        time.sleep(0.6)
        assert proc.poll() is None
        assert (models / "model.onnx").read_bytes() == b"model v2"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_broker_start_refuses_a_port_something_already_listens_on(tmp_path):
    """deploy/broker/start.sh probes the port to see the broker up; a port another process
    listens on would pass that probe for a broker that failed to bind, so it is refused."""
    import socket

    import scorer_harness as h

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([os.path.join(h.ROOT, "deploy/broker/start.sh"), str(tmp_path / "b"), str(port)],
                           capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"port {port} is already in use" in r.stderr, r.stderr
    assert not (tmp_path / "b" / "broker.pid").exists(), "no broker may have been started"
