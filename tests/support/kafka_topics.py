#!/usr/bin/env python3
"""Kafka topics for the OTLP end-to-end tests (rotel -> tansu), with kafka-python.

    kafka_topics.py create BROKER [TOPIC ...]
        Creates the topics (default: rotel's otlp_traces, otlp_logs, otlp_metrics), so that a
        reader can start from offset 0 before anything was produced. Existing ones are kept.
    kafka_topics.py read BROKER TOPIC [--min N] [--timeout S]
        Prints the value of every message of TOPIC from the earliest offset, one per line, once
        there are at least N (default 1) and all that the topic held then was read. After S
        seconds (default 20) with fewer than N, it says how many it had and exits 1.
        `--min 0` prints what the topic holds now.
    kafka_topics.py follow BROKER TOPIC ...
        Creates the topics, prints `ready`, then prints `TOPIC<TAB>VALUE` for every message of
        them from the earliest offset, as it arrives, until its standard input closes.

Values are printed as UTF-8 text with any newline replaced by a space (rotel's JSON has none).
kafka-python is installed (pip, --quiet) on first use. Exit codes: 0 done, 1 timeout or broker
error, 2 usage, 3 kafka-python missing and not installable.
"""

import os
import subprocess
import sys
import threading
import time

DEFAULT_TOPICS = ("otlp_traces", "otlp_logs", "otlp_metrics")


def die(code, message):
    print(f"kafka_topics.py: ERROR: {message}", file=sys.stderr)
    sys.exit(code)


def ensure_kafka():
    try:
        import kafka  # noqa: F401
    except ImportError:
        pip = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "kafka-python"],
            capture_output=True,
            text=True,
        )
        if pip.returncode != 0:
            die(3, f"pip install kafka-python failed:\n{pip.stdout}{pip.stderr}")
    try:
        import kafka  # noqa: F401
    except ImportError as e:
        die(3, f"kafka-python still missing after pip install kafka-python: {e}")


def create(broker, topics):
    ensure_kafka()
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=broker, client_id="observe-e2e-admin")
    try:
        for topic in topics:
            try:
                admin.create_topics([NewTopic(topic, 1, 1)])
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def consumer_from_start(broker, topics):
    """A consumer of partition 0 of each topic from offset 0. Assigned, not subscribed: no
    consumer group, so every reader sees everything the topics hold."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=broker,
        client_id="observe-e2e-reader",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    parts = [TopicPartition(t, 0) for t in topics]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    return consumer, parts


def text(value):
    return value.decode("utf-8", "replace").replace("\n", " ")


def read(broker, topic, minimum, timeout):
    ensure_kafka()
    deadline = time.monotonic() + timeout
    consumer, (part,) = consumer_from_start(broker, [topic])
    count = 0
    try:
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=100)
            for msgs in batch.values():
                for m in msgs:
                    sys.stdout.write(text(m.value) + "\n")
                    count += 1
            if count >= minimum:
                end = consumer.end_offsets([part])[part]
                if consumer.position(part) >= end:
                    break
        sys.stdout.flush()
    finally:
        consumer.close()
    if count < minimum:
        die(1, f"timeout after {timeout:g} s: {count} message(s) on {topic} at {broker}, expected at least {minimum}")


def follow(broker, topics):
    # The test that started this reader may end without stopping it: its closing our
    # standard input (as its process exits) ends us.
    def watch_stdin():
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    create(broker, topics)
    consumer, _ = consumer_from_start(broker, topics)
    print("ready", flush=True)
    while True:
        batch = consumer.poll(timeout_ms=100)
        for part, msgs in batch.items():
            for m in msgs:
                sys.stdout.write(f"{part.topic}\t{text(m.value)}\n")
        if batch:
            sys.stdout.flush()


def main(argv):
    if len(argv) >= 2 and argv[0] == "create":
        create(argv[1], argv[2:] or DEFAULT_TOPICS)
        return
    if len(argv) >= 3 and argv[0] == "follow":
        follow(argv[1], argv[2:])
        return
    if len(argv) >= 3 and argv[0] == "read":
        broker, topic, rest = argv[1], argv[2], argv[3:]
        minimum, timeout = 1, 20.0
        while rest:
            flag = rest.pop(0)
            if flag in ("--min", "--timeout") and rest:
                value = rest.pop(0)
                try:
                    if flag == "--min":
                        minimum = int(value)
                    else:
                        timeout = float(value)
                except ValueError:
                    die(2, f"{flag} wants a number, not {value!r}")
            else:
                die(2, f"unknown argument {flag!r}")
        read(broker, topic, minimum, timeout)
        return
    die(
        2,
        "usage: kafka_topics.py create BROKER [TOPIC ...] | read BROKER TOPIC [--min N] [--timeout S]"
        " | follow BROKER TOPIC ...",
    )


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except SystemExit:
        raise
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:  # a broker that is not there, a topic that does not exist
        die(1, f"{type(e).__name__}: {e}")
