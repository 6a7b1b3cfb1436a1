"""Edge cases of the "not meeting the criteria to reside" definition, one patient each.

    python checks/edge_cases.py HOST:PORT PREFIX

Creates PREFIX.discharge, PREFIX.social_care and PREFIX.primary_care (4
partitions) and produces 68 single-object records: corrections (also from a
site), re-sends that differ (recorded later and earlier), age 17, a maternity
bed, no bed type, a site's admission, an out-of-area place, a Discharge Ready
Date before the admission and one tomorrow, criteria met again, discharges
cancelled before and after (and in the same second), spells without a
reference, an admission cancelled and entered again, two open spells at once,
duplicates, events out of order and an unknown organisation. Run icsflow (the
benchmark's reference data, checks/samples-reference.toml) and the Streams
application over the same topics and compare the per-place counts: on
2026-12-07 both gave E06000047 14, out_of_area 1, and 2 records dead-lettered
as organisation_mismatch. Needs fastavro and confluent-kafka.
"""
import io, sys, time, itertools
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fastavro
from produce_workload import current_schema, uuid_text, FEEDS
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, prefix = sys.argv[1], sys.argv[2]
topics = {f: f"{prefix}.{f}" for f in FEEDS}
admin = AdminClient({"bootstrap.servers": bootstrap})
for t, fut in admin.create_topics([NewTopic(t, 4, 1) for t in topics.values()]).items(): fut.result()
schemas = {f: current_schema(f) for f in FEEDS}
DAY = 86_400_000
now = int(time.time() * 1000)
today = now // DAY
base = (today - 20) * DAY + 10 * 3_600_000   # 10:00 UTC twenty days ago
ids = itertools.count(1)
records = []

def ev(patient, org, day, branch, payload, ref="02", place="E06000047", recorded_delta=60_000, event_id=None, corrects=None, hour=0, feed="discharge"):
    occurred = base + day * DAY + hour * 3_600_000
    eid = event_id if event_id is not None else next(ids)
    etype = {"Admitted": "ADMITTED", "AdmissionCancelled": "ADMISSION_CANCELLED", "CriteriaToResideAssessed": "CRITERIA_TO_RESIDE_ASSESSED",
             "PathwayAssigned": "PATHWAY_ASSIGNED", "Discharged": "DISCHARGED", "DischargeCancelled": "DISCHARGE_CANCELLED",
             "DelayReasonRecorded": "DELAY_REASON_RECORDED", "RequestCompleted": "REQUEST_COMPLETED"}[branch]
    records.append((feed, {"event_id": uuid_text((0xabc << 100) + eid), "event_type": etype, "occurred_at": occurred,
        "recorded_at": occurred + recorded_delta, "source_organisation": org, "place": place,
        "patient_pseudonym": f"{patient:064x}", "episode_reference": None if ref is None else ref * 32,
        "corrects_event_id": None if corrects is None else uuid_text((0xabc << 100) + corrects)}, branch, payload))
    return eid

