"""Kafka: feeding speed beside kcat, a bounded run, and a stream's latency on Prism.

Starts its own broker (deploy/kafka) in a temporary folder, generates N synthetic
articles (bench/corpus.py) and measures:

- ``wirenews feed`` and ``kcat -P`` publishing the same JSON Lines to new topics
  (messages/s each by their own clocks, and the ratio; feed's wall clock, with
  Python's start-up, too), and kafka-python alone sending the same messages from
  memory: the ceiling of any feed written on that client; and the CPU time each
  spends a message (all its threads; feed's and kcat's whole processes, start-up
  included), which other load on the machine changes far less than messages/s;
- a bounded ``wirenews run --until-end`` over the fed topic (articles/s);
- a streaming run on Prism fed at a fixed rate: for each article, the time from
  its send to the moment its output file appears (p50, p95, max), beside the
  window length.

    .venv/bin/python bench/kafka.py [--articles 2000] [--rate 10] [--stream-seconds 60]
        [--feed-only]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import fastavro
from broker import KafkaAdminClient, KafkaProducer, NewTopic, local_broker
from corpus import synthetic_articles, write_jsonl

WIRENEWS = Path(sys.executable).parent / "wirenews"
_FED = re.compile(r"sent ([\d,]+) articles? to \S+ in [\d.]+ s \(([\d,]+)/s\)")
_SUMMARY = re.compile(r"read ([\d,]+) records.* in ([\d.,]+) s")
WINDOW_SECONDS = 5


def feeding(bootstrap: str, corpus: Path, count: int) -> dict[str, float | str]:
    """Messages/s of ``wirenews feed``, ``kcat -P`` and bare kafka-python over the same lines.

    Each is timed three times (a fresh topic each time) and the median kept.
    """
    topics, ours, walls, kcats, bare = [], [], [], [], []
    cpu: dict[str, list[float]] = {"feed": [], "kcat": [], "kafka_python": []}
    for _ in range(3):
        topic = _topic(bootstrap, "feed")
        started, cpu_before = time.perf_counter(), _children_cpu_seconds()
        done = subprocess.run(
            [str(WIRENEWS), "feed", "--bootstrap", bootstrap, "--topic", topic, str(corpus)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        walls.append(time.perf_counter() - started)
        cpu["feed"].append(_children_cpu_seconds() - cpu_before)
        summary = _FED.search(done.stdout + done.stderr)
        if summary is None:
            message = f"no summary line from feed:\n{done.stderr[-2000:]}"
            raise SystemExit(message)
        sent, rate = (int(group.replace(",", "")) for group in summary.groups())
        if sent != count:
            message = f"feed sent {sent:,} of the {count:,} articles:\n{done.stderr[-2000:]}"
            raise SystemExit(message)
        ours.append(sent / rate)  # its own clock, after start-up (the rate is the precise figure)
        topics.append(topic)
        kcat_topic = _topic(bootstrap, "kcat")
        started, cpu_before = time.perf_counter(), _children_cpu_seconds()
        subprocess.run(
            ["kcat", "-P", "-b", bootstrap, "-t", kcat_topic, "-X", "acks=all", "-l", str(corpus)],
            check=True, capture_output=True,
        )  # fmt: skip
        kcats.append(time.perf_counter() - started)
        cpu["kcat"].append(_children_cpu_seconds() - cpu_before)
        seconds, cpu_seconds = _bare_kafka_python(bootstrap, _topic(bootstrap, "bare"), corpus)
        bare.append(seconds)
        cpu["kafka_python"].append(cpu_seconds)
    feed_s, wall_s = statistics.median(ours), statistics.median(walls)
    kcat_s, bare_s = statistics.median(kcats), statistics.median(bare)
    per_message = {
        f"{client}_cpu_us_per_message": round(statistics.median(spent) * 1e6 / count, 1)
        for client, spent in cpu.items()
    }
    return per_message | {
        "topic": topics[0],
        "feed_messages_per_s": round(count / feed_s, 1),
        "feed_wall_messages_per_s": round(count / wall_s, 1),
        "kcat_messages_per_s": round(count / kcat_s, 1),
        "kafka_python_messages_per_s": round(count / bare_s, 1),
        "feed_over_kcat": round(kcat_s / feed_s, 3),
        "feed_over_kafka_python": round(bare_s / feed_s, 3),
        "kafka_python_over_kcat": round(kcat_s / bare_s, 3),
    }


def _topic(bootstrap: str, prefix: str) -> str:
    """A new topic with two partitions, so no client measures its creation."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    return name


