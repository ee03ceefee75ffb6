from collections.abc import Callable

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline

from pipeline.runner import choose_runner


@pytest.fixture
def make_pipeline() -> Callable[..., TestPipeline]:
    """A TestPipeline on the runner ``wirenews run`` uses by default."""

    def make(*flags: str) -> TestPipeline:
        options = PipelineOptions(list(flags))
        return TestPipeline(runner=choose_runner(options), options=options, blocking=True)

    return make
