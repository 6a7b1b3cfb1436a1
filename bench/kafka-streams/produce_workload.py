#!/usr/bin/env python3
"""Produce icsflow's pipeline-benchmark workload to Kafka, without cargo.

    python produce_workload.py --bootstrap HOST:PORT --patients N [--create-topics]
        [--partitions 8] [--topics discharge,social_care,primary_care]
        [--leave-out-admission-cancelled]

The workload of crates/icsflow-kafka/benches/pipeline.rs (`workload`): for
each patient, the sample journey of icsflow_core::one_event_of_each_type
(crates/icsflow-core/src/samples.rs: 9 discharge, 5 social care and 5
primary care events), moved by whole days to end yesterday
(`shifted_to_end_before`), the patient's number in the first 8 bytes of the
pseudonym and XORed into the upper half of every event id. Each event is
encoded in Avro single-object encoding (C3 01, the CRC-64-AVRO fingerprint of
the schema's canonical form, the binary datum) with the current schema of
its feed from schemas/, and produced to its feed's topic keyed by the
pseudonym, as the benchmark's `publish` does.

The sample journey ends with ADMISSION_CANCELLED, so neither icsflow nor the
Streams application counts any patient as not meeting the criteria to
reside. --leave-out-admission-cancelled drops that one event: every patient
then stays not meeting the criteria (their discharge is cancelled), which
gives both something to count.

Needs fastavro and confluent-kafka (pip install fastavro confluent-kafka).
"""

import argparse
import io
import json
import sys
import time
from pathlib import Path

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

REPOSITORY = Path(__file__).resolve().parents[2]
DAY = 86_400_000
FEEDS = ["discharge", "social_care", "primary_care"]


def current_schema(feed):
    versions = sorted((REPOSITORY / "schemas" / feed).glob("v*.avsc"), key=lambda path: int(path.stem[1:]))
    raw = json.loads(versions[-1].read_text())
    parsed = fastavro.parse_schema(raw)
    header = b"\xc3\x01" + bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))
    return raw["namespace"], parsed, header


def sample_journey():
    """one_event_of_each_type(): (feed, event number, day, payload branch, payload, corrects)."""
    return [
        ("discharge", 1, 0, "Admitted", {"admission_method": "EMERGENCY_ACCIDENT_AND_EMERGENCY",
                                         "admission_source": "USUAL_PLACE_OF_RESIDENCE", "age_years": 82,
                                         "bed_type": "GENERAL_AND_ACUTE"}, None),
        ("discharge", 2, 1, "CriteriaToResideAssessed", {"meets_criteria": True, "criterion": "C03",
                                                         "discharge_ready_date": None}, None),
        ("discharge", 3, 3, "CriteriaToResideAssessed", {"meets_criteria": False, "criterion": None,
                                                         "discharge_ready_date": "READY"}, None),
        ("discharge", 4, 3, "PathwayAssigned", {"pathway": "P1"}, None),
        ("discharge", 5, 4, "DelayReasonRecorded", {"reason_family": "CAPACITY",
                                                    "reason_code": "CAP_P1_HOME_SOCIAL_CARE"}, None),
        ("discharge", 8, 6, "DelayReasonRecorded", {"reason_family": "CAPACITY",
                                                    "reason_code": "CAP_P1_HOME_REHABILITATION"}, 5),
        ("discharge", 6, 8, "Discharged", {"destination": "USUAL_PLACE_OF_RESIDENCE",
                                           "discharge_method": "CLINICAL_ADVICE", "pathway": "P1"}, None),
        ("discharge", 7, 8, "DischargeCancelled", {}, None),
        ("discharge", 9, 9, "AdmissionCancelled", {}, None),
        ("social_care", 10, 2, "RequestCompleted", {"route_of_access": "DISCHARGE_FROM_HOSPITAL"}, None),
        ("social_care", 11, 5, "AssessmentCompleted", {"assessment_type": "SHORT_TERM", "eligible_needs": True}, None),
        ("social_care", 12, 8, "ServiceStarted", {"service_type": "SHORT_TERM_ST_MAX",
                                                  "service_component": "REABLEMENT"}, None),
        ("social_care", 13, 50, "ServiceEnded", {"end_reason": "NO_ONGOING_NEEDS"}, None),
        ("social_care", 14, 40, "ReviewCompleted", {"review_type": "PLANNED",
                                                    "review_outcome": "SUPPORT_REDUCED"}, None),
        ("primary_care", 15, 9, "DischargeSummaryFiled", {"sending_organisation": "RVW"}, None),
        ("primary_care", 16, 12, "PostDischargeContact", {"attendance": "ATTENDED", "contact_mode": "TELEPHONE"}, None),
        ("primary_care", 17, 13, "MedicationReviewCompleted", {"review_kind": "DISCHARGE_MEDICINES_SERVICE"}, None),
        ("primary_care", 18, 60, "RegistrationChanged", {"change": "DEREGISTERED", "new_practice": "M83671"}, None),
        ("primary_care", 19, 90, "DeathNotified", {"date_of_death": "DEATH"}, None),
    ]


