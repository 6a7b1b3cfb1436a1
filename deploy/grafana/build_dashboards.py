#!/usr/bin/env python3
"""Builds the provisioned Grafana dashboards from the panel lists below.

    python3 deploy/grafana/build_dashboards.py          # write dashboards/*.json
    python3 deploy/grafana/build_dashboards.py --check  # fail if they are stale

Every panel states its definition in its description (shown on the panel's
(i) icon). Queries use only metric names the icsflow binary exports; the
end-to-end test (deploy/tests/check_deploy.py) runs each of them against a
real Prometheus scraping the pipeline and requires at least one series.
Standard library only.
"""

import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
THRESHOLDS = HERE.parent / "prometheus" / "rules" / "icsflow-thresholds.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Label filters from the dashboard variables, per label set.
PLACE = 'place=~"$place"'
PROVIDER = 'place=~"$place", provider=~"$provider"'
PATHWAY = 'pathway=~"$pathway"'
REASON = 'reason_family=~"$reason_family"'
# Totals over a window of complete days ending yesterday (the `_window`
# metrics), never a change in a running total.
WINDOW = 'period="$period"'
# The data-quality dashboard's partner.
ORGANISATION = 'organisation=~"$organisation"'
# The data-quality dashboard, linked from the others.
DATA_QUALITY_UID = "icsflow-data-quality"
DATA_QUALITY_LINK = {
    "title": "Data quality per partner",
    "type": "link",
    "url": f"/d/{DATA_QUALITY_UID}",
    "icon": "info",
    "tooltip": "Timeliness, completeness and consistency of each partner's feed: how far its figures here can be trusted",
    "targetBlank": False,
    "includeVars": False,
    "keepTime": True,
}


def named(expression, label, info, info_label):
    """`expression` (aggregated by `label`) with a `name` label: the name the
    ICS's reference data gives that code (the info metric `info`, whose code
    label is `info_label`), or the code itself where the reference data has
    none. Names live in the reference data, not in the dashboards, so an ICS
    renames a place without regenerating them."""
    names = f"max by ({label}, name) ({info})"
    if info_label != label:
        names = f'max by ({label}, name) (label_replace({info}, "{label}", "$1", "{info_label}", "(.*)"))'
    return (
        f"({expression}) * on({label}) group_left(name) {names}"
        f' or on({label}) label_replace({expression}, "name", "$1", "{label}", "(.*)")'
    )


def named_place(expression):
    return named(expression, "place", "icsflow_reference_place_info", "place")


def named_provider(expression):
    return named(expression, "provider", "icsflow_reference_partner_info", "organisation")


def named_organisation(expression):
    return named(expression, "organisation", "icsflow_reference_partner_info", "organisation")


def matching(selector, matcher):
    """The selector with one more label matcher."""
    return selector[:-1] + ", " + matcher + "}"


class Layout:
    """Places panels left to right in rows of 24 grid units."""

    def __init__(self):
        self.y = 0
        self.x = 0
        self.row_height = 0
        self.next_id = 1
        self.panels = []

    def row(self, title):
        self.newline()
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": self.take_id(),
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def newline(self):
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def take_id(self):
        self.next_id += 1
        return self.next_id - 1

    def add(self, panel, width, height):
        if self.x + width > 24:
            self.newline()
        panel["id"] = self.take_id()
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.row_height = max(self.row_height, height)
        self.panels.append(panel)


def targets(queries):
    return [
        {
            "datasource": DATASOURCE,
            "expr": expr,
            "legendFormat": legend,
            "refId": chr(ord("A") + index),
            "range": True,
            "instant": False,
        }
        for index, (expr, legend) in enumerate(queries)
    ]


NEUTRAL = [{"color": "blue", "value": None}]


def level_steps(level):
    """Green below three quarters of a level, amber to it, red from it."""
    return [
        {"color": "green", "value": None},
        {"color": "orange", "value": round(level * 0.75)},
        {"color": "red", "value": level},
    ]


def number(text):
    return float(text) if "." in text else int(text)


def threshold_level(record):
    """The value of a `vector(N)` level in deploy/prometheus/rules/icsflow-thresholds.yml
    (commented-out examples are not rules, and do not match)."""
    match = re.search(rf"^\s+- record: {re.escape(record)}\n\s+expr: vector\(([\d.]+)\)$", THRESHOLDS.read_text(), re.MULTILINE)
    return number(match.group(1))


def field_completeness_levels():
    """The completeness level of icsflow-thresholds.yml for each field that
    has one of its own (IcsflowFieldCompletenessLow compares with it rather
    than with the default)."""
    return {
        field: number(level)
        for level, field in re.findall(
            r"^\s+- record: icsflow:threshold:field_completeness_ratio\n\s+expr: vector\(([\d.]+)\)\n"
            r"\s+labels:\n\s+field: (\w+)$",
            THRESHOLDS.read_text(),
            re.MULTILINE,
        )
    }


