"""The workspace packages import under the ``rapport`` namespace from this repo,
never the stdlib's ``profile`` or another installed copy."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("module", "folder"), [
    ("rapport.shared", "shared"), ("rapport.ingest", "services/ingest"),
    ("rapport.profile", "services/profile"), ("rapport.scoring", "services/scoring"),
    ("rapport.next_action", "services/next-action"), ("rapport.console", "services/console"),
])
def test_editable_install_imports_from_the_repo(module, folder):
    mod = importlib.import_module(module)
    assert Path(mod.__file__).resolve().is_relative_to(ROOT / folder / "src")
