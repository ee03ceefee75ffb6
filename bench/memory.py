"""Peak memory (RSS) of a batch run, and of a stream as it grows.

Batch: ``wirenews run`` over N synthetic articles (bench/corpus.py), sampling the
summed RSS of the job's whole process tree (workers included) every 0.2 s.
Stream: a streaming run on Prism fed M articles at ``--rate`` a second; RSS of
the tree and the CPU time it has used (each also Prism's alone) after every 10% of
them, to show whether memory levels off (dedup state expires after
``--dedup-horizon``) or keeps growing, and the dedup state the stream held when
stopped (its summary line).

    .venv/bin/python bench/memory.py [--batch-articles 10000] [--stream-articles 100000]
        [--dedup-horizon 7d] [--rate 10] [--job-flag=--nlp-processes=0 ...]

The last line is one JSON object with the figures (MiB).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from broker import KafkaProducer, local_broker
from corpus import synthetic_articles, write_jsonl

WIRENEWS = Path(sys.executable).parent / "wirenews"
MIB = 1024 * 1024
SETTLE_SECONDS = 20.0


class Process(NamedTuple):
    """One process of a job's tree, as /proc shows it."""

    name: str
    rss_bytes: int
    cpu_seconds: float


def job_tree(root: int) -> list[Process]:
    """``root`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    found: dict[int, Process] = {}
    page, ticks = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, stat = (entry / "stat").read_text().split(" (", 1)[1].rsplit(")", 1)
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        fields = stat.split()  # from the state on: utime and stime are the 12th and 13th
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        found[int(entry.name)] = Process(name, int(statm[1]) * page, cpu)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in found:
            tree.append(found[pid])
        todo.extend(children.get(pid, []))
    return tree


def tree_rss(root: int) -> int:
    """Bytes of resident memory of ``root`` and every process below it."""
    return sum(process.rss_bytes for process in job_tree(root))


def batch_peak(count: int) -> dict[str, float]:
    """Peak RSS of a batch job over ``count`` articles."""
    with tempfile.TemporaryDirectory() as folder:
        corpus = write_jsonl(synthetic_articles(count, seed=21), Path(folder) / "corpus.jsonl")
        job = subprocess.Popen(
            [str(WIRENEWS), "run", "--source", str(corpus), "--output", f"{folder}/out"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        peak = 0
        while job.poll() is None:
            peak = max(peak, tree_rss(job.pid))
            time.sleep(0.2)
    return {"batch_articles": count, "batch_peak_rss_mib": round(peak / MIB)}


def stream_growth(count: int, horizon: str, rate: float, job_flags: list[str]) -> dict[str, object]:
    """RSS of a stream's process tree after each tenth of ``count`` articles, and its state.

    Articles go out at ``rate`` a second (one the stream keeps up with), so event
    time moves on steadily and state older than the horizon expires as it would in
    a stream that never ends.
    """
    broker = local_broker()
    articles = synthetic_articles(count, seed=22)
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "kafka"
        bootstrap = broker.start(state_dir=state, timeout=180.0)
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
        producer.send("memory", b"{}").get(timeout=30)
        job = subprocess.Popen(
            [str(WIRENEWS), "run", "--source", f"kafka://{bootstrap}/memory", "--group", "m",
             "--output", f"{folder}/out", "--window", "10", "--dedup-horizon", horizon,
             *job_flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, text=True,
        )  # fmt: skip
        samples = []
        try:
            step = max(1, count // 10)
            due = time.monotonic()
            for number, article in enumerate(articles, 1):
                due += 1 / rate
                time.sleep(max(0.0, due - time.monotonic()))
                producer.send(
                    "memory", key=article["id"].encode(), value=json.dumps(article).encode()
                )
                if number % step == 0:
                    tree = job_tree(job.pid)
                    prism = [p for p in tree if p.name == "prism"]
                    sample = {
                        "articles": number,
                        "rss_mib": round(sum(p.rss_bytes for p in tree) / MIB),
                        "prism_rss_mib": round(sum(p.rss_bytes for p in prism) / MIB),
                        "cpu_seconds": round(sum(p.cpu_seconds for p in tree)),
                        "prism_cpu_seconds": round(sum(p.cpu_seconds for p in prism)),
                    }
                    samples.append(sample)
                    print(f"after {number} articles fed: {sample}", flush=True)
            producer.flush()
            time.sleep(SETTLE_SECONDS)  # the last articles through, before the summary
        finally:
            # The job alone: it cancels itself on Prism and asks for its counters, which
            # Prism would not have if the signal reached its whole process group.
            job.send_signal(signal.SIGTERM)
            summary, _ = job.communicate(timeout=120)
            producer.close()
            broker.stop(state)
    held = re.search(r"dedup state held: ([\d,]+) fingerprints", summary)
    prints = int(held[1].replace(",", "")) if held else None
    return {
        "stream_articles": count,
        "dedup_horizon": horizon,
        "stream_samples": samples,
        "held_fingerprints": prints,
        "summary": summary.strip().splitlines()[-1] if summary.strip() else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-articles", type=int, default=10_000)
    parser.add_argument("--stream-articles", type=int, default=100_000)
    parser.add_argument("--dedup-horizon", default="7d", help="the stream's --dedup-horizon")
    parser.add_argument("--rate", type=float, default=10.0, help="stream input, articles/s")
    parser.add_argument(
        "--job-flag",
        action="append",
        default=[],
        help="a flag for the stream's wirenews run, e.g. --job-flag=--nlp-processes=0 (repeatable)",
    )
    args = parser.parse_args()
    figures: dict[str, object] = {}
    if args.batch_articles:
        figures |= batch_peak(args.batch_articles)
    if args.stream_articles:
        figures |= stream_growth(args.stream_articles, args.dedup_horizon, args.rate, args.job_flag)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
