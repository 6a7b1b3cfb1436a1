"""Encode icsflow partner events in Python and produce them to Kafka, as a partner's integration code would.

Reads the feed schemas from schemas/<feed>/v<N>.avsc, takes the example events
of schemas/examples/<feed>.jsonl, puts in each a pseudonym computed here (HMAC-SHA256
of an NHS number under the ICS key), and encodes each record in Avro single-object
encoding (C3 01, the schema's CRC-64-AVRO fingerprint, the binary datum). Then either
writes each to OUT/<feed>-<n>.avro, with OUT/manifest.json listing what each file
holds, or produces each with confluent-kafka to the topic icsflow's ingest reads it
from, keyed by its patient_pseudonym, with acks=all and idempotence, and waits for
the broker to acknowledge every record. See examples/README.md.

    python produce.py --out target/partner-examples/python
    python produce.py --bootstrap-servers HOST:PORT[,...] [--layout shared|per_partner]
        [--feed FEED]... [--topic FEED=TOPIC]... [--partner ODS_CODE]
        [--client-config FILE] [-X NAME=VALUE]...

Exit status, as icsflow publish's: 0 every record acknowledged (or written); 64 a bad
command line or client setting; 75 a record the broker did not take (try again
later); 77 the broker does not let these credentials write a topic.
"""

import argparse
import hashlib
import hmac
import io
import json
import re
import sys
from pathlib import Path

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

FEEDS = ["discharge", "social_care", "primary_care"]

EXIT_USAGE = 64
EXIT_NOT_DELIVERED = 75
EXIT_NOT_AUTHORIZED = 77


def pseudonym(key: str, nhs_number: str) -> str:
    """The ICS pseudonym: HMAC-SHA256 of the ten digits under the ICS key, in lower-case hex."""
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


def encode_examples(repository: Path, feeds) -> list:
    """Every example event of `feeds`, with the pseudonym of the first test
    vector: dicts of feed, source_organisation, event_id, patient_pseudonym,
    fingerprint (hex) and value (the single-object bytes)."""
    # This implementation of the pseudonym, checked against the published vectors.
    vectors = json.loads((repository / "schemas" / "pseudonym-test-vectors.json").read_text())["vectors"]
    for vector in vectors:
        assert pseudonym(vector["key"], vector["nhs_number"]) == vector["pseudonym"], vector
    key, nhs_number = vectors[0]["key"], vectors[0]["nhs_number"]

    encoded = []
    for feed in feeds:
        raw = latest_schema(repository, feed)
        schema = fastavro.parse_schema(raw)
        # The fingerprint's bytes, little-endian, as the single-object header wants them.
        header = bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))
        lines = (repository / "schemas" / "examples" / f"{feed}.jsonl").read_text().splitlines()
        for text in (line for line in lines if line.strip()):
            line = json.loads(text)
            line["patient_pseudonym"] = pseudonym(key, nhs_number)
            encoded.append({
                "feed": feed,
                "source_organisation": line["source_organisation"],
                "event_id": line["event_id"],
                "patient_pseudonym": line["patient_pseudonym"],
                "fingerprint": header.hex(),
                "value": single_object(schema, header, to_datum(line, raw["namespace"])),
            })
    return encoded


