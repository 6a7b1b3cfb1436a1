"""Validates the example JSON lines (schemas/examples/) against the JSON
Schemas (schemas/json/) with check-jsonschema, a real validator, formats
checked: every example as it is, every example with its timestamps and
dates in ISO 8601, and lines that must be refused (an unknown field, a
local time without an offset, a misspelt code). Run by `make test`."""

import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ["discharge", "social_care", "primary_care"]


def forms(schema):
    """'date-time' or 'date' when a property schema accepts that ISO form."""
    for option in schema.get("oneOf", []):
        if option.get("format") in ("date-time", "date"):
            return option["format"]
    return None


def to_iso(value, schema):
    """The line's epoch timestamps and dates as ISO 8601, by the schema."""
    if isinstance(value, dict):
        if schema.get("type") == "object" and "properties" in schema:
            out = {}
            for key, inner in value.items():
                out[key] = to_iso(inner, schema["properties"].get(key, {}))
            return out
        for option in schema.get("oneOf", []):
            if option.get("type") == "object" and set(value) <= set(option.get("properties", {})):
                return to_iso(value, option)
        return value
    kind = forms(schema)
    if isinstance(value, int) and kind == "date-time":
        instant = datetime.datetime.fromtimestamp(value / 1000, tz=datetime.timezone(datetime.timedelta(hours=1)))
        return instant.isoformat(timespec="milliseconds")
    if isinstance(value, int) and kind == "date":
        return (datetime.date(1970, 1, 1) + datetime.timedelta(days=value)).isoformat()
    return value


def validate(schema_file, documents):
    """check-jsonschema over the documents at once: (whether all are
    valid, the documents it named as invalid, its output)."""
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for index, document in enumerate(documents):
            path = Path(folder) / f"line-{index}.json"
            path.write_text(json.dumps(document))
            paths.append(path)
        result = subprocess.run(
            [Path(sys.executable).parent / "check-jsonschema", "--schemafile", schema_file, *paths],
            capture_output=True, text=True,
        )
        output = result.stdout + result.stderr
        named = [index for index, path in enumerate(paths) if str(path) in output]
        return result.returncode == 0, named, output


def find_reason(value):
    """The reason_code of a payload, wherever its union branch puts it."""
    if isinstance(value, dict):
        if "reason_code" in value:
            return value["reason_code"]
        for inner in value.values():
            found = find_reason(inner)
            if found is not None:
                return found
    return None


def main():
    failures = []
    for feed in FEEDS:
        schema_file = ROOT / "schemas" / "json" / f"{feed}.schema.json"
        schema = json.loads(schema_file.read_text())
        lines = [json.loads(line) for line in (ROOT / "schemas" / "examples" / f"{feed}.jsonl").read_text().splitlines() if line.strip()]
        iso = [to_iso(line, schema) for line in lines]
        converted = sum(1 for before, after in zip(lines, iso) if before != after)
        if converted != len(lines):
            failures.append(f"{feed}: only {converted} of {len(lines)} examples had timestamps to convert")
        unknown = dict(lines[0], surprise_field=1)
        local_time = dict(iso[0], occurred_at=iso[0]["occurred_at"][:19])
        misspelt = dict(lines[0], event_type=lines[0]["event_type"].lower())
        valid, _, output = validate(schema_file, lines + iso)
        if not valid:
            failures.append(f"{feed}: an example was refused: {output.strip()}")
        # The rules publish holds strings to: a place outside the upper-tier
        # GSS pattern, an organisation that is not an ODS code, and (for the
        # discharge feed) a delay reason outside the national list.
        district = dict(lines[0], place="E07000001")
        not_ods = dict(lines[0], source_organisation="rvw-01")
        bad = [unknown, local_time, misspelt, district, not_ods]
        names = ["an unknown field", "a local time without offset", "a misspelt code", "a district as place", "an organisation that is not an ODS code"]
        delays = [line for line in lines if isinstance(line.get("payload"), dict) and "reason_code" in json.dumps(line["payload"])]
        if delays:
            reason = find_reason(delays[0]["payload"])
            payload = json.loads(json.dumps(delays[0]["payload"]).replace(json.dumps(reason), json.dumps("943.476.5919")))
            bad.append(dict(delays[0], payload=payload))
            names.append("a reason code outside the national list")
        valid, named, _ = validate(schema_file, bad)
        for index, name in enumerate(names):
            if valid or index not in named:
                failures.append(f"{feed}: {name} was accepted")
        print(f"{feed}: {len(lines)} examples and the same {len(iso)} in ISO 8601 valid; {len(bad)} bad lines refused")
    for failure in failures:
        print(f"FAIL {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