def completeness_steps(level):
    """Red below a completeness level, green from it (the alert's comparison)."""
    return [{"color": "red", "value": None}, {"color": "green", "value": level}]


def completeness_panel(title, description, expression):
    """A bar per partner and field (series named "<partner>: <field>"), each
    coloured against its field's level: the default, or the field's own
    level by an override."""
    result = panel(
        "bargauge",
        title,
        description,
        [(expression, "{{name}}: {{field}}")],
        unit="percentunit",
        steps=completeness_steps(threshold_level("icsflow:threshold:field_completeness_ratio_default")),
    )
    result["fieldConfig"]["defaults"].update({"min": 0, "max": 1})
    result["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byRegexp", "options": f".*: {field}$"},
            "properties": [
                {"id": "thresholds", "value": {"mode": "absolute", "steps": completeness_steps(level)}}
            ],
        }
        for field, level in sorted(field_completeness_levels().items())
    ]
    return result


def panel(kind, title, description, queries, unit="none", steps=None, **options):
    """A panel; `steps` colours values by level (neutral when no level
    applies, never Grafana's default green/red at 80)."""
    result = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": targets(queries),
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "color": {"mode": "thresholds"},
                "thresholds": {"mode": "absolute", "steps": steps or NEUTRAL},
            },
            "overrides": [],
        },
        "options": {},
    }
    if kind == "stat":
        result["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "textMode": "auto",
        }
    elif kind == "bargauge":
        result["options"] = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "orientation": "horizontal",
            "displayMode": "basic",
            "showUnfilled": True,
        }
    elif kind == "timeseries":
        result["options"] = {
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        if options.get("stacked"):
            result["fieldConfig"]["defaults"]["custom"] = {
                "stacking": {"mode": "normal", "group": "A"},
                "fillOpacity": 40,
            }
    elif kind == "table":
        result["options"] = {"showHeader": True}
        for target in result["targets"]:
            target["instant"] = True
            target["range"] = False
            target["format"] = "table"
    return result


def variable(name, label, query, include_all=True, multi=True):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": include_all,
        "multi": multi,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


PERIOD_VARIABLE = {
    "name": "period",
    "label": "Totals over",
    "type": "custom",
    "description": "The complete days, ending yesterday, that totals (discharges, delays, bed days, "
    "readmissions, follow-up, reablement) cover: 1d yesterday, 7d the last week, 28d the last four.",
    "query": "1d,7d,28d",
    "options": [
        {"selected": False, "text": "1d", "value": "1d"},
        {"selected": False, "text": "7d", "value": "7d"},
        {"selected": True, "text": "28d", "value": "28d"},
    ],
    "current": {"selected": True, "text": "28d", "value": "28d"},
    "includeAll": False,
    "multi": False,
}


DATASOURCE_VARIABLE = {
    "name": "datasource",
    "label": "Prometheus",
    "type": "datasource",
    "query": "prometheus",
    "current": {"selected": False, "text": "Prometheus", "value": "prometheus"},
}


def dashboard(uid, title, description, tags, variables, layout, links=()):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": tags,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-7d", "to": "now"},
        "timezone": "Europe/London",
        "templating": {"list": [DATASOURCE_VARIABLE, *variables]},
        "annotations": {"list": []},
        # Every icsflow dashboard, one click away.
        "links": [
            {
                "title": "icsflow dashboards",
                "type": "dashboards",
                "tags": ["icsflow"],
                "asDropdown": False,
                "includeVars": False,
                "keepTime": True,
            },
            *links,
        ],
        "panels": layout.panels,
    }


