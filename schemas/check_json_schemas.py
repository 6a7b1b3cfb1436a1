"""Validates the example JSON lines (schemas/examples/) against the JSON
Schemas (schemas/json/) with check-jsonschema, a real validator, formats
checked: every example as it is, every example with its timestamps and
dates in ISO 8601, and lines that must be refused (an unknown field, a
pseudonym or spell reference that is not 64 lower-case hex digits, an event
id that is not a UUID, a
local time without an offset, a misspelt code). Then the commands
examples/README.md gives for checking a JSON lines file, as written there,
on every shipped example file (accepted) and on one with a bad line
(refused, by its line number). Run by `make test`."""

import datetime
import json
import os
import re
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


def documented_jsonl_check():
    """The commands examples/README.md gives for checking a JSON lines file
    with check-jsonschema: its one sh block that runs it, written for
    discharge.jsonl."""
    text = (ROOT / "examples" / "README.md").read_text()
    blocks = [block for block in re.findall(r"```sh\n(.*?)```", text, re.S) if "check-jsonschema" in block]
    if len(blocks) != 1 or "discharge.jsonl" not in blocks[0]:
        sys.exit(f"examples/README.md: expected one sh block checking discharge.jsonl with check-jsonschema, found {blocks}")
    return blocks[0]


def run_documented(commands, feed, lines):
    """Runs the documented commands, for `feed`, on a file of these lines
    beside a copy of the repository's schemas, as a user would from the
    repository's root: (exit status, what they printed)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "schemas").symlink_to(ROOT / "schemas")
        (Path(folder) / f"{feed}.jsonl").write_text(lines)
        environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        result = subprocess.run(
            ["bash", "-e", "-c", commands.replace("discharge", feed)],
            cwd=folder, env=environment, capture_output=True, text=True,
        )
        return result.returncode, result.stdout + result.stderr


def main():
    failures = []
    documented = documented_jsonl_check()
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
        capitals = dict(lines[0], patient_pseudonym="AB" + lines[0]["patient_pseudonym"][2:])
        not_uuid = dict(lines[0], event_id=lines[0]["event_id"].replace("-", ""))
        bad = [unknown, local_time, misspelt, district, not_ods, capitals, not_uuid]
        names = ["an unknown field", "a local time without offset", "a misspelt code", "a district as place",
                 "an organisation that is not an ODS code", "a pseudonym in capitals", "an event id that is not a UUID"]
        spells = [line for line in lines if line.get("episode_reference")]
        if spells:
            bad.append(dict(spells[0], episode_reference="spell-12345"))
            names.append("a spell reference that is not a pseudonym")
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
        # The shipped file as it is, then with its second line an
        # organisation that is not an ODS code.
        shipped = (ROOT / "schemas" / "examples" / f"{feed}.jsonl").read_text()
        status, output = run_documented(documented, feed, shipped)
        if status != 0:
            failures.append(f"{feed}: examples/README.md's commands refuse schemas/examples/{feed}.jsonl: {output.strip()}")
        with_bad_line = shipped.splitlines(keepends=True)
        with_bad_line[1] = json.dumps(dict(json.loads(with_bad_line[1]), source_organisation="rvw-01")) + "\n"
        status, output = run_documented(documented, feed, "".join(with_bad_line))
        named = sorted(set(re.findall(r"line-([0-9]+)\.json::", output)))
        if status == 0 or named != ["000002"]:
            failures.append(f"{feed}: examples/README.md's commands did not refuse line 2 alone (exit {status}): {output.strip()}")
        print(f"{feed}: {len(lines)} examples and the same {len(iso)} in ISO 8601 valid; {len(bad)} bad lines refused; "
              f"examples/README.md's commands accept {feed}.jsonl and name its bad line")
    for failure in failures:
        print(f"FAIL {failure}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