def _children_cpu_seconds() -> float:
    """CPU time of the ended child processes so far (user and system): whole processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _bare_kafka_python(bootstrap: str, topic: str, corpus: Path) -> tuple[float, float]:
    """Seconds, and CPU seconds of all threads, for kafka-python alone to send the lines
    (read beforehand) as feed sends them.

    Same producer settings, key and headers as ``wirenews feed``: the most any feed
    written on this client could do, without reading or checking anything.
    """
    lines = [line for line in corpus.read_bytes().splitlines() if line.strip()]
    keys = [json.loads(line)["id"].encode() for line in lines]
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        batch_size=512 * 1024,
        max_request_size=10 * 1024 * 1024 + 64 * 1024,
    )
    try:
        producer.partitions_for(topic)  # metadata first, as feed has it before its first send
        started, cpu_before = time.perf_counter(), time.process_time()
        for number, (key, line) in enumerate(zip(keys, lines, strict=True), start=1):
            origin = f"{corpus}:{number}".encode()
            headers = [("content-type", b"application/json"), ("wirenews-origin", origin)]
            producer.send(topic, key=key, value=line, headers=headers)
        producer.flush()
        return time.perf_counter() - started, time.process_time() - cpu_before
    finally:
        producer.close()


def bounded_run(bootstrap: str, topic: str) -> dict[str, float]:
    """A ``--until-end`` run over the fed topic: the job's own clock."""
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [str(WIRENEWS), "run", "--source", f"kafka://{bootstrap}/{topic}", "--group",
             "bench", "--until-end", "--output", out],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    match = _SUMMARY.search(done.stdout + done.stderr)
    if match is None:
        message = f"no summary line:\n{done.stderr[-2000:]}"
        raise SystemExit(message)
    read, seconds = int(match.group(1).replace(",", "")), float(match.group(2).replace(",", ""))
    return {"bounded_articles_per_s": round(read / seconds, 2)}


def _written(out: Path, first_seen: dict[str, float]) -> None:
    for path in out.glob("*.avro"):
        seen_at = path.stat().st_mtime
        if path.name in first_seen:
            continue
        with path.open("rb") as file:
            for record in fastavro.reader(file):
                if "id" in record:  # dead letters (the topic-creating "{}") have none
                    first_seen.setdefault(record["id"], seen_at)
        first_seen[path.name] = seen_at


def stream_latency(
    bootstrap: str, articles: list[dict[str, str]], rate: float, seconds: float
) -> dict[str, float]:
    """Feed at ``rate`` articles/s into a running stream; time each article to its file."""
    topic = f"stream-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    producer.send(topic, b"{}").get(timeout=30)  # create the topic before the stream starts
    sent_at: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        job = subprocess.Popen(
            [str(WIRENEWS), "run", "--source", f"kafka://{bootstrap}/{topic}", "--group", "bench",
             "--output", str(out), "--window", str(WINDOW_SECONDS)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            time.sleep(15)  # let the job start up before the clock runs
            first_seen: dict[str, float] = {}
            started = time.time()
            for number, article in enumerate(articles):
                if time.time() - started > seconds:
                    break
                time.sleep(max(0.0, started + number / rate - time.time()))
                producer.send(topic, key=article["id"].encode(), value=json.dumps(article).encode())
                producer.flush()
                sent_at[article["id"]] = time.time()
                _written(out, first_seen)
            deadline = time.time() + 6 * WINDOW_SECONDS + 30
            while time.time() < deadline and not sent_at.keys() <= first_seen.keys():
                time.sleep(0.5)
                _written(out, first_seen)
        finally:
            job.send_signal(signal.SIGTERM)
            job.wait(120)
            producer.close()
    latencies = sorted(first_seen[i] - sent_at[i] for i in sent_at if i in first_seen)
    if not latencies:
        message = "the stream wrote nothing"
        raise SystemExit(message)
    return {
        "stream_rate_per_s": rate,
        "stream_sent": len(sent_at),
        "stream_written": len(latencies),
        "window_seconds": WINDOW_SECONDS,
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "latency_max_s": round(latencies[-1], 2),
        "latency_p50_over_window": round(statistics.median(latencies) / WINDOW_SECONDS, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2000, help="articles to feed")
    parser.add_argument("--rate", type=float, default=10.0, help="stream input, articles/s")
    parser.add_argument("--stream-seconds", type=float, default=60.0, help="how long to feed")
    parser.add_argument(
        "--feed-only", action="store_true", help="only the feeding figures: no run, no stream"
    )
    args = parser.parse_args()
    broker = local_broker()
    articles = synthetic_articles(args.articles, seed=11)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "kafka"
        bootstrap = broker.start(state_dir=state, timeout=180.0)
        try:
            corpus = write_jsonl(articles, Path(folder) / "corpus.jsonl")
            figures: dict[str, float | str | int] = {"articles": len(articles)}
            fed = feeding(bootstrap, corpus, len(articles))
            figures |= fed
            if not args.feed_only:
                figures |= bounded_run(bootstrap, str(fed["topic"]))
                fresh = synthetic_articles(int(args.rate * args.stream_seconds) + 1, seed=12)
                figures |= stream_latency(bootstrap, fresh, args.rate, args.stream_seconds)
        finally:
            broker.stop(state)
    figures.pop("topic")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
