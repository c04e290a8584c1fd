"""Report pages: the workspace dashboard, campaign reports with recipients and CSV export, comparisons.

Every page reads through analytics.selectors (rollups, standby first, cached figures when no
database answers) and is wrapped in `report_member_required`, so a database outage shows the
last figures with their age instead of an error.
"""

import csv

from django.db import DatabaseError
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from analytics import selectors
from analytics.access import get_campaign_for_report, layout_context, report_member_required
from analytics.lib.charts import Series, bar_chart, line_chart
from analytics.lib.csvcells import safe_cell

PAGE_SIZE = 50


def _unavailable(request, member, what: str):
    response = render(request, "analytics/unavailable.html", {"what": what, **layout_context(member)}, status=503)
    response["Retry-After"] = "30"
    return response


def _engagement_chart(hourly: list[dict]) -> str:
    if not hourly:
        return ""
    return line_chart(
        title="Opens and clicks per hour",
        x_labels=[row["hour"] for row in hourly],
        series=[
            Series("Unique opens", [row["unique_opens"] for row in hourly]),
            Series("Unique clicks", [row["unique_clicks"] for row in hourly]),
            Series("All opens", [row["opens"] for row in hourly]),
        ],
        y_unit="people per hour",
    )


@report_member_required
def dashboard(request, *, member):
    try:
        figures = selectors.workspace_dashboard(member=member)
    except selectors.FiguresUnavailable:
        return _unavailable(request, member, "the dashboard")
    growth = figures.data["growth"]
    growth_chart = ""
    if len(growth) > 1:
        growth_chart = line_chart(
            title="Active subscribers per day",
            x_labels=[timezone.datetime(d["day"].year, d["day"].month, d["day"].day) for d in growth],
            series=[Series("Active subscribers", [d["subscribers"] for d in growth])],
            y_unit="subscribers",
            x_unit="day",
        )
    return render(
        request,
        "analytics/dashboard.html",
        {"figures": figures, "data": figures.data, "growth_chart": growth_chart, **layout_context(member)},
    )


@report_member_required
def overview(request, *, member):
    try:
        campaigns = selectors.workspace_campaigns(member=member, using=selectors.read_aliases()[0])
    except DatabaseError:
        return _unavailable(request, member, "the campaign list")
    return render(request, "analytics/overview.html", {"campaigns": campaigns, **layout_context(member)})


@report_member_required
def campaign_report(request, campaign_id, *, member):
    try:
        figures = selectors.campaign_report(member=member, campaign_id=campaign_id)
    except selectors.FiguresUnavailable:
        return _unavailable(request, member, "this report")
    data = figures.data
    links_chart = ""
    if data["links"]:
        links_chart = bar_chart(
            title="Clicks per link",
            bars=[(link["url"] or f"Link {link['position'] + 1}", link["clicks"]) for link in data["links"][:10]],
            unit="clicks (people, bots excluded)",
        )
    return render(
        request,
        "analytics/report.html",
        {
            "figures": figures,
            "data": data,
            "chart": _engagement_chart(data["hourly"]),
            "links_chart": links_chart,
            "outcomes": selectors.OUTCOMES,
            **layout_context(member),
        },
    )


def _outcome(outcome: str) -> str:
    if outcome not in selectors.OUTCOMES:
        raise Http404("No such outcome.")
    return outcome


@report_member_required
def recipients(request, campaign_id, outcome, *, member):
    outcome = _outcome(outcome)
    try:
        after = max(0, int(request.GET.get("after", "0") or 0))
    except ValueError:
        after = 0
    try:
        alias = selectors.read_aliases()[0]
        campaign = get_campaign_for_report(member, campaign_id, using=alias)
        rows = selectors.recipients(campaign=campaign, outcome=outcome, after=after, limit=PAGE_SIZE + 1, using=alias)
    except DatabaseError:
        return _unavailable(request, member, "this list of recipients")
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    next_url = ""
    if more:
        next_url = f"{reverse('analytics:recipients', args=[campaign.pk, outcome])}?after={rows[-1]['delivery_id']}"
    return render(
        request,
        "analytics/recipients.html",
        {
            "campaign": campaign,
            "outcome": outcome,
            "outcome_label": selectors.OUTCOMES[outcome],
            "outcomes": selectors.OUTCOMES,
            "rows": rows,
            "next_url": next_url,
            "first_page": after == 0,
            **layout_context(member),
        },
    )


class _Echo:
    def write(self, value):
        return value


@report_member_required
def recipients_export(request, campaign_id, outcome, *, member):
    outcome = _outcome(outcome)
    try:
        alias = selectors.read_aliases()[0]
        campaign = get_campaign_for_report(member, campaign_id, using=alias)
    except DatabaseError:
        return _unavailable(request, member, "this export")
    writer = csv.writer(_Echo())

    def lines():
        yield writer.writerow(["email", "outcome", "at", "detail"])
        for row in selectors.recipients_all(campaign=campaign, outcome=outcome, using=alias):
            at = row["at"].isoformat() if row["at"] else ""
            yield writer.writerow([safe_cell(row["email"]), outcome, at, safe_cell(row["detail"])])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-{outcome}.csv"'
    return response


@report_member_required
def compare(request, *, member):
    ids = []
    for raw in request.GET.getlist("c"):
        if raw.isdigit():
            ids.append(int(raw))
    try:
        figures = selectors.campaigns_for_comparison(member=member, campaign_ids=ids)
    except selectors.FiguresUnavailable:
        return _unavailable(request, member, "the comparison")
    rows = figures.data["rows"]
    chart = ""
    if rows:
        chart = bar_chart(
            title="Open rate by campaign",
            bars=[(row["name"], round(row["rates"]["open_rate"] * 100, 1)) for row in rows],
            unit="unique opens, % of delivered",
        )
    return render(
        request,
        "analytics/compare.html",
        {
            "figures": figures,
            "rows": rows,
            "choices": figures.data["choices"],
            "chosen": set(ids),
            "chart": chart,
            **layout_context(member),
        },
    )