def flow_by_place():
    nctr = f"icsflow_flow_not_meeting_criteria_patients{{{PROVIDER}, {PATHWAY}}}"
    by_stay = f"icsflow_flow_not_meeting_criteria_by_stay_patients{{{PROVIDER}, {PATHWAY}}}"
    delays = f"icsflow_flow_discharge_delay_discharges_window{{{PROVIDER}, {PATHWAY}, {WINDOW}}}"
    discharges = f"icsflow_flow_discharges_window{{{PROVIDER}, {PATHWAY}, {WINDOW}}}"
    waiting = f"icsflow_flow_waiting_for_care_patients{{{PLACE}, {PATHWAY}}}"
    layout = Layout()

    layout.row("Who is in hospital and no longer needs to be")
    layout.add(
        panel(
            "stat",
            "Not meeting the criteria to reside",
            "Patients in hospital now whose Discharge Ready Date has passed: open spells with a "
            "DRD and no discharge (the discharge sitrep's headline count). A patient who meets a "
            "criterion again leaves this count until a new DRD is set. Colours: the place level of "
            "icsflow-thresholds.yml (red from it, amber from three quarters of it).",
            [(f"sum({nctr})", "patients")],
            steps=level_steps(threshold_level("icsflow:threshold:not_meeting_criteria_patients_default")),
        ),
        6,
        5,
    )
    layout.add(
        panel(
            "stat",
            "Of those, in hospital 21+ days",
            "Patients not meeting the criteria to reside whose stay since admission is 21 days or "
            "more (\"super-stranded\").",
            [("sum(" + matching(by_stay, 'stay_days="21+"') + ")", "patients")],
        ),
        6,
        5,
    )
    layout.add(
        panel(
            "stat",
            "Delayed bed days, yesterday",
            "Midnights spent in hospital after a Discharge Ready Date that began yesterday: each "
            "one is a bed day lost (the 1-day window of the running total).",
            [(f'sum(icsflow_flow_delayed_bed_nights_window{{{PROVIDER}, {PATHWAY}, period="1d"}})', "bed days")],
        ),
        6,
        5,
    )
    layout.add(
        panel(
            "stat",
            "Waiting for social care to start",
            "Patients on pathways P1-P3 past their Discharge Ready Date (in hospital or already "
            "discharged) whose first social care service has not started.",
            [(f"sum({waiting})", "patients")],
        ),
        6,
        5,
    )
    quality = completeness_panel(
        "How complete these figures are: each partner's measure-critical fields",
        "For the partners of the place (its trusts and local authority, from the reference data), "
        "the share of their records in the period chosen above with each field the flow measures "
        "depend on recorded (docs/data-quality.md): discharge_ready_date, delay_reason and pathway "
        "per period not meeting the criteria to reside, destination per discharge, bed_type per "
        "admission, linked_spell per social care service start. Red below the level of "
        "icsflow-thresholds.yml: the figures on this dashboard that read that field are "
        "approximate for that partner (the runbook's IcsflowFieldCompletenessLow section says "
        "which), so quote them with the share. Every partner's detail: the Data quality per "
        "partner dashboard.",
        named_organisation(
            f"feed_organisation_field_period:icsflow_quality_completeness_recorded:ratio{{{WINDOW}}}"
            f' and on(organisation) icsflow_reference_partner_info{{{PLACE}}}'
        ),
    )
    quality["links"] = [{"title": "Data quality per partner", "url": f"/d/{DATA_QUALITY_UID}"}]
    layout.add(quality, 24, 8)
    layout.add(
        panel(
            "timeseries",
            "Not meeting the criteria to reside, by place",
            "Patients past their Discharge Ready Date and still in hospital, per place (GSS code), "
            "summed over its providers.",
            [(named_place(f"sum by (place) ({nctr})"), "{{name}}")],
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "timeseries",
            "Not meeting the criteria to reside per 100 occupied beds, by place",
            "Patients not meeting the criteria to reside per 100 patients in hospital (adults in "
            "general and acute beds, the same scope): the rate the discharge sitrep's publications "
            "and every comparison between places use, since places differ in size. From the "
            "recording rule place:icsflow_flow_not_meeting_criteria_per_100_beds:ratio.",
            [
                (
                    named_place(f"place:icsflow_flow_not_meeting_criteria_per_100_beds:ratio{{{PLACE}}}"),
                    "{{name}}",
                )
            ],
            unit="none",
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "timeseries",
            "Patients in hospital, by place",
            "Adults in general and acute beds (or beds of unknown type), admitted and not yet "
            "discharged: the occupied beds the rate above divides by.",
            [(named_place(f"sum by (place) (icsflow_flow_in_hospital_patients{{{PROVIDER}}})"), "{{name}}")],
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "timeseries",
            "Not meeting the criteria to reside, by pathway",
            "The same patients by the discharge pathway assigned (P0 home without new support, P1 "
            "home with support, P2 short-term bed, P3 care home; unassigned: none recorded yet).",
            [(f"sum by (pathway) ({nctr})", "{{pathway}}")],
            stacked=True,
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Length of stay since admission",
            "Patients not meeting the criteria to reside by days since admission, in the bands "
            "the sitrep publishes (0-6, 7-13, 14-20, 21+).",
            [(f"sum by (stay_days) ({by_stay})", "{{stay_days}} days")],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Waiting for what: delay reason family",
            "Patients not meeting the criteria to reside by the family of the delay reason "
            "currently recorded (the five families used since May 2024: hospital process, "
            "wellbeing, care transfer hub process, interface process, capacity; not_recorded "
            "when none is).",
            [
                (
                    f"sum by (reason_family) (icsflow_flow_delayed_by_reason_patients{{{PROVIDER}, {REASON}}})",
                    "{{reason_family}}",
                )
            ],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Not meeting the criteria to reside, by provider",
            "Patients past their Discharge Ready Date per acute trust (ODS code).",
            [(named_provider(f"sum by (provider) ({nctr})"), "{{name}}")],
        ),
        8,
        8,
    )

    layout.row("For how long: days since the Discharge Ready Date")
    by_delay = f"icsflow_flow_not_meeting_criteria_by_delay_patients{{{PROVIDER}, {PATHWAY}, {REASON}}}"
    waiting_by_delay = f"icsflow_flow_waiting_for_care_by_delay_patients{{{PLACE}, {PATHWAY}}}"
    layout.add(
        panel(
            "bargauge",
            "Not meeting the criteria, by days since their ready date",
            "Patients in hospital now past their Discharge Ready Date, by days since it, in the "
            "published bands (0 is the ready date itself; 1, 2-3, 4-6, 7-13, 14-20, 21+).",
            [(f"sum by (delay_days) ({by_delay})", "{{delay_days}} days")],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Waiting a week or more, for what",
            "Patients past their Discharge Ready Date for 7 days or more, by the family of the "
            "delay reason in effect today (not_recorded when none is).",
            [
                (
                    "sum by (reason_family) ("
                    + matching(by_delay, 'delay_days!~"0|1|2-3|4-6"')
                    + ")",
                    "{{reason_family}}",
                )
            ],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Waiting for social care to start, by days waited",
            "Patients on pathways P1-P3 whose first social care service has not started, by days "
            "since their Discharge Ready Date (in hospital or already discharged).",
            [(f"sum by (delay_days) ({waiting_by_delay})", "{{delay_days}} days")],
        ),
        8,
        8,
    )

    layout.row("Delays: from Discharge Ready Date to discharge")
    layout.add(
        panel(
            "bargauge",
            "Discharges by days from ready date to discharge",
            "Discharges of patients with a Discharge Ready Date, by days from it to discharge, in "
            "the published bands (0, 1, 2-3, 4-6, 7-13, 14-20, 21+), over the period chosen above "
            "(complete days ending yesterday).",
            [(f"sum by (delay_days) ({delays})", "{{delay_days}} days")],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "stat",
            "Discharged on their ready date",
            "Share of discharges with a Discharge Ready Date that happened on that date "
            "(0-day delay).",
            [("sum(" + matching(delays, 'delay_days="0"') + f") / sum({delays})", "on the day")],
            unit="percentunit",
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "stat",
            "Average delay, excluding 0-day delays",
            "Mean days from Discharge Ready Date to discharge over the discharges delayed by at "
            "least one day (the national \"average days from DRD to discharge excluding 0-day "
            "delays\").",
            [
                (
                    f"sum(icsflow_flow_discharge_delay_length{{{PROVIDER}}})"
                    " / sum(" + matching(delays, 'delay_days!="0"') + ")",
                    "days",
                )
            ],
            unit="d",
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "timeseries",
            "Delayed bed days in the window, by reason family",
            "Midnights spent in hospital after a Discharge Ready Date in the window (complete days "
            "ending yesterday), by the delay reason family in effect the day before; over time, a "
            "rolling total.",
            [
                (
                    f"sum by (reason_family) (icsflow_flow_delayed_bed_nights_window{{{PROVIDER}, {PATHWAY}, {REASON}, {WINDOW}}})",
                    "{{reason_family}}",
                )
            ],
            stacked=True,
        ),
        24,
        8,
    )

    layout.row("Discharges")
    layout.add(
        panel(
            "bargauge",
            "Discharges by pathway",
            "Discharges by the pathway recorded at discharge (P0-P3; unassigned when none was).",
            [(f"sum by (pathway) ({discharges})", "{{pathway}}")],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Discharges by destination",
            "Discharges by destination group: usual_residence (code 19), "
            "care_home (54, 55, 56, 65, 85), other_hospital (48-53, 84, 87: transfers, "
            "not discharges home), hospice (88), died (79), other (temporary residence, "
            "court, prison, police, foster care, repatriation, not applicable, not known).",
            [(f"sum by (destination) ({discharges})", "{{destination}}")],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "stat",
            "Discharged to usual place of residence",
            "Share of the period's discharges of living patients whose destination is the usual "
            "place of residence (Better Care Fund metric; deaths are not in the denominator).",
            [
                (
                    "sum("
                    + matching(discharges, 'destination="usual_residence"')
                    + ") / sum("
                    + matching(discharges, 'destination!="died"')
                    + ")",
                    "usual residence",
                )
            ],
            unit="percentunit",
        ),
        8,
        8,
    )

    layout.row("After discharge")
    layout.add(
        panel(
            "bargauge",
            "Waiting for social care to start, by pathway",
            "Patients on P1-P3 past their Discharge Ready Date with no social care service "
            "started yet, by pathway.",
            [(f"sum by (pathway) ({waiting})", "{{pathway}}")],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Days from ready date to care starting",
            "Patients on P1-P3 whose first social care service started, by days from the "
            "Discharge Ready Date to the start (same bands as discharge delays).",
            [
                (
                    f"sum by (delay_days) (icsflow_flow_care_start_delay_patients_window{{{PLACE}, {PATHWAY}, {WINDOW}}})",
                    "{{delay_days}} days",
                )
            ],
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "stat",
            "Emergency readmissions within 30 days",
            "Emergency readmissions in the period (counted on the readmission day, 0-29 days after "
            "a discharge) per discharge of a living patient in the same period (deaths are not in "
            "the denominator), by the discharging provider. Discharges of the last 30 days, whose "
            "window is still open, are in the denominator.",
            [
                (
                    f"sum(icsflow_flow_emergency_readmissions_window{{{PROVIDER}, {WINDOW}}}) / sum("
                    + matching(discharges, 'destination!="died"')
                    + ")",
                    "per discharge",
                )
            ],
            unit="percentunit",
        ),
        8,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "GP follow-up after discharge",
            "Share of discharged patients with an attended primary care contact within 7 and "
            "within 14 days of discharge, among discharges whose window has closed or who were "
            "seen already (attended over attended plus not attended; pending windows are left out).",
            [
                (
                    f'sum by (window) (icsflow_flow_gp_follow_up_discharges_window{{{PLACE}, outcome="attended", {WINDOW}}})'
                    f' / sum by (window) (icsflow_flow_gp_follow_up_discharges_window{{{PLACE}, outcome=~"attended|not_attended", {WINDOW}}})',
                    "within {{window}}",
                )
            ],
            unit="percentunit",
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Reablement: where people are 91 days after discharge",
            "People 65+ discharged into reablement (a service starting from 3 days before to 7 "
            "days after discharge), by where they are 91 days after discharge: at_home, "
            "readmitted, died, or pending while the 91 days run (ASCOF 2D / BCF).",
            [
                (
                    f"sum by (outcome) (icsflow_flow_reablement_91_day_people_window{{{PLACE}, {WINDOW}}})",
                    "{{outcome}}",
                )
            ],
        ),
        12,
        8,
    )

    layout.row("Data quality")
    layout.add(
        panel(
            "table",
            "Events linked to no hospital journey",
            "Events per feed and publishing organisation that link to no hospital journey held "
            "(for example a social care request for a patient with no admission in the window). "
            "A rising count points at a partner's pseudonymisation key or extract.",
            [
                (
                    named_organisation("sum by (feed, organisation) (icsflow_quality_unlinked_events)"),
                    "{{feed}}: {{name}}",
                )
            ],
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "table",
            "Delay reasons recorded, by trust",
            "Of each trust's patients not meeting the criteria to reside now, the share whose "
            "delay has a reason recorded (docs/data-quality.md). Where it is low, the delay-reason "
            "panels above undercount every reason for that trust: read them with this caveat. "
            "IcsflowFieldCompletenessLow (field delay_reason) fires when a trust records a reason "
            "in too few of yesterday's periods not meeting the criteria to reside.",
            [
                (
                    named_provider(
                        f"place_provider:icsflow_flow_delay_reason_recorded:ratio{{{PROVIDER}}}"
                    ),
                    "{{name}}",
                )
            ],
            unit="percentunit",
        ),
        12,
        8,
    )
    layout.row("How fresh the figures are")
    layout.add(
        panel(
            "stat",
            "Newest event, per partner feed",
            "Time since the newest accepted event of each partner organisation and feed: how "
            "current each partner's share of the figures above is. Trusts publish within minutes; "
            "councils and practices in office hours (their cadence is in the reference data, and "
            "IcsflowPartnerFeedQuiet follows it). Amber from 2 hours, red from 6.",
            [
                (
                    named_organisation(
                        "time() - max by (feed, organisation) (icsflow_ingest_last_event_timestamp_seconds)"
                    ),
                    "{{feed}}: {{name}}",
                )
            ],
            unit="s",
            steps=[
                {"color": "green", "value": None},
                {"color": "orange", "value": 7200},
                {"color": "red", "value": 21600},
            ],
        ),
        24,
        6,
    )
    return dashboard(
        "icsflow-flow-by-place",
        "ICS flow by place",
        "How many people are in hospital who no longer need to be, where, on which pathway, "
        "waiting for what and for how long; with discharges, care starts and outcomes.",
        ["icsflow", "discharge"],
        [
            variable(
                "place",
                "Place",
                "label_values(icsflow_flow_not_meeting_criteria_patients, place)",
            ),
            variable(
                "provider",
                "Provider",
                'label_values(icsflow_flow_not_meeting_criteria_patients{place=~"$place"}, provider)',
            ),
            PERIOD_VARIABLE,
            variable(
                "pathway",
                "Pathway",
                "label_values(icsflow_flow_not_meeting_criteria_patients, pathway)",
            ),
            variable(
                "reason_family",
                "Delay reason",
                "label_values(icsflow_flow_delayed_by_reason_patients, reason_family)",
            ),
        ],
        layout,
        links=[DATA_QUALITY_LINK],
    )


