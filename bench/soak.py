"""Kill-and-restart soak: a streaming job SIGKILLed every ~30 s while articles flow in.

The scenario of tests/integration/test_kill_restart.py, for longer: a broker of its
own (deploy/kafka/local_broker.py in a temporary folder), a 2-partition topic fed at a
steady rate (distinct stories, an exact copy every 25th message, broken JSON every
40th), a ``wirenews run`` stream killed with SIGKILL (its whole process group) at seeded
random points and restarted with the same consumer group, until ``--seconds`` are up;
then it drains, stops, and every input record is looked for in the outputs.

The last line is one JSON object: fed, written, duplicates, dead_letters, lost (must be
0), kills, restarts, written_twice, and the other checks' counts. Exit status 1 when a
check failed (anything lost, misplaced, differing, committed ahead of the files).

Usage:
    .venv/bin/python bench/soak.py [--seconds 120] [--rate 5] [--kill-every 30] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from broker import KafkaAdminClient, NewTopic  # kafka-python: bench/kafka.py shadows it here

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration.chaos import KillRestart  # noqa: E402 - after the path is set
from tests.integration.conftest import load_local_broker  # noqa: E402

PARTITIONS = 2
# From a restart to its first commit takes about this long on a 2-core machine.
STARTUP_SECONDS = 12.0


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print progress on stderr and the figures as the last stdout line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to feed and kill")
    parser.add_argument("--rate", type=float, default=5.0, help="articles per second")
    parser.add_argument("--kill-every", type=float, default=30.0, help="seconds between kills")
    parser.add_argument("--seed", type=int, default=1, help="seeds the kill points")
    args = parser.parse_args(argv)
    broker = load_local_broker()
    with tempfile.TemporaryDirectory(prefix="wirenews-soak-") as folder:
        work = Path(folder)
        state = work / "kafka"
        print(f"starting a broker in {state}", file=sys.stderr)
        bootstrap = broker.start(state_dir=state, timeout=180.0)
        try:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap)
            try:
                admin.create_topics([NewTopic("soak", PARTITIONS, 1)])
            finally:
                admin.close()
            # Kills land a random pause after the restarted job's first commit.
            spread = max(1.0, args.kill_every - STARTUP_SECONDS)
            scenario = KillRestart(
                bootstrap,
                "soak",
                work,
                partitions=PARTITIONS,
                rate=args.rate,
                limit=int(args.rate * args.seconds),  # feeding stops when the time is up
                seconds=args.seconds,
                pause=(spread / 2, spread * 1.5),
                seed=args.seed,
                patience=300.0,
            )
            began = time.monotonic()
            plan = f"{args.rate}/s for {args.seconds:.0f} s, a kill every ~{args.kill_every:.0f} s"
            print(f"feeding {plan}", file=sys.stderr)
            verdict = scenario.run()
        finally:
            broker.stop(state)
    figures = {**verdict.figures(), "seconds": round(time.monotonic() - began, 1)}
    for name, examples in verdict.problems().items():
        print(f"{name}: {examples}", file=sys.stderr)
    print(json.dumps(figures))
    return 1 if verdict.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