def write_files(records: list, out: Path):
    """Each record to OUT/<feed>-<n>.avro, and OUT/manifest.json."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for record in records:
        index = sum(1 for entry in manifest if entry["feed"] == record["feed"])
        path = out / f"{record['feed']}-{index}.avro"
        path.write_bytes(record["value"])
        manifest.append({
            "file": path.name,
            "feed": record["feed"],
            "fingerprint": record["fingerprint"],
            "event_id": record["event_id"],
            "patient_pseudonym": record["patient_pseudonym"],
        })
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"python: {len(manifest)} records written to {out}")


def topic_for(record: dict, options) -> str:
    """The topic icsflow's ingest reads a record from: the feed's topic on the
    shared layout; on the per-partner layout, the feed's topic, a dot and the
    publishing partner's ODS code (ingest reads `^ics\\.discharge\\.v1\\.[A-Z0-9]+$`
    and takes a record there only in the name of that partner, its sites, or
    the organisations it publishes for)."""
    feed_topic = options.feed_topics[record["feed"]]
    if options.layout == "shared":
        return feed_topic
    return f"{feed_topic}.{options.partner or record['source_organisation']}"


def producer_settings(options) -> dict:
    """The producer settings icsflow's records need. The key is the
    patient_pseudonym, and the partitioner librdkafka's murmur2 (icsflow
    publish's and the Java client's; librdkafka's own default hashes
    differently), so that a patient's records land in one partition in the
    order they were sent, whichever client sent them. acks=all and
    idempotence, so that an acknowledged record is on every in-sync replica
    and a retry never writes it twice or out of order."""
    settings = {
        "bootstrap.servers": options.bootstrap_servers,
        "acks": "all",
        "enable.idempotence": "true",
        "partitioner": "murmur2_random",
        "client.id": "icsflow-example-python",
        # Give up on an unreachable broker within half a minute, as icsflow publish does.
        "message.timeout.ms": "30000",
    }
    # The connection (SASL, TLS) and any tuning, from --client-config and -X.
    settings.update(options.overrides)
    if settings["acks"] not in ("all", "-1"):
        raise UsageError("acks must stay all: a record acknowledged by one replica can be lost")
    if str(settings["enable.idempotence"]).lower() != "true":
        raise UsageError("enable.idempotence must stay true: a retry could write a record twice or out of order")
    if settings["partitioner"] != "murmur2_random":
        raise UsageError("partitioner must stay murmur2_random: a patient's records must share a partition with those icsflow publish and Java clients send")
    return settings


class UsageError(Exception):
    """A command line this program cannot follow."""


def produce(records: list, options) -> int:
    """Produces every record and waits for the broker's answer to each; the exit status."""
    from confluent_kafka import KafkaError, KafkaException, Producer

    try:
        producer = Producer(producer_settings(options))
    except KafkaException as refused:
        raise UsageError(f"librdkafka refuses the settings: {refused}") from None
    per_topic = {}
    failures = []

    def delivered(record):
        def report(error, message):
            if error is None:
                per_topic[message.topic()] = per_topic.get(message.topic(), 0) + 1
            else:
                failures.append(error)
                print(f"python: event {record['event_id']} not delivered to {topic_for(record, options)}: {error.str()}", file=sys.stderr)
        return report

    for record in records:
        # The key: the pseudonym's 64 lower-case hexadecimal characters, in UTF-8.
        key = record["patient_pseudonym"].encode("utf-8")
        while True:
            try:
                producer.produce(topic_for(record, options), key=key, value=record["value"], on_delivery=delivered(record))
                break
            except BufferError:
                # librdkafka's queue is full: let it send, then try again.
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    produced = sum(per_topic.values())
    summary = f"python: {produced} of {len(records)} records produced and acknowledged"
    for topic in dict.fromkeys(topic_for(record, options) for record in records):
        if topic in per_topic:
            summary += f"; {per_topic[topic]} to {topic}"
    print(summary)
    if produced == len(records):
        return 0
    if remaining:
        print(f"python: {remaining} record(s) still unanswered after 60 s", file=sys.stderr)
    not_authorized = {KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.CLUSTER_AUTHORIZATION_FAILED}
    if any(error.code() in not_authorized for error in failures):
        return EXIT_NOT_AUTHORIZED
    return EXIT_NOT_DELIVERED


def name_value(text: str):
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value.strip()


def client_config(path: str) -> list:
    """NAME=VALUE lines (librdkafka's names); blank lines and # comments skipped."""
    try:
        with open(path, encoding="utf-8") as file:
            return [name_value(line) for line in file if line.strip() and not line.lstrip().startswith("#")]
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {error.strerror}") from None


def partner_code(text: str) -> str:
    # The suffix icsflow's ingest subscribes to on the per-partner layout.
    if not re.fullmatch(r"[A-Z0-9]{3,6}", text):
        raise argparse.ArgumentTypeError("your ODS code in capitals, for example RVW")
    return text


class Arguments(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def main():
    arguments = Arguments(description=__doc__.splitlines()[0])
    arguments.add_argument("--repository", type=Path, default=Path(__file__).resolve().parents[2],
                           help="the icsflow repository, for its schemas and examples (default: this file's)")
    mode = arguments.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="write each record to OUT/<feed>-<n>.avro and OUT/manifest.json")
    mode.add_argument("--bootstrap-servers", "-b", metavar="HOST:PORT[,...]", help="produce each record to Kafka")
    arguments.add_argument("--layout", choices=["shared", "per_partner"], default="shared",
                           help="the ICS's topics.layout (default: shared)")
    arguments.add_argument("--feed", action="append", choices=FEEDS, dest="feeds",
                           help="a feed to send (repeatable; default: every feed)")
    arguments.add_argument("--topic", action="append", type=name_value, default=[], metavar="FEED=TOPIC",
                           help="a feed's topic, as the ICS's topics.<feed> (default: ics.<feed>.v1)")
    arguments.add_argument("--partner", type=partner_code, metavar="ODS_CODE",
                           help="per_partner: your ODS code, as the ICS's reference data lists it (default: each record's source_organisation)")
    arguments.add_argument("--client-config", action="append", type=client_config, default=[], metavar="FILE",
                           help="librdkafka settings, NAME=VALUE a line (SASL, TLS); kept out of the process list")
    arguments.add_argument("-X", action="append", type=name_value, default=[], dest="settings", metavar="NAME=VALUE",
                           help="a librdkafka setting, applied after --client-config")
    options = arguments.parse_args()
    options.feeds = options.feeds or FEEDS
    options.feed_topics = {feed: f"ics.{feed}.v1" for feed in FEEDS}
    for feed, topic in options.topic:
        if feed not in FEEDS:
            arguments.error(f"--topic: {feed} is not a feed: {', '.join(FEEDS)}")
        options.feed_topics[feed] = topic
    options.overrides = dict(pair for file in options.client_config for pair in file)
    options.overrides.update(options.settings)

    if options.out is not None:
        write_files(encode_examples(options.repository, options.feeds), options.out)
        return
    try:
        status = produce(encode_examples(options.repository, options.feeds), options)
    except UsageError as usage:
        print(f"python: {usage}", file=sys.stderr)
        status = EXIT_USAGE
    sys.exit(status)


if __name__ == "__main__":
    main()