adm = lambda age=80, bed="GENERAL_AND_ACUTE": {"admission_method": "EMERGENCY_ACCIDENT_AND_EMERGENCY", "admission_source": "USUAL_PLACE_OF_RESIDENCE", "age_years": age, "bed_type": bed}
notmet = lambda drd=None: {"meets_criteria": False, "criterion": None, "discharge_ready_date": drd}
met = {"meets_criteria": True, "criterion": "C01", "discharge_ready_date": None}
dis = {"destination": "USUAL_PLACE_OF_RESIDENCE", "discharge_method": "CLINICAL_ADVICE", "pathway": "P1"}
D = lambda day: (base // DAY) + day   # a date, days since 1970

# 1 plain open NCTR: counts
ev(1, "RVW", 0, "Admitted", adm()); ev(1, "RVW", 2, "CriteriaToResideAssessed", notmet(D(2)))
# 2 corrected: the no-criteria assessment corrected to meets: not counted
e = ev(2, "RVW", 0, "Admitted", adm()); c = ev(2, "RVW", 2, "CriteriaToResideAssessed", notmet())
ev(2, "RVW", 2, "CriteriaToResideAssessed", met, corrects=c, hour=1)
# 3 re-send of one event id, later recorded, met instead of not met: not counted
x = ev(3, "RVW", 0, "Admitted", adm()); y = ev(3, "RVW", 3, "CriteriaToResideAssessed", notmet())
ev(3, "RVW", 3, "CriteriaToResideAssessed", met, event_id=y, recorded_delta=120_000)
# 3b re-send recorded EARLIER with other content: ignored -> counted
ev(33, "RVW", 0, "Admitted", adm()); y = ev(33, "RVW", 3, "CriteriaToResideAssessed", notmet())
ev(33, "RVW", 3, "CriteriaToResideAssessed", met, event_id=y, recorded_delta=30_000)
# 4 age 17: not counted; 5 maternity bed: not counted; 6 no bed type: counted
ev(4, "RVW", 0, "Admitted", adm(age=17)); ev(4, "RVW", 1, "CriteriaToResideAssessed", notmet())
ev(5, "RVW", 0, "Admitted", adm(bed="MATERNITY")); ev(5, "RVW", 1, "CriteriaToResideAssessed", notmet())
ev(6, "RVW", 0, "Admitted", adm(bed=None)); ev(6, "RVW", 1, "CriteriaToResideAssessed", notmet())
# 7 admitted by a site (RVW01), assessed by the trust: one spell, counted
ev(7, "RVW01", 0, "Admitted", adm()); ev(7, "RVW", 1, "CriteriaToResideAssessed", notmet())
# 8 out of area place: counted under out_of_area
ev(8, "RVW", 0, "Admitted", adm(), place="E09000001"); ev(8, "RVW", 1, "CriteriaToResideAssessed", notmet(), place="E09000001")
# 9 DRD before admission: moved to admission day; counted
ev(9, "RVW", 5, "Admitted", adm()); ev(9, "RVW", 6, "CriteriaToResideAssessed", notmet(D(1)))
# 10 met again then not met again: counted once (open second period)
ev(10, "RVW", 0, "Admitted", adm()); ev(10, "RVW", 1, "CriteriaToResideAssessed", notmet()); ev(10, "RVW", 3, "CriteriaToResideAssessed", met); ev(10, "RVW", 5, "CriteriaToResideAssessed", notmet(D(4)))
# 11 discharge, with a cancellation dated before it: discharge stands, not counted
ev(11, "RVW", 0, "Admitted", adm()); ev(11, "RVW", 1, "CriteriaToResideAssessed", notmet()); ev(11, "RVW", 4, "DischargeCancelled", {}); ev(11, "RVW", 5, "Discharged", dis)
# 12 discharge cancelled after it: counted
ev(12, "RVW", 0, "Admitted", adm()); ev(12, "RVW", 1, "CriteriaToResideAssessed", notmet()); ev(12, "RVW", 5, "Discharged", dis); ev(12, "RVW", 6, "DischargeCancelled", {})
# 13 no reference: stay, discharge, second admission (new spell) not meeting: counted once
ev(13, "RVW", 0, "Admitted", adm(), ref=None); ev(13, "RVW", 1, "CriteriaToResideAssessed", notmet(), ref=None); ev(13, "RVW", 3, "Discharged", dis, ref=None)
ev(13, "RVW", 6, "Admitted", adm(), ref=None); ev(13, "RVW", 7, "CriteriaToResideAssessed", notmet(), ref=None)
# 14 admission cancelled then admitted again same reference, then not met: counted
ev(14, "RVW", 0, "Admitted", adm()); ev(14, "RVW", 1, "AdmissionCancelled", {}); ev(14, "RVW", 2, "Admitted", adm()); ev(14, "RVW", 3, "CriteriaToResideAssessed", notmet())
# 15 DRD in the future (tomorrow): not counted today
ev(15, "RVW", 0, "Admitted", adm()); ev(15, "RVW", 19, "CriteriaToResideAssessed", notmet(D(21)))
# 16 discharged today after not meeting: not counted (discharge day exclusive)
ev(16, "RVW", 0, "Admitted", adm()); ev(16, "RVW", 1, "CriteriaToResideAssessed", notmet()); ev(16, "RVW", 20, "Discharged", dis, hour=-1)
# 17 two spells at once at two references: both not meeting -> counts 2
ev(17, "RVW", 0, "Admitted", adm(), ref="03"); ev(17, "RVW", 1, "CriteriaToResideAssessed", notmet(), ref="03")
ev(17, "RVW", 2, "Admitted", adm(), ref="04"); ev(17, "RVW", 3, "CriteriaToResideAssessed", notmet(), ref="04")
# 18 exact duplicate re-send: counts once
a = ev(18, "RVW", 0, "Admitted", adm()); b = ev(18, "RVW", 1, "CriteriaToResideAssessed", notmet()); ev(18, "RVW", 1, "CriteriaToResideAssessed", notmet(), event_id=b)
# 19 events arriving out of order (criteria before admission in the topic): counted
ev(19, "RVW", 1, "CriteriaToResideAssessed", notmet()); ev(19, "RVW", 0, "Admitted", adm())
# 20 an unknown organisation: dead-lettered (organisation_mismatch)
ev(20, "XYZ", 0, "Admitted", adm()); ev(20, "XYZ", 1, "CriteriaToResideAssessed", notmet())
# 21 a discharge and its cancellation in the same second, the cancellation's id the smaller: it still voids
#    the discharge (spells.rs: a discharge stands only after the latest cancellation): counted
ev(21, "RVW", 0, "Admitted", adm()); ev(21, "RVW", 1, "CriteriaToResideAssessed", notmet())
cid = next(ids); did = next(ids)
ev(21, "RVW", 5, "DischargeCancelled", {}, event_id=cid); ev(21, "RVW", 5, "Discharged", dis, event_id=did)
# 22 a correction from a site of an event the trust published: replaces it
ev(22, "RVW", 0, "Admitted", adm()); n = ev(22, "RVW", 1, "CriteriaToResideAssessed", notmet()); ev(22, "RVW02", 1, "CriteriaToResideAssessed", met, corrects=n, hour=2)
# 23 a social care event only: no spell
ev(23, "702", 1, "RequestCompleted", {"route_of_access": "DISCHARGE_FROM_HOSPITAL"}, feed="social_care", ref=None)

p = Producer({"bootstrap.servers": bootstrap})
for feed, env, branch, payload in records:
    ns, schema, header = schemas[feed]
    datum = dict(env, payload=(f"{ns}.{branch}", payload))
    body = io.BytesIO(); fastavro.schemaless_writer(body, schema, datum)
    p.produce(topics[feed], key=env["patient_pseudonym"].encode(), value=header + body.getvalue())
p.flush(30)
print(len(records))
