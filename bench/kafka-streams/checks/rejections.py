"""Records of version 1 of the discharge schema, and records every ingest check refuses.

    python checks/rejections.py HOST:PORT PREFIX

Creates PREFIX.discharge, PREFIX.social_care and PREFIX.primary_care (2
partitions) and produces 14 records: a version 1 admission and no-criteria
assessment (read through schema resolution: one patient counted), then an
empty record, text, a Confluent-framed record (no registry: unknown_schema),
an unknown fingerprint, trailing bytes, a record cut short, an event_type
naming another payload, criteria met without a criterion, a record dated in
the future, a delay reason of another family, an NHS number in a delay reason
code, and a discharge record on the social care topic. On 2026-12-07 icsflow
and the Streams application gave the same reasons for all twelve refused
records. Needs fastavro and confluent-kafka.
"""
import io
import json
import sys
import time
from pathlib import Path

import fastavro
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from fastavro.schema import fingerprint, to_parsing_canonical_form

DAY = 86_400_000
SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "discharge" / "v1.avsc"


def main(bootstrap, prefix):
    topics = {feed: f"{prefix}.{feed}" for feed in ("discharge", "social_care", "primary_care")}
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, 1) for topic in topics.values()]).values():
        future.result()
    v1 = fastavro.parse_schema(json.loads(SCHEMA.read_text()))
    header = b"\xc3\x01" + bytes.fromhex(fingerprint(to_parsing_canonical_form(v1), "CRC-64-AVRO"))
    base = (int(time.time() * 1000) // DAY - 5) * DAY + 10 * 3_600_000  # 10:00 UTC five days ago

    def record(number, day, event_type, branch, payload):
        datum = {"event_id": f"00000000-0000-4000-8000-{number:012d}", "event_type": event_type,
                 "occurred_at": base + day * DAY, "recorded_at": base + day * DAY + 60_000,
                 "source_organisation": "RVW", "place": "E06000047", "patient_pseudonym": "ab" * 32,
                 "episode_reference": "cd" * 32, "corrects_event_id": None,
                 "payload": (f"icsflow.discharge.{branch}", payload)}
        body = io.BytesIO()
        fastavro.schemaless_writer(body, v1, datum)
        return header + body.getvalue()

    not_met = {"meets_criteria": False, "criterion": None, "discharge_ready_date": None}
    good = [
        record(1, 0, "ADMITTED", "Admitted", {"admission_method": "ELECTIVE_BOOKED",
                                              "admission_source": "USUAL_PLACE_OF_RESIDENCE", "age_years": 70}),
        record(2, 1, "CRITERIA_TO_RESIDE_ASSESSED", "CriteriaToResideAssessed", not_met),
    ]
    datum = good[1][10:]
    bad = [
        b"",                                          # malformed
        b"hello",                                     # malformed
        b"\x00\x00\x00\x00\x07" + datum,             # Confluent framing, no registry: unknown_schema
        b"\xc3\x01" + b"\x00" * 8 + datum,             # unknown fingerprint: unknown_schema
        good[1] + b"\x00",                            # trailing bytes: malformed
        good[1][:30],                                 # cut short: malformed
        record(3, 1, "PATHWAY_ASSIGNED", "CriteriaToResideAssessed", not_met),            # invalid_field event_type
        record(4, 1, "CRITERIA_TO_RESIDE_ASSESSED", "CriteriaToResideAssessed",
               {"meets_criteria": True, "criterion": None, "discharge_ready_date": None}),  # invalid_field criterion
        record(5, 9, "CRITERIA_TO_RESIDE_ASSESSED", "CriteriaToResideAssessed", not_met),  # future: timestamp_out_of_range
        record(6, 1, "DELAY_REASON_RECORDED", "DelayReasonRecorded",
               {"reason_family": "WELLBEING", "reason_code": "CAP_EQUIPMENT"}),            # invalid_field reason_code
        record(7, 1, "DELAY_REASON_RECORDED", "DelayReasonRecorded",
               {"reason_family": "WELLBEING", "reason_code": "NHS 943 476 5919"}),         # identifiable_data
    ]
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap})

    def delivered(error, _message):
        if error:
            errors.append(str(error))

    for value in good + bad:
        producer.produce(topics["discharge"], key=b"ab" * 32, value=value, on_delivery=delivered)
    # A discharge record on the social care topic: incompatible_schema.
    producer.produce(topics["social_care"], key=b"ab" * 32, value=good[1], on_delivery=delivered)
    producer.flush(30)
    if errors:
        print(f"not delivered: {errors[:3]}", file=sys.stderr)
        return 1
    print(len(good) + len(bad) + 1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
