"""README stays true: every setting any service reads is documented there, with its env var."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "settings_table", REPO / "scripts" / "settings_table.py"
)
assert _spec
assert _spec.loader
settings_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(settings_table)


@pytest.mark.parametrize("service", sorted(settings_table.SETTINGS_CLASSES))
def test_every_setting_is_in_the_readme(service: str) -> None:
    readme = (REPO / "README.md").read_text()
    cls = settings_table.load(settings_table.SETTINGS_CLASSES[service])
    missing = [env for env in settings_table.env_settings(cls) if f"`{env}`" not in readme]
    assert missing == [], f"README.md lacks {missing}; regenerate with scripts/settings_table.py"


def test_the_settings_tables_are_the_generated_ones() -> None:
    """Names, defaults and meanings: regenerate with scripts/settings_table.py on a change."""
    readme = (REPO / "README.md").read_text()
    assert settings_table.render() in readme
