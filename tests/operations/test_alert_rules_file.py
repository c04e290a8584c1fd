"""platform/alerts.rules.yml: valid for Prometheus, and in step with the monitor's rules."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from operations.metrics import CACHE_ERRORS, REQUESTS

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "platform" / "alerts.rules.yml"
EXPOSED = {
    "herald_celery_queue_depth",
    "herald_replication_lag_seconds",
    "herald_backup_age_seconds",
    "herald_restore_drill_passed",
    "herald_restore_drill_age_seconds",
    "herald_slo_burn_rate",
    "herald_synthetic_check_ok",
    "herald_synthetic_check_age_seconds",
    "herald_relay_circuit_open",
    "herald_relay_deliveries_recent",
    "herald_campaign_complaint_rate",
    "herald_campaign_bounce_rate",
    "herald_campaign_deliveries",
    REQUESTS._name + "_total",
    CACHE_ERRORS._name + "_total",
}


def rules():
    return yaml.safe_load(RULES_FILE.read_text())["groups"][0]["rules"]


def test_every_rule_has_a_severity_summary_and_an_existing_runbook():
    for rule in rules():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"]
        assert (REPO / rule["annotations"]["runbook_url"]).is_file(), rule["alert"]


def test_rules_only_use_metrics_herald_exposes():
    import re

    for rule in rules():
        used = set(re.findall(r"\bherald_[a-z_]+", rule["expr"]))
        assert used <= EXPOSED, f"{rule['alert']} uses {used - EXPOSED}"


def promtool() -> str:
    """promtool from PATH, else taken out of Debian's prometheus package without installing it
    (installing would start a Prometheus server) and kept in var/tools/."""
    found = shutil.which("promtool")
    if found:
        return found
    cached = REPO / "var" / "tools" / "promtool"
    if not cached.exists():
        with tempfile.TemporaryDirectory() as scratch:
            subprocess.run(["apt-get", "download", "prometheus"], cwd=scratch, check=True, capture_output=True)
            (package,) = Path(scratch).glob("prometheus_*.deb")
            subprocess.run(["dpkg-deb", "-x", str(package), f"{scratch}/x"], check=True)
            cached.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(f"{scratch}/x/usr/bin/promtool", cached)
    return str(cached)


@pytest.mark.slow
def test_promtool_accepts_the_rules():
    result = subprocess.run([promtool(), "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_every_rule_the_monitor_evaluates_has_a_prometheus_twin_with_the_same_runbook():
    from operations.alert_rules import RULES

    shipped = {rule["annotations"]["runbook_url"] for rule in rules()}
    for rule in RULES:
        assert f"platform/runbooks/{rule.runbook}" in shipped, rule.key
