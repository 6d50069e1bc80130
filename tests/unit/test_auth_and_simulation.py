from datetime import UTC, datetime

from rapport.ingest.domain import normalize
from rapport.ingest.settings import DEV_WRITE_KEYS, IngestSettings
from rapport.shared.auth import KeyRing, Role, allows
from rapport.shared.events import Touchpoint
from rapport.shared.simulate import Population


def test_role_grants():
    assert allows(Role.AGENT, Role.CHANNEL) and allows(Role.ADMIN, Role.OPS)
    assert not allows(Role.CHANNEL, Role.AGENT) and not allows(Role.OPS, Role.CHANNEL)
    assert not allows(Role.AGENT, Role.ADMIN)


def test_dev_keys_only_when_enabled(tmp_path):
    assert KeyRing.from_config({}, None, dev_keys=False).role_of("dev-admin") is None
    assert KeyRing.from_config({}, None, dev_keys=True).role_of("dev-admin") is Role.ADMIN
    f = tmp_path / "keys.json"
    f.write_text('{"k-file": "ops"}')
    ring = KeyRing.from_config({"k-env": "agent"}, f, dev_keys=False)
    assert ring.role_of("k-file") is Role.OPS and ring.role_of("k-env") is Role.AGENT
    assert ring.role_of("k-env ") is None


def test_write_keys_from_settings(monkeypatch):
    # Without dev keys a real privacy secret and strong write keys are required.
    wk = "pos-7Hq2xL9vRk4mTz8c"
    monkeypatch.setenv("RAPPORT_WRITE_KEYS", f'{{"{wk}": {{"source": "pos", "channel": "store"}}}}')
    monkeypatch.setenv("RAPPORT_PRIVACY_SECRET", "9c1f4e7a2b8d3f60a5e1c7b94d2f8a13")
    monkeypatch.delenv("RAPPORT_DEV_KEYS", raising=False)
    sources = IngestSettings().sources()
    assert set(sources) == {wk} and sources[wk].channel == "store"


def test_simulation_is_seeded_and_always_valid():
    now = datetime.now(UTC)
    a, b = Population(200, seed=3).batch(500, now), Population(200, seed=3).batch(500, now)
    assert a == b
    results = [normalize(m, index=i, source=DEV_WRITE_KEYS["dev-write-key"], received_at=now)
               for i, m in enumerate(a)]
    assert all(isinstance(r, Touchpoint) for r in results)
    events = {m.get("event") for m in a}
    assert {"Order Completed", "Product Viewed", "Call Started"} <= events
    assert {r.channel.value for r in results} >= {"web", "mobile", "store", "call_center"}