EVENT_TYPES = {
    "Admitted": "ADMITTED", "AdmissionCancelled": "ADMISSION_CANCELLED",
    "CriteriaToResideAssessed": "CRITERIA_TO_RESIDE_ASSESSED", "PathwayAssigned": "PATHWAY_ASSIGNED",
    "DelayReasonRecorded": "DELAY_REASON_RECORDED", "Discharged": "DISCHARGED",
    "DischargeCancelled": "DISCHARGE_CANCELLED", "RequestCompleted": "REQUEST_COMPLETED",
    "AssessmentCompleted": "ASSESSMENT_COMPLETED", "ServiceStarted": "SERVICE_STARTED",
    "ServiceEnded": "SERVICE_ENDED", "ReviewCompleted": "REVIEW_COMPLETED",
    "DischargeSummaryFiled": "DISCHARGE_SUMMARY_FILED", "PostDischargeContact": "POST_DISCHARGE_CONTACT",
    "MedicationReviewCompleted": "MEDICATION_REVIEW_COMPLETED", "RegistrationChanged": "REGISTRATION_CHANGED",
    "DeathNotified": "DEATH_NOTIFIED",
}
ORGANISATIONS = {"discharge": "RVW", "social_care": "702", "primary_care": "M83670"}
FIRST_ID = 0x1B4E28BA2FA141D2883F0016D3CC0000
START = 1_767_607_200_000  # 2026-01-05T10:00:00Z, a winter Monday


def uuid_text(value):
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def templates(now_millis, leave_out_cancellation):
    """The sample journey shifted to end the day before now, as datums without the patient."""
    journey = [event for event in sample_journey()
               if not (leave_out_cancellation and event[3] == "AdmissionCancelled")]
    # shifted_to_end_before: the latest recorded_at (occurred + 1 minute) on the day before now.
    latest = max(START + days * DAY + 60_000 for _, _, days, _, _, _ in sample_journey())
    shift_days = (now_millis - latest) // DAY - 1
    ready_date = (START + 3 * DAY) // DAY + shift_days
    out = []
    for feed, number, days, branch, payload, corrects in journey:
        occurred = START + (days + shift_days) * DAY
        payload = dict(payload)
        if payload.get("discharge_ready_date") == "READY":
            payload["discharge_ready_date"] = ready_date
        if payload.get("date_of_death") == "DEATH":
            payload["date_of_death"] = ready_date + 85
        out.append((feed, {
            "event_id": FIRST_ID + number,
            "event_type": EVENT_TYPES[branch],
            "occurred_at": occurred,
            "recorded_at": occurred + 60_000,
            "source_organisation": ORGANISATIONS[feed],
            "place": "E06000047",
            "episode_reference": None if feed == "primary_care" else "02" * 32,
            "corrects_event_id": None if corrects is None else FIRST_ID + corrects,
        }, branch, payload))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--patients", type=int, required=True)
    parser.add_argument("--topics", default=",".join(FEEDS))
    parser.add_argument("--create-topics", action="store_true")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--leave-out-admission-cancelled", action="store_true")
    options = parser.parse_args()

    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topics = dict(zip(FEEDS, options.topics.split(",")))
    if options.create_topics:
        admin = AdminClient({"bootstrap.servers": options.bootstrap})
        existing = admin.list_topics(timeout=10).topics
        wanted = [NewTopic(topic, options.partitions, 1) for topic in topics.values() if topic not in existing]
        for topic, future in (admin.create_topics(wanted).items() if wanted else []):
            future.result()
            print(f"created {topic} ({options.partitions} partitions)", file=sys.stderr)

    schemas = {feed: current_schema(feed) for feed in FEEDS}
    journey = templates(int(time.time() * 1000), options.leave_out_admission_cancelled)
    producer = Producer({"bootstrap.servers": options.bootstrap, "linger.ms": 20, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000})
    produced = 0
    began = time.monotonic()
    for patient in range(options.patients):
        pseudonym = patient.to_bytes(8, "little").hex() + "01" * 24
        for feed, envelope, branch, payload in journey:
            namespace, schema, header = schemas[feed]
            datum = dict(envelope)
            datum["event_id"] = uuid_text(envelope["event_id"] ^ (patient << 64))
            if envelope["corrects_event_id"] is not None:
                datum["corrects_event_id"] = uuid_text(envelope["corrects_event_id"] ^ (patient << 64))
            datum["patient_pseudonym"] = pseudonym
            datum["payload"] = (f"{namespace}.{branch}", payload)
            body = io.BytesIO()
            fastavro.schemaless_writer(body, schema, datum)
            while True:
                try:
                    producer.produce(topics[feed], key=pseudonym.encode(), value=header + body.getvalue())
                    break
                except BufferError:
                    producer.poll(0.05)
            produced += 1
        producer.poll(0)
    left = producer.flush(120)
    if left:
        print(f"{left} records not acknowledged", file=sys.stderr)
        return 1
    print(f"{produced} records for {options.patients} patients produced in {time.monotonic() - began:.1f} s",
          file=sys.stderr)
    print(produced)
    return 0


if __name__ == "__main__":
    sys.exit(main())