def pipeline_health():
    layout = Layout()
    layout.row("Is it running")
    layout.add(
        panel(
            "stat",
            "Ready",
            "icsflow_ready per process: 1 when /readyz answers 200 (broker reachable and every "
            "assigned journey partition replayed).",
            [("icsflow_ready", "{{job}} {{instance}}")],
        ),
        8,
        6,
    )
    layout.add(
        panel(
            "timeseries",
            "Replay still to do",
            "Records each join replica still has to replay before its assigned journey "
            "partitions are ready (0 once caught up).",
            [("sum by (instance) (icsflow_join_replay_remaining_records)", "{{instance}}")],
        ),
        8,
        6,
    )
    layout.add(
        panel(
            "stat",
            "Journeys held and partitions owned",
            "Patient journeys held in memory and journey topic partitions owned, per join "
            "replica.",
            [
                ("sum by (instance) (icsflow_join_journeys)", "journeys {{instance}}"),
                ("sum by (instance) (icsflow_join_owned_partitions)", "partitions {{instance}}"),
            ],
        ),
        8,
        6,
    )
    layout.row("Throughput and lag")
    layout.add(
        panel(
            "timeseries",
            "Records consumed per second",
            "Records consumed per second by role and topic, over 5 minutes.",
            [
                (
                    "sum by (role, topic) (rate(icsflow_pipeline_consumed_records_total[5m]))",
                    "{{role}} {{topic}}",
                )
            ],
            unit="rps",
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "timeseries",
            "Records produced per second",
            "Records produced and acknowledged per second by topic (journey and dead-letter).",
            [
                (
                    "sum by (topic) (rate(icsflow_pipeline_produced_records_total[5m]))",
                    "{{topic}}",
                )
            ],
            unit="rps",
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "timeseries",
            "Consumer lag",
            "Records between each role's position (ingest: committed offset; join: last record taken) and the end of each topic, "
            "summed over partitions. Growing lag means the role is falling behind.",
            [
                (
                    "sum by (role, topic) (icsflow_pipeline_consumer_lag_records)",
                    "{{role}} {{topic}}",
                )
            ],
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "timeseries",
            "Engine events by outcome",
            "Events given to the journey engines per second: applied, duplicate (absorbed by "
            "idempotence, or a version of an event that does not stand: one with new content is "
            "still counted as a conflicting re-send), beyond_horizon (older than the eviction horizon), undecodable, journey_full (a patient past 1,000 events and versions kept, or 255 spell references: a feed flooding one pseudonym), not_in_reference (an organisation no partner of the reference data speaks for, in records written before ingest checked it), too_many_label_values (past an engine's 16-bit tables; never expected).",
            [
                (
                    "sum by (outcome) (rate(icsflow_engine_events_total[5m]))",
                    "{{outcome}}",
                )
            ],
            unit="rps",
        ),
        12,
        8,
    )
    layout.row("Partners")
    layout.add(
        panel(
            "table",
            "Freshness: age of the newest event per partner feed",
            "Seconds since the occurred_at of the newest accepted event from each partner and "
            "feed. Trusts publish within minutes, local authorities hourly, practices a few "
            "times a day; the IcsflowPartnerFeedQuiet alert fires past its level.",
            [
                (
                    named_organisation(
                        "time() - max by (feed, organisation) (icsflow_ingest_last_event_timestamp_seconds)"
                    ),
                    "{{feed}}: {{name}}",
                )
            ],
            unit="s",
        ),
        12,
        10,
    )
    layout.add(
        panel(
            "table",
            "Timeliness: share of each partner's events that arrived within a day",
            "Of the events accepted from each partner and feed in the last 24 hours, the share "
            "that reached the ICS less than a day after the partner recorded them "
            "(icsflow_ingest_events_by_delay_total, stage arrived; docs/data-quality.md). A "
            "partner whose share falls is publishing late: its place's flow numbers lag.",
            [
                (
                    named_organisation(
                        'sum by (feed, organisation) (increase(icsflow_ingest_events_by_delay_total{stage="arrived", delay=~"same_hour|same_day"}[1d]))'
                        " / sum by (feed, organisation) (increase(icsflow_ingest_events_by_delay_total{stage=\"arrived\"}[1d]))"
                    ),
                    "{{feed}}: {{name}}",
                )
            ],
            unit="percentunit",
        ),
        12,
        10,
    )
    layout.add(
        panel(
            "table",
            "Rejected in the last 24 hours, by partner and reason",
            "Partner records sent to the dead-letter topic in the last 24 hours by feed, "
            "organisation (unknown when the record was too broken to say) and reason code "
            "(header icsflow.reason on each dead-letter record).",
            [
                (
                    named_organisation(
                        "sum by (feed, organisation, reason) (increase(icsflow_ingest_rejected_records_total[24h])) > 0"
                    ),
                    "{{name}} {{reason}}",
                )
            ],
        ),
        12,
        10,
    )
    layout.add(
        panel(
            "timeseries",
            "Dead-letter rate by partner and reason",
            "Records rejected per second over 5 minutes, by organisation and reason.",
            [
                (
                    named_organisation(
                        "sum by (organisation, reason) (rate(icsflow_ingest_rejected_records_total[5m]))"
                    ),
                    "{{name}} {{reason}}",
                )
            ],
            unit="rps",
        ),
        24,
        8,
    )
    layout.row("Versions")
    layout.add(
        panel(
            "table",
            "Build",
            "icsflow_build_info: which version (and git revision) and role each scraped process runs, on which librdkafka.",
            [("icsflow_build_info", "{{role}} {{version}} {{revision}} librdkafka {{librdkafka}}")],
        ),
        24,
        5,
    )
    return dashboard(
        "icsflow-pipeline-health",
        "icsflow pipeline health",
        "Is icsflow running, keeping up, and hearing from every partner; what it rejects and why.",
        ["icsflow", "operations"],
        [],
        layout,
        links=[DATA_QUALITY_LINK],
    )


