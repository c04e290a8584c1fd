"""Segment rules compiled to one ORM filter (never string-built SQL).

Rules: `{"match": "all" | "any", "conditions": [condition, ...]}`; a condition is
`{"field": F, "op": OP, "value": V}` with

- F in `email`, `name`, `source`, `status`, `created_at`, `last_activity_at`, `attribute:<key>`, `list`
- text ops: `eq`, `neq`, `contains`, `starts_with`, `ends_with`, `exists`
- number and date ops (attributes, dates): `eq`, `neq`, `gt`, `lt`, `exists`; `within_days`,
  `before_days` (dates: in / not in the last V days)
- list ops: `in_list`, `not_in_list` (V is a list id; confirmed or unconfirmed members count)

`validate_rules` raises `SegmentRuleError` with a message a marketer can act on.
"""

from datetime import timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

TEXT_FIELDS = {"email", "name", "source"}
DATE_FIELDS = {"created_at", "last_activity_at"}
TEXT_OPS = {"eq", "neq", "contains", "starts_with", "ends_with", "exists"}
ATTRIBUTE_OPS = TEXT_OPS | {"gt", "lt"}
DATE_OPS = {"within_days", "before_days", "exists"}
LIST_OPS = {"in_list", "not_in_list"}
STATUS_OPS = {"eq", "neq"}
MAX_CONDITIONS = 50


class SegmentRuleError(ValueError):
    """A rule that cannot be compiled, with the reason."""


def validate_rules(rules: object) -> dict:
    """The rules, normalised; raises SegmentRuleError naming the first bad condition."""
    if not isinstance(rules, dict):
        raise SegmentRuleError("Rules must be an object with 'match' and 'conditions'.")
    match = rules.get("match", "all")
    if match not in ("all", "any"):
        raise SegmentRuleError("'match' must be 'all' or 'any'.")
    conditions = rules.get("conditions", [])
    if not isinstance(conditions, list):
        raise SegmentRuleError("'conditions' must be a list.")
    if len(conditions) > MAX_CONDITIONS:
        raise SegmentRuleError(f"A segment may have at most {MAX_CONDITIONS} conditions.")
    for number, condition in enumerate(conditions, start=1):
        _check_condition(number, condition)
    return {"match": match, "conditions": conditions}


def _check_condition(number: int, condition: object) -> None:
    if not isinstance(condition, dict):
        raise SegmentRuleError(f"Condition {number} must be an object.")
    field, op = condition.get("field"), condition.get("op")
    if not isinstance(field, str) or not isinstance(op, str):
        raise SegmentRuleError(f"Condition {number} needs a 'field' and an 'op'.")
    if field in TEXT_FIELDS:
        allowed = TEXT_OPS
    elif field in DATE_FIELDS:
        allowed = DATE_OPS
    elif field == "status":
        allowed = STATUS_OPS
    elif field == "list":
        allowed = LIST_OPS
    elif field.startswith("attribute:") and len(field) > len("attribute:"):
        allowed = ATTRIBUTE_OPS
    else:
        raise SegmentRuleError(f"Condition {number}: unknown field {field!r}.")
    if op not in allowed:
        raise SegmentRuleError(f"Condition {number}: {field!r} cannot be compared with {op!r}.")
    value = condition.get("value")
    if op in ("within_days", "before_days") and (not isinstance(value, int) or value < 0):
        raise SegmentRuleError(f"Condition {number}: the number of days must be a whole number, 0 or more.")
    if op in LIST_OPS and not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
        raise SegmentRuleError(f"Condition {number}: choose a list.")
    if op not in ("exists", *DATE_OPS, *LIST_OPS) and value is None:
        raise SegmentRuleError(f"Condition {number}: a value is required.")


def segment_q(rules: dict) -> Q:
    """One Q over Subscriber that selects the segment's members (an empty rule set selects all)."""
    rules = validate_rules(rules)
    parts = [_condition_q(condition) for condition in rules["conditions"]]
    if not parts:
        return Q()
    combined = parts[0]
    for part in parts[1:]:
        combined = combined & part if rules["match"] == "all" else combined | part
    return combined


def _condition_q(condition: dict) -> Q:
    from subscribers.models import ListMembership

    field, op, value = condition["field"], condition["op"], condition.get("value")
    if field == "list":
        on_list = Exists(
            ListMembership.objects.filter(
                subscriber=OuterRef("pk"),
                mailing_list_id=int(value),
                status__in=[ListMembership.Status.CONFIRMED, ListMembership.Status.UNCONFIRMED],
            )
        )
        return Q(on_list) if op == "in_list" else ~Q(on_list)
    if field in DATE_FIELDS:
        if op == "exists":
            return Q(**{f"{field}__isnull": False})
        since = timezone.now() - timedelta(days=value)
        return Q(**{f"{field}__gte": since}) if op == "within_days" else Q(**{f"{field}__lt": since})
    if field.startswith("attribute:"):
        lookup = "attributes__" + field.removeprefix("attribute:")
        if op == "exists":
            return Q(attributes__has_key=field.removeprefix("attribute:"))
    else:
        lookup = field
    if isinstance(value, str) and field != "status":
        value = value.strip()
        text_lookups = {"eq": "iexact", "contains": "icontains", "starts_with": "istartswith", "ends_with": "iendswith"}
    else:
        text_lookups = {"eq": "exact"}
    if op == "exists":
        return ~Q(**{lookup: ""}) & Q(**{f"{lookup}__isnull": False})
    if op == "neq":
        return ~Q(**{f"{lookup}__{text_lookups['eq']}": value})
    if op in ("gt", "lt"):
        return Q(**{f"{lookup}__{op}": value})
    return Q(**{f"{lookup}__{text_lookups[op]}": value})
