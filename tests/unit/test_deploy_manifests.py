"""The deployable manifests carry no usable key: `kubectl apply -k deploy/k8s`
creates no Secret, every Deployment takes its keys and the privacy secret from
the Secret the operator creates, and docker-compose's development keys stay on
127.0.0.1."""

import base64
import json
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rapport.ingest.settings import IngestSettings
from rapport.profile.settings import ProfileSettings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAY = ROOT / "deploy" / "k8s-keys"
SECRET = "rapport-keys"
API_SERVICES = ("profile", "scoring", "next-action", "console")


def documents(folder: Path) -> list[dict]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    docs: list[dict] = []
    for resource in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((folder / resource).read_text()) if d)
    return docs


def deployments() -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents(K8S) if d["kind"] == "Deployment"}


def env_of(deployment: dict) -> dict[str, dict]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container.get("env", [])}


def secret_ref(entry: dict) -> tuple[str, str]:
    ref = entry["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]


def test_the_kustomization_creates_no_secret_and_no_keys():
    for doc in documents(K8S):
        assert doc["kind"] != "Secret", "keys must not be deployed from the repository"
        if doc["kind"] == "ConfigMap":
            assert not any("KEY" in k or "SECRET" in k for k in doc["data"]), doc["data"]
    for name, deployment in deployments().items():
        for var, entry in env_of(deployment).items():
            assert var != "RAPPORT_DEV_KEYS", name
            if "KEY" in var or "SECRET" in var:
                assert "value" not in entry or var == "RAPPORT_API_KEYS_FILE", (name, var)


def test_every_deployment_takes_the_privacy_secret_from_the_secret():
    found = deployments()
    assert set(found) == {"ingest", *API_SERVICES}
    for deployment in found.values():
        assert secret_ref(env_of(deployment)["RAPPORT_PRIVACY_SECRET"]) == (
            SECRET, "privacy-secret")


def test_ingest_takes_its_write_keys_from_the_secret():
    assert secret_ref(env_of(deployments()["ingest"])["RAPPORT_WRITE_KEYS"]) == (
        SECRET, "write-keys.json")


@pytest.mark.parametrize("name", API_SERVICES)
def test_api_services_read_the_api_keys_file_mounted_from_the_secret(name):
    deployment = deployments()[name]
    path = Path(env_of(deployment)["RAPPORT_API_KEYS_FILE"]["value"])
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(path.parent))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == SECRET
    assert {"key": "api-keys.json", "path": path.name} in volume["secret"]["items"]


def test_the_overlay_generates_the_secret_from_files_git_ignores():
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["../k8s"]
    (generator,) = kustomization["secretGenerator"]
    assert generator["name"] == SECRET
    files = set(generator["files"])
    assert files == {"api-keys.json", "write-keys.json", "privacy-secret"}
    ignored = set((OVERLAY / ".gitignore").read_text().split())
    assert files <= ignored
    for name in files:
        assert not (OVERLAY / name).exists() or _ignored_by_git(OVERLAY / name)


def _ignored_by_git(path: Path) -> bool:
    done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=ROOT)
    return done.returncode == 0


def _kustomize(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "kustomize", str(folder)], capture_output=True,
                          text=True, timeout=60)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_rendered_manifests_resolve_every_key_and_the_services_accept_them(tmp_path):
    base = list(yaml.safe_load_all(_kustomize(K8S).stdout))
    assert base and not [d for d in base if d and d["kind"] == "Secret"]
    copy = tmp_path / "deploy"
    shutil.copytree(K8S, copy / "k8s")
    shutil.copytree(OVERLAY, copy / "k8s-keys")
    assert _kustomize(copy / "k8s-keys").returncode != 0  # no files, nothing deployed
    keys = {"api-keys.json": json.dumps({secrets.token_hex(16): "admin"}),
            "write-keys.json": json.dumps({secrets.token_hex(16): {"source": "web-site"}}),
            "privacy-secret": secrets.token_hex(32)}
    for name, value in keys.items():
        (copy / "k8s-keys" / name).write_text(value)
    rendered = [d for d in yaml.safe_load_all(_kustomize(copy / "k8s-keys").stdout) if d]
    (secret,) = [d for d in rendered if d["kind"] == "Secret"]
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == keys
    for deployment in (d for d in rendered if d["kind"] == "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        for entry in env_of(deployment).values():
            if "valueFrom" in entry:
                name, key = secret_ref(entry)
                assert name == secret["metadata"]["name"] and key in data
        for volume in spec["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    keys_file = tmp_path / "api-keys.json"
    keys_file.write_text(data["api-keys.json"])
    ProfileSettings(api_keys_file=keys_file, privacy_secret=data["privacy-secret"])
    IngestSettings(write_keys=json.loads(data["write-keys.json"]),
                   privacy_secret=data["privacy-secret"])


def test_docker_compose_uses_the_dev_keys_on_localhost_only():
    text = (ROOT / "docker-compose.yml").read_text()
    assert "local use only" in text  # the documented reason the dev keys are allowed
    compose = yaml.safe_load(text)
    rapport = {n: s for n, s in compose["services"].items()
               if str(s.get("command", [""])[0]) == "python"}
    assert set(rapport) == {"ingest", "profile", "scoring", "next-action", "console"}
    for name, svc in rapport.items():
        env = svc["environment"]
        assert env["RAPPORT_DEV_KEYS"] == "1", name
        assert not {"RAPPORT_API_KEYS", "RAPPORT_API_KEYS_FILE", "RAPPORT_WRITE_KEYS",
                    "RAPPORT_PRIVACY_SECRET"} & set(env), name
        assert all(p.startswith("127.0.0.1:") for p in svc["ports"]), name
    for name in ("kafka", "redis"):
        assert "ports" not in compose["services"][name]
