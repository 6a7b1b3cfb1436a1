#!/usr/bin/env python3
"""Soak: the pipeline at a fixed rate for a long run, memory and lag sampled.

    python3 tests/soak.py --icsflow target/release/icsflow [--minutes 30]

`make soak` runs it. It starts an Apache Kafka broker (the jars `make kafka`
put in target/kafka/libs; combined broker and controller) on loopback
ports, `icsflow run` with `engine.as_of = "latest_event"`, and
`icsflow simulate` publishing five years of a four-place ICS at one
simulated day per real second from five years ago, so that simulated time
stays in the past (ingest accepts it) while the join role's engines, which
read time from the newest event, see 120-day eviction horizons pass every
two minutes. Every few seconds it samples, from the run process's /metrics, its
resident memory (`process_resident_memory_bytes`), the journeys held, the consumer lag of both roles
and the events applied, into target/soak/samples.csv, prints a line, and at
the end a summary: whether memory stayed flat over the second half and
whether lag stayed bounded. Then it stops the simulation, waits until the
engine gauges settle, restarts `icsflow run` (which replays the journey
topic) and checks that every non-zero engine gauge is the same after the
restart as before it. It exits 1 if memory was not flat, lag not bounded,
or any gauge differs after the restart. Standard library only.
"""

import argparse
import csv
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LIBS = ROOT / "target" / "kafka" / "libs"


def start_kafka(scratch, port, controller_port):
    """Formats and starts a single-node Kafka (KRaft) in `scratch`; returns
    the process once its log says it started, and the seconds that took."""
    data = scratch / "kafka-data"
    (scratch / "server.properties").write_text(
        "process.roles=broker,controller\nnode.id=1\n"
        f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}\n"
        f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}\n"
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port}\n"
        "controller.listener.names=CONTROLLER\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
        "inter.broker.listener.name=PLAINTEXT\n"
        f"log.dirs={data}\nnum.partitions=1\nauto.create.topics.enable=false\n"
        "offsets.topic.replication.factor=1\noffsets.topic.num.partitions=4\n"
        "transaction.state.log.replication.factor=1\ntransaction.state.log.min.isr=1\n"
        "transaction.state.log.num.partitions=4\ngroup.initial.rebalance.delay.ms=0\n"
        "log.cleaner.dedupe.buffer.size=2097152\n"
    )
    (scratch / "log4j2.properties").write_text(
        "status = error\nappender.out.type = Console\nappender.out.name = OUT\n"
        "appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = [%d] %p %m (%c)%n\n"
        "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = OUT\n"
        "logger.started.name = kafka.server.KafkaRaftServer\nlogger.started.level = INFO\n"
    )
    if not (KAFKA_LIBS / ".installed").exists():
        raise RuntimeError(f"Apache Kafka is not in {KAFKA_LIBS}; run `make kafka`")
    classpath = f"{KAFKA_LIBS}/*"
    logging = f"-Dlog4j2.configurationFile={scratch / 'log4j2.properties'}"
    subprocess.run(
        ["java", "-Xmx128m", logging, "-cp", classpath, "kafka.tools.StorageTool", "format",
         "--standalone", "-g", "-t", "aWNzZmxvdy1zb2FrLXJ1bg", "-c", str(scratch / "server.properties")],
        check=True, capture_output=True,
    )
    log_path = scratch / "kafka.log"
    began = time.monotonic()
    process = subprocess.Popen(
        ["java", "-Xms256m", "-Xmx512m", logging, "-cp", classpath, "kafka.Kafka",
         str(scratch / "server.properties")],
        stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
    )
    while "Kafka Server started" not in log_path.read_text():
        if process.poll() is not None or time.monotonic() - began > 90:
            raise RuntimeError(f"Kafka did not start; see {log_path}")
        time.sleep(0.1)
    return process, time.monotonic() - began


def create_topics(icsflow, config):
    """The icsflow topics as `icsflow topics` plans them (the one place for
    partition counts), one replica each."""
    subprocess.run(
        [icsflow, "topics", "--config", config, "--create", "--replication-factor", "1"],
        check=True, capture_output=True,
    )


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(admin):
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as response:
        body = response.read().decode()
    values = {}
    for line in body.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        name = series.split("{", 1)[0]
        labels = series[len(name):]
        values.setdefault(name, []).append((labels, float(value)))
    return values