def data_quality():
    by_delay = "icsflow_ingest_events_by_delay_total"
    completeness = "feed_organisation_field_period:icsflow_quality_completeness_recorded:ratio"
    records = "feed_organisation_field_period:icsflow_quality_completeness_records:sum"
    layout = Layout()

    layout.row("Timeliness: how soon events are recorded and reach the ICS")
    for stage, title, meaning in [
        (
            "arrived",
            "Arrived within the hour of being recorded, per partner feed",
            "reached the ICS less than an hour after the partner recorded them (delay same_hour "
            "from recorded_at to ingest accepting them: the partner's publishing cadence, its "
            "outages and icsflow's own lag; a partner publishing a nightly batch reads near 0)",
        ),
        (
            "recorded",
            "Recorded within the hour of happening, per partner feed",
            "the partner recorded less than an hour after they happened (delay same_hour from "
            "occurred_at to recorded_at: how long the partner's staff and systems took to record "
            "them)",
        ),
    ]:
        layout.add(
            panel(
                "bargauge",
                title,
                f"Of the events ingest accepted from each partner and feed in the last 7 days, the "
                f"share that {meaning}; icsflow_ingest_events_by_delay_total, stage {stage} "
                "(docs/data-quality.md, Timeliness). A partner whose share is low is late: its "
                "figures lag, and yesterday's are still arriving.",
                [
                    (
                        named_organisation(
                            f'sum by (feed, organisation) (increase({by_delay}{{stage="{stage}", delay="same_hour", {ORGANISATION}}}[7d]))'
                            f' / (sum by (feed, organisation) (increase({by_delay}{{stage="{stage}", {ORGANISATION}}}[7d])) > 0)'
                        ),
                        "{{feed}}: {{name}}",
                    )
                ],
                unit="percentunit",
            ),
            12,
            8,
        )
    for stage, title, meaning in [
        ("arrived", "How late events arrive, by partner and delay band", "from recorded_at to ingest accepting them"),
        ("recorded", "How late events are recorded, by partner and delay band", "from occurred_at to recorded_at"),
    ]:
        layout.add(
            panel(
                "bargauge",
                title,
                f"Events accepted in the last 7 days from each partner chosen above, by the delay {meaning}: "
                "same_hour (under 1 hour), same_day (1 to 24 hours), next_day (24 to 48 hours), later "
                "(48 hours or more). Every accepted event counts once; an ingest group reading a "
                "topic's history from its start counts every old record as later.",
                [
                    (
                        named_organisation(
                            f'sum by (organisation, delay) (increase({by_delay}{{stage="{stage}", {ORGANISATION}}}[7d]))'
                        ),
                        "{{name}}: {{delay}}",
                    )
                ],
            ),
            12,
            8,
        )

    layout.row("Completeness: the fields the flow measures depend on")
    layout.add(
        completeness_panel(
            "Recorded over the last 7 days, by partner and field",
            "Of each partner's records of the 7 complete days ending yesterday, the share with a "
            "measure-critical field recorded (docs/data-quality.md, Completeness): for a trust, "
            "discharge_ready_date, delay_reason and pathway per period not meeting the criteria to "
            "reside, destination (other than not known) per discharge, bed_type per admission; "
            "for a local authority, linked_spell (the person has a hospital spell) per social care "
            "service start. Red below the level in icsflow-thresholds.yml (the field's own, else "
            "the default): the runbook's IcsflowFieldCompletenessLow section says which measures "
            "are then approximate for that partner.",
            named_organisation(f'{completeness}{{period="7d", {ORGANISATION}}}'),
        ),
        24,
        10,
    )
    layout.add(
        completeness_panel(
            "Recorded yesterday, by partner and field",
            "The same share over yesterday (the last complete London day), for the partners and "
            "fields with at least the minimum number of records that day in icsflow-thresholds.yml. "
            "Still arriving: a partner that publishes a nightly batch sends yesterday's records "
            "tonight, and a delay's reason and pathway count whenever they come before it ends, so "
            "this share rises through the next day. IcsflowFieldCompletenessLow therefore reads "
            "the 6 days before yesterday.",
            named_organisation(
                f'{completeness}{{period="1d", {ORGANISATION}}}'
                f' and on(feed, organisation, field) ({records}{{period="1d"}}'
                " >= on() group_left() icsflow:threshold:field_completeness_minimum_records)"
            ),
        ),
        12,
        10,
    )
    layout.add(
        panel(
            "bargauge",
            "Records behind the shares, last 7 days",
            "How many records each share above is taken over, per partner and field: periods not "
            "meeting the criteria to reside (discharge_ready_date, delay_reason, pathway), "
            "discharges (destination), admissions (bed_type), social care service starts "
            "(linked_spell). A share over a few records moves a lot.",
            [(named_organisation(f'{records}{{period="7d", {ORGANISATION}}}'), "{{name}}: {{field}}")],
        ),
        12,
        10,
    )

    layout.row("Consistency: per 1,000 events accepted, last 7 days")
    layout.add(
        panel(
            "bargauge",
            "Refused per 1,000 records, by partner and reason",
            "Records ingest refused (dead-lettered) per 1,000 the partner sent, accepted or refused, "
            "in the last 7 days, by reason code (the icsflow.reason header; "
            "`icsflow rejections --organisation CODE` lists them); reasons with none in the 7 days "
            "left out. Records too broken to say whose, or of an organisation no partner speaks "
            "for, are charged to no partner: the pipeline health dashboard counts them.",
            [
                (
                    named_organisation(
                        f"feed_organisation_reason:icsflow_ingest_rejected_records:per_1000_7d{{{ORGANISATION}}} > 0"
                    ),
                    "{{name}} {{feed}}: {{reason}}",
                )
            ],
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Linked to no journey, per 1,000 accepted",
            "Events that occurred in the 7 complete days ending yesterday and link to no hospital "
            "journey (docs/metrics.md, 11), per 1,000 events accepted from the partner over the last "
            "7 days. Approximate: the engine counts calendar days by when events occurred, ingest a "
            "rolling 7 days by when they arrived. A rising rate points at the partner's "
            "pseudonymisation key or extract.",
            [
                (
                    named_organisation(
                        f"feed_organisation:icsflow_quality_unlinked_events:per_1000_7d{{{ORGANISATION}}}"
                    ),
                    "{{feed}}: {{name}}",
                )
            ],
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Corrections and conflicting re-sends, per 1,000 accepted",
            "Events that amend others, per 1,000 accepted, approximate as above: correction (an "
            "event naming corrects_event_id) and conflicting_resend (a second version of an event "
            "id with other content than another, recorded_at aside; one version stands, "
            "docs/metrics.md). Both are normal in moderation: a field filled in later and sent "
            "again under the same id is a conflicting re-send; many point at an extract that "
            "changes records without correcting them, or re-uses event ids.",
            [
                (
                    named_organisation(
                        "sum by (feed, organisation, amendment) "
                        f"(feed_organisation_amendment:icsflow_quality_amended_events:per_1000_7d{{{ORGANISATION}}})"
                    ),
                    "{{name}} {{feed}}: {{amendment}}",
                )
            ],
        ),
        12,
        8,
    )
    layout.add(
        panel(
            "bargauge",
            "Events accepted, last 7 days",
            "Events ingest accepted from each partner and feed over the last 7 days: what the "
            "rates in this row are per 1,000 of.",
            [
                (
                    named_organisation(f"feed_organisation:icsflow_ingest_accepted_events:increase7d{{{ORGANISATION}}}"),
                    "{{feed}}: {{name}}",
                )
            ],
        ),
        12,
        8,
    )
    return dashboard(
        DATA_QUALITY_UID,
        "Data quality per partner",
        "How far each partner's feed can be trusted: how soon its events arrive, how complete the "
        "fields the flow measures depend on are, and how many of its records are refused, unlinked "
        "or amended.",
        ["icsflow", "data-quality"],
        [
            variable(
                "organisation",
                "Partner",
                "label_values(icsflow_ingest_events_by_delay_total, organisation)",
            ),
        ],
        layout,
    )


DASHBOARDS = {
    "ics-flow-by-place.json": flow_by_place,
    "pipeline-health.json": pipeline_health,
    "data-quality.json": data_quality,
}


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        path = OUT / name
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(
            "stale dashboards (run python3 deploy/grafana/build_dashboards.py): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
