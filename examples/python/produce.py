"""Encode icsflow partner events in Python, as a partner's integration code would.

Reads the feed schemas from schemas/<feed>/v<N>.avsc, takes the example events
of schemas/examples/<feed>.jsonl, puts in each a pseudonym computed here (HMAC-SHA256
of an NHS number under the ICS key), and writes each record in Avro single-object
encoding (C3 01, the schema's CRC-64-AVRO fingerprint, the binary datum) to
OUT/<feed>-<n>.avro, with OUT/manifest.json listing what each file holds.

Send the bytes as the record value to your feed's topic, keyed by the
patient_pseudonym, with any Kafka client (for example confluent-kafka:
producer.produce(topic, key=pseudonym, value=record)).

    python produce.py --repository ../.. --out target/partner-examples/python
"""

import argparse
import hashlib
import hmac
import io
import json
from pathlib import Path

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

FEEDS = ["discharge", "social_care", "primary_care"]


def pseudonym(key: str, nhs_number: str) -> str:
    """The ICS pseudonym: HMAC-SHA256 of the ten digits under the ICS key, in hex."""
    digits = nhs_number.replace(" ", "").replace("-", "")
    return hmac.new(key.encode("utf-8"), digits.encode("ascii"), hashlib.sha256).hexdigest()


def latest_schema(repository: Path, feed: str) -> dict:
    versions = sorted((repository / "schemas" / feed).glob("v*.avsc"), key=lambda path: int(path.stem[1:]))
    return json.loads(versions[-1].read_text())


def to_datum(line: dict, namespace: str) -> dict:
    """The JSON line form as fastavro takes it: the payload union's branch as
    a (full name, record) pair; everything else is already what fastavro wants."""
    (branch, fields), = line["payload"].items()
    return dict(line, payload=(f"{namespace}.{branch}", fields))


def single_object(schema, header: bytes, datum: dict) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, datum)
    return b"\xc3\x01" + header + body.getvalue()


def main():
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--repository", type=Path, default=Path(__file__).resolve().parents[2])
    arguments.add_argument("--out", type=Path, required=True)
    options = arguments.parse_args()
    repository = options.repository

    # This implementation of the pseudonym, checked against the published vectors.
    vectors = json.loads((repository / "schemas" / "pseudonym-test-vectors.json").read_text())["vectors"]
    for vector in vectors:
        assert pseudonym(vector["key"], vector["nhs_number"]) == vector["pseudonym"], vector
    key, nhs_number = vectors[0]["key"], vectors[0]["nhs_number"]

    options.out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for feed in FEEDS:
        raw = latest_schema(repository, feed)
        schema = fastavro.parse_schema(raw)
        # The fingerprint's bytes, little-endian, as the single-object header wants them.
        header = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
        lines = (repository / "schemas" / "examples" / f"{feed}.jsonl").read_text().splitlines()
        for index, text in enumerate(line for line in lines if line.strip()):
            line = json.loads(text)
            line["patient_pseudonym"] = pseudonym(key, nhs_number)
            path = options.out / f"{feed}-{index}.avro"
            path.write_bytes(single_object(schema, header, to_datum(line, raw["namespace"])))
            manifest.append({
                "file": path.name,
                "feed": feed,
                "fingerprint": header.hex(),
                "event_id": line["event_id"],
                "patient_pseudonym": line["patient_pseudonym"],
            })
    (options.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"python: {len(manifest)} records written to {options.out}")


if __name__ == "__main__":
    main()
