"""What an alert notification says on each kind of channel (pure functions, no Django)."""

SEVERITY_FOR_PAGERDUTY = {"info": "info", "warning": "warning", "critical": "critical"}


def headline(alert: dict, kind: str) -> str:
    state = {"firing": "FIRING", "escalated": "ESCALATED (unacknowledged)", "resolved": "RESOLVED"}[kind]
    return f"[Herald {state}] [{alert['severity']}] {alert['summary']}"


def text_body(alert: dict, kind: str) -> str:
    lines = [headline(alert, kind), "", f"Rule: {alert['rule']}", f"Condition: {alert['fingerprint']}"]
    if alert.get("value") is not None:
        lines.append(f"Value: {alert['value']:g}")
    lines.append(f"First seen: {alert['first_seen_at']}")
    if alert.get("resolved_at"):
        lines.append(f"Resolved: {alert['resolved_at']}")
    if alert.get("runbook"):
        lines.append(f"Runbook: {alert['runbook']}")
    return "\n".join(lines)


def slack_payload(alert: dict, kind: str) -> dict:
    return {"text": text_body(alert, kind)}


def pagerduty_payload(alert: dict, kind: str, routing_key: str, source: str) -> dict:
    """A PagerDuty Events v2 event; the fingerprint is the dedup key so resolve closes the incident."""
    payload = {
        "routing_key": routing_key,
        "event_action": "resolve" if kind == "resolved" else "trigger",
        "dedup_key": alert["fingerprint"],
    }
    if kind != "resolved":
        payload["payload"] = {
            "summary": headline(alert, kind)[:1024],
            "severity": SEVERITY_FOR_PAGERDUTY[alert["severity"]],
            "source": source,
            "component": alert["rule"],
            "custom_details": {"value": alert.get("value"), "first_seen_at": alert["first_seen_at"]},
        }
        if alert.get("runbook"):
            payload["links"] = [{"href": alert["runbook"], "text": "Runbook"}]
    return payload


def webhook_payload(alert: dict, kind: str) -> dict:
    return {"event": kind, "alert": alert}