def total(values, name, must_contain=""):
    return sum(value for labels, value in values.get(name, []) if must_contain in labels)


def wait_for_port(address, seconds):
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {address}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--icsflow", required=True, help="the built icsflow binary (release)")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--every", type=float, default=5, help="seconds between samples")
    parser.add_argument("--places", type=int, default=4)
    parser.add_argument("--admissions-per-day", type=float, default=100)
    parser.add_argument("--speed", type=float, default=86400, help="simulated seconds per second")
    parser.add_argument("--output", default=str(ROOT / "target" / "soak"))
    parser.add_argument(
        "--delivery", choices=["at_least_once", "exactly_once"], default="at_least_once",
        help="ingest.delivery for the run",
    )
    arguments = parser.parse_args()

    output = Path(arguments.output)
    output.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="icsflow-soak-"))
    broker = f"127.0.0.1:{free_port()}"
    admin = f"127.0.0.1:{free_port()}"
    seconds = arguments.minutes * 60
    # Start far enough back that the run never catches up with today.
    days = int(seconds * arguments.speed / 86400) + 2
    start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - (days + 2) * 86400))
    (scratch / "icsflow.toml").write_text(
        f'[kafka]\nbootstrap_servers = "{broker}"\nsession_timeout_ms = 6000\n'
        '[engine]\nas_of = "latest_event"\n[log]\nlevel = "warn"\n'
        f'[ingest]\ndelivery = "{arguments.delivery}"\n'
        f'[reference]\nfile = "{Path(__file__).resolve().parent.parent / "deploy" / "config" / "reference.toml"}"\n'
    )
    processes = []
    try:
        kafka, started_in = start_kafka(scratch, int(broker.rsplit(":", 1)[1]), free_port())
        processes.append(kafka)
        print(f"soak: Apache Kafka started in {started_in:.1f} s", flush=True)
        create_topics(arguments.icsflow, scratch / "icsflow.toml")
        run = subprocess.Popen(
            [arguments.icsflow, "run", "--config", scratch / "icsflow.toml", "--admin-addr", admin],
            stdout=subprocess.DEVNULL, stderr=open(output / "run.log", "w"),
        )
        processes.append(run)
        wait_for_port(admin, 60)
        simulate = subprocess.Popen(
            [arguments.icsflow, "simulate", "--broker", broker, "--start", start, "--days", str(days),
             "--places", str(arguments.places), "--admissions-per-day", str(arguments.admissions_per_day),
             "--speed", str(arguments.speed), "--seed", "7"],
            stdout=subprocess.DEVNULL, stderr=open(output / "simulate.log", "w"),
        )
        processes.append(simulate)
        print(
            f"soak: {arguments.minutes:g} min, {arguments.delivery}, {arguments.places} places x {arguments.admissions_per_day:g} "
            f"admissions/day at {arguments.speed:g} simulated s/s from {start}; samples in {output}/samples.csv",
            flush=True,
        )
        rows = []
        began = time.monotonic()
        with open(output / "samples.csv", "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["seconds", "rss_mib", "journeys", "ingest_lag", "join_lag", "consumed", "applied"])
            while time.monotonic() - began < seconds:
                time.sleep(arguments.every)
                if run.poll() is not None:
                    raise RuntimeError(f"icsflow run exited with {run.returncode}; see {output}/run.log")
                if simulate.poll() not in (None, 0):
                    raise RuntimeError(f"icsflow simulate failed; see {output}/simulate.log")
                values = scrape(admin)
                row = [
                    round(time.monotonic() - began, 1),
                    # The role's own process collector, as a dashboard reads it.
                    round(total(values, "process_resident_memory_bytes") / 2**20, 1),
                    int(total(values, "icsflow_join_journeys")),
                    int(total(values, "icsflow_pipeline_consumer_lag_records", 'role="ingest"')),
                    int(total(values, "icsflow_pipeline_consumer_lag_records", 'role="join"')),
                    int(total(values, "icsflow_pipeline_consumed_records_total", 'role="ingest"')),
                    int(total(values, "icsflow_engine_events_total", 'outcome="applied"')),
                ]
                rows.append(row)
                writer.writerow(row)
                file.flush()
                print(
                    "t={:>6.0f}s rss={:>7.1f} MiB journeys={:>7} lag ingest={:>6} join={:>6} consumed={:>9} applied={:>9}".format(*row),
                    flush=True,
                )
        steady = summarise(rows, seconds)
        # Then the promise analysts rely on: a restart (every partition
        # replayed) shows what the running replica showed.
        simulate.send_signal(signal.SIGINT)
        simulate.wait(timeout=60)
        before = settled_gauges(admin)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=60)
        run = subprocess.Popen(
            [arguments.icsflow, "run", "--config", scratch / "icsflow.toml", "--admin-addr", admin],
            stdout=subprocess.DEVNULL, stderr=open(output / "run-restarted.log", "w"),
        )
        processes.append(run)
        wait_for_port(admin, 60)
        began = time.monotonic()
        while not ready(admin):
            if run.poll() is not None or time.monotonic() - began > 600:
                raise RuntimeError(f"the restarted icsflow run did not become ready; see {output}/run-restarted.log")
            time.sleep(0.5)
        replayed_in = time.monotonic() - began
        after = settled_gauges(admin)
        restarted_same = compare_restart(before, after, replayed_in)
        if not steady:
            print("soak: FAILED: memory was not flat or lag was not bounded (see the summary above)")
        return 0 if steady and restarted_same else 1
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def ready(admin):
    try:
        with urllib.request.urlopen(f"http://{admin}/readyz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def flow_gauges(admin):
    """The non-zero engine gauges (`icsflow_flow_*`, `icsflow_quality_*`) and
    the consumer lag of both roles."""
    values = scrape(admin)
    gauges = {
        (name, labels): value
        for name, series in values.items()
        if name.startswith(("icsflow_flow_", "icsflow_quality_"))
        for labels, value in series
        if value != 0
    }
    return gauges, total(values, "icsflow_pipeline_consumer_lag_records")


def settled_gauges(admin, seconds=300):
    """The engine gauges once nothing is left to consume and two readings a
    few seconds apart agree."""
    began = time.monotonic()
    last = None
    while time.monotonic() - began < seconds:
        gauges, lag = flow_gauges(admin)
        if lag == 0 and gauges == last:
            return gauges
        last = gauges if lag == 0 else None
        time.sleep(3)
    raise RuntimeError("the gauges did not settle")


def compare_restart(before, after, replayed_in):
    differing = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    if not differing:
        print(f"restart: ready after {replayed_in:.1f} s, and all {len(before):,} non-zero engine gauges the same")
        return True
    print(f"restart: ready after {replayed_in:.1f} s, but {len(differing):,} of {len(before):,} engine gauges NOT the same, e.g.:")
    for name, labels in differing[:10]:
        print(f"  {name}{labels}: {before.get((name, labels))} before, {after.get((name, labels))} after")
    return False


def summarise(rows, seconds):
    """Memory flat: the median of the last quarter within 10 % of the median
    of the second quarter (after warm-up: state grows until the first
    eviction horizon has passed). Lag bounded: the last quarter's maximum no
    more than twice the second quarter's, or under 10,000 records. True
    when both hold; a run too short to judge is not judged steady."""
    quarter = lambda index: [row for row in rows if index * seconds / 4 <= row[0] < (index + 1) * seconds / 4]  # noqa: E731
    second, last = quarter(1), quarter(3)
    if not second or not last:
        print("soak: too short to judge")
        return False
    rss_second = statistics.median(row[1] for row in second)
    rss_last = statistics.median(row[1] for row in last)
    journeys_second = statistics.median(row[2] for row in second)
    journeys_last = statistics.median(row[2] for row in last)
    lag = lambda part: max(row[3] + row[4] for row in part)  # noqa: E731
    rate = (rows[-1][5] - rows[0][5]) / max(rows[-1][0] - rows[0][0], 1)
    growth = (rss_last - rss_second) / rss_second
    flat = abs(growth) <= 0.10
    bounded = lag(last) <= max(2 * lag(second), 10_000)
    print(
        f"soak summary: {rate:,.0f} records/s consumed on average; "
        f"resident memory {rss_second:.0f} MiB (second quarter, median) -> {rss_last:.0f} MiB (last quarter), "
        f"{growth:+.1%}: {'flat' if flat else 'NOT flat'}; journeys held {journeys_second:,.0f} -> {journeys_last:,.0f}; "
        f"lag max {lag(second):,} -> {lag(last):,} records: {'bounded' if bounded else 'NOT bounded'}"
    )
    return flat and bounded


if __name__ == "__main__":
    sys.exit(main())
