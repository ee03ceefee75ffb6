"""Entry file of the Dataflow Flex Template: its parameters arrive as ``wirenews run`` flags.

The launcher runs ``python dataflow_main.py --source ... --output ... --runner=DataflowRunner
...``; this hands them to the same code as the ``wirenews run`` command.
"""

from __future__ import annotations

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
