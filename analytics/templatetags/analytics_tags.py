"""Template filters for report figures."""

from django import template

register = template.Library()


@register.filter
def percent(rate) -> str:
    """0.1234 -> "12.34%" (two decimals: complaint rates live around 0.1%)."""
    try:
        return f"{float(rate) * 100:.2f}%"
    except (TypeError, ValueError):
        return "–"
