"""End to end: the full batch job beside bare spaCy on the same articles, in one run.

Generates N synthetic wire articles (bench/corpus.py: real sentences in new
combinations, a known share of republished copies), then times

  (a) bare ``nlp.pipe`` over every article's headline and body, with the model and
      components the pipeline uses (``ner`` only), in 1 and in 2 processes;
  (b) ``wirenews run`` over the same articles as one JSON Lines file on the
      DirectRunner, with 1 and with 2 workers (the job's own clock, model loading
      included, as it is for (a)).

The pipeline skips the NLP of the copies it drops, so (b) also gets a ratio
against bare spaCy over the articles it actually annotates.

    .venv/bin/python bench/pipeline.py [--articles 1000] [--copy-share 0.15]

The last line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import REPO, synthetic_articles, write_jsonl

from transforms.nlp import DEFAULT_MODEL, load_pipeline

WIRENEWS = Path(sys.executable).parent / "wirenews"
_SUMMARY = re.compile(
    r"read ([\d,]+) records: ([\d,]+) articles, ([\d,]+) duplicates, ([\d,]+) dead letters, "
    r"in ([\d.,]+) s"
)


def bare_spacy(texts: list[str], processes: int) -> float:
    """Seconds for bare ``nlp.pipe`` over ``texts``, model loading included."""
    started = time.perf_counter()
    nlp = load_pipeline(DEFAULT_MODEL, frozenset({"ner"}))
    for _doc in nlp.pipe(texts, batch_size=64, n_process=processes):
        pass
    return time.perf_counter() - started


def pipeline_run(corpus: Path, workers: int) -> dict[str, float]:
    """The job's counts and its own run time, from its summary line."""
    with tempfile.TemporaryDirectory() as out:
        flags = [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
        done = subprocess.run(
            [str(WIRENEWS), "run", "--source", str(corpus), "--output", out, *flags],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
    match = _SUMMARY.search(done.stdout + done.stderr)
    if match is None:
        message = f"no summary line in the job's output:\n{done.stderr[-2000:]}"
        raise SystemExit(message)
    read, articles, duplicates, _dead, seconds = (g.replace(",", "") for g in match.groups())
    return {
        "read": int(read),
        "articles": int(articles),
        "duplicates": int(duplicates),
        "seconds": float(seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=1000, help="corpus size")
    parser.add_argument(
        "--copy-share", type=float, default=0.15, help="share of republished copies"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    articles = synthetic_articles(args.articles, copy_share=args.copy_share, seed=args.seed)
    texts = [t for a in articles for t in (a["headline"], a["body"])]
    words = sum(len(t.split()) for t in texts)
    figures: dict[str, float | int] = {"articles": len(articles), "words": words}
    with tempfile.TemporaryDirectory() as folder:
        corpus = write_jsonl(articles, Path(folder) / "corpus.jsonl")
        for workers in (1, 2):
            bare = bare_spacy(texts, workers)
            run = pipeline_run(corpus, workers)
            unique = texts[: 2 * run["articles"]]  # the NLP work the job did: about its originals
            bare_unique = bare * len(unique) / len(texts)
            figures |= {
                f"bare_{workers}_articles_per_s": round(len(articles) / bare, 2),
                f"bare_{workers}_words_per_s": round(words / bare),
                f"pipeline_{workers}_articles_per_s": round(run["read"] / run["seconds"], 2),
                f"pipeline_{workers}_words_per_s": round(words / run["seconds"]),
                f"pipeline_{workers}_duplicates": run["duplicates"],
                f"pipeline_over_nlp_{workers}": round(bare / run["seconds"], 3),
                f"pipeline_over_nlp_annotated_{workers}": round(bare_unique / run["seconds"], 3),
            }
            print(
                f"{workers} worker(s): bare {bare:.1f} s, pipeline {run['seconds']:.1f} s",
                flush=True,
            )
    figures["pipeline_over_nlp"] = figures["pipeline_over_nlp_1"]
    figures["workers_2_over_1"] = round(
        figures["pipeline_2_articles_per_s"] / figures["pipeline_1_articles_per_s"], 3
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
