"""Services refuse to start with placeholder, development or weak keys unless
RAPPORT_DEV_KEYS=1, and say which setting is wrong without printing the key."""

import os

import orjson
import pytest
from pydantic import ValidationError

from rapport.console.settings import ConsoleSettings
from rapport.ingest.settings import IngestSettings
from rapport.next_action.settings import NextActionSettings
from rapport.profile.settings import ProfileSettings
from rapport.scoring.settings import ScoringSettings
from rapport.shared.auth import KeyRing, Role
from rapport.shared.keypolicy import weakness

SECRET = "9c1f4e7a2b8d3f60a5e1c7b94d2f8a13"
STRONG = "Zk3pQ9vW2mX7rT5yL8nBq4"
SERVICES = [IngestSettings, ProfileSettings, ScoringSettings, NextActionSettings,
            ConsoleSettings]
# What the old deploy/k8s/config.yaml shipped, the dev set, and other usual suspects.
WEAK = ["change-me-admin", "CHANGE_ME_please_0123456789", "changeme0123456789ab",
        "dev-admin", "dev-write-key", "dev-privacy-secret", "my-example-key-0123456789",
        "placeholder-0123456789", "supersecretvalue0123", "password12345678901",
        "replace-with-a-real-key", "short-Key-9", "aaaaaaaaaaaaaaaaaaaaaaaa",
        "abababababababababab"]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("RAPPORT_") and name != "RAPPORT_STACK_PORT_OFFSET":
            monkeypatch.delenv(name)


def refusal(build) -> str:
    with pytest.raises(ValidationError) as info:
        build()
    return str(info.value)


@pytest.mark.parametrize("key", WEAK)
def test_weak_keys_are_recognised(key):
    assert weakness(key) is not None


@pytest.mark.parametrize("key", [STRONG, SECRET, "k3Y-for_web.SITE-2026-x9q"])
def test_random_keys_pass(key):
    assert weakness(key) is None


@pytest.mark.parametrize("settings", SERVICES)
@pytest.mark.parametrize("key", WEAK)
def test_every_service_refuses_a_weak_api_key(settings, key):
    message = refusal(lambda: settings(privacy_secret=SECRET, api_keys={key: "admin"}))
    assert "RAPPORT_API_KEYS" in message and "'admin' key" in message
    assert key not in message


@pytest.mark.parametrize("settings", SERVICES)
def test_every_service_refuses_to_start_without_a_privacy_secret(settings):
    message = refusal(lambda: settings(api_keys={STRONG: "agent"}))
    assert "RAPPORT_PRIVACY_SECRET is not set" in message


@pytest.mark.parametrize("settings", SERVICES)
@pytest.mark.parametrize("secret", ["dev-privacy-secret", "change-me-0123456789abcdef",
                                    "too-short-123", "x" * 40])
def test_every_service_refuses_a_weak_privacy_secret(settings, secret):
    message = refusal(lambda: settings(privacy_secret=secret))
    assert "RAPPORT_PRIVACY_SECRET" in message and secret not in message


@pytest.mark.parametrize("key", WEAK)
def test_the_api_keys_file_is_checked_too(tmp_path, key):
    path = tmp_path / "api-keys.json"
    path.write_bytes(orjson.dumps({STRONG: "agent", key: "ops"}))
    message = refusal(lambda: ProfileSettings(privacy_secret=SECRET, api_keys_file=path))
    assert "RAPPORT_API_KEYS_FILE" in message and "'ops' key" in message
    assert key not in message


def test_a_broken_api_keys_file_is_named_without_its_content(tmp_path):
    path = tmp_path / "api-keys.json"
    path.write_text('{"Zk3pQ9vW2mX7rT5yL8nBq4": "admin",')
    message = refusal(lambda: ScoringSettings(privacy_secret=SECRET, api_keys_file=path))
    assert "RAPPORT_API_KEYS_FILE" in message and "not valid JSON" in message
    assert STRONG not in message
    path.write_text(orjson.dumps({"admin": STRONG}).decode())  # swapped: the key as role
    message = refusal(lambda: ScoringSettings(privacy_secret=SECRET, api_keys_file=path))
    assert "RAPPORT_API_KEYS_FILE" in message and STRONG not in message
    message = refusal(lambda: ScoringSettings(privacy_secret=SECRET,
                                              api_keys_file=tmp_path / "missing.json"))
    assert "RAPPORT_API_KEYS_FILE: cannot read" in message


@pytest.mark.parametrize("key", WEAK)
def test_ingest_refuses_a_weak_write_key(key):
    message = refusal(lambda: IngestSettings(privacy_secret=SECRET,
                                             write_keys={key: {"source": "web-site"}}))
    assert "RAPPORT_WRITE_KEYS" in message and "source 'web-site'" in message
    assert key not in message


def test_from_the_environment_as_a_deployment_sets_them(monkeypatch):
    monkeypatch.setenv("RAPPORT_PRIVACY_SECRET", SECRET)
    monkeypatch.setenv("RAPPORT_WRITE_KEYS", '{"change-me-write-key": {"source": "web-site"}}')
    assert "RAPPORT_WRITE_KEYS" in refusal(IngestSettings)
    monkeypatch.setenv("RAPPORT_WRITE_KEYS", f'{{"{STRONG}": {{"source": "web-site"}}}}')
    assert set(IngestSettings().sources()) == {STRONG}
    monkeypatch.setenv("RAPPORT_API_KEYS", '{"dev-admin": "admin"}')
    assert "RAPPORT_API_KEYS" in refusal(NextActionSettings)


def test_strong_keys_start(tmp_path):
    path = tmp_path / "api-keys.json"
    path.write_bytes(orjson.dumps({STRONG: "admin"}))
    settings = ProfileSettings(privacy_secret=SECRET, api_keys_file=path,
                               api_keys={SECRET[::-1]: "agent"})
    ring = KeyRing.from_config(settings.api_keys, settings.api_keys_file, settings.dev_keys)
    assert ring.role_of(STRONG) is Role.ADMIN and ring.role_of(SECRET[::-1]) is Role.AGENT
    assert ring.role_of("dev-admin") is None
    settings.fingerprints()  # the secret keys the fingerprints


@pytest.mark.parametrize("settings", SERVICES)
def test_dev_keys_allow_anything(settings):
    built = settings(dev_keys=True, api_keys={"change-me-admin": "admin"},
                     privacy_secret="dev-privacy-secret")
    assert built.fingerprints() is not None
    assert settings(dev_keys=True).fingerprints() is not None  # the dev secret
    if settings is IngestSettings:
        assert "dev-write-key" in settings(dev_keys=True,
                                           write_keys={"wk": {"source": "s"}}).sources()


def test_unknown_roles_are_refused_even_with_dev_keys():
    message = refusal(lambda: ScoringSettings(dev_keys=True, api_keys={STRONG: "root"}))
    assert "RAPPORT_API_KEYS" in message and STRONG not in message and "root" not in message
