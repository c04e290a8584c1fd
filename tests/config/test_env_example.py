""".env.example documents every variable the settings read."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def variables_read_by(path: Path) -> set[str]:
    source = path.read_text()
    names = set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]+)"', source))
    names |= set(re.findall(r'os\.environ\.get\("([A-Z][A-Z0-9_]+)"', source))
    return names


def test_every_setting_is_listed_in_env_example():
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    read = variables_read_by(REPO / "config" / "settings.py") | variables_read_by(REPO / "config" / "gunicorn.conf.py")
    missing = read - documented
    assert not missing, f".env.example does not list: {sorted(missing)}"


def test_every_setting_is_described_in_the_readme():
    readme = (REPO / "README.md").read_text()
    read = variables_read_by(REPO / "config" / "settings.py")
    missing = {name for name in read if f"`{name}`" not in readme}
    assert not missing, f"README.md does not describe: {sorted(missing)}"
