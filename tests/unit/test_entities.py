import pytest

from transforms.clean import clean_page
from transforms.entities import (
    add_entity_components,
    canonical_names,
    chunks,
    entity_pipeline,
    entity_records,
    is_known_place,
    strip_title,
)
from transforms.nlp import DEFAULT_MODEL, ModelMissing, check_model, load_pipeline


@pytest.fixture(scope="module")
def nlp():
    return add_entity_components(load_pipeline(DEFAULT_MODEL, frozenset({"ner"})))


def test_only_the_components_needed_are_loaded(nlp) -> None:
    assert nlp.pipe_names == ["ner", "wirenews_entity_fixes", "wirenews_canonical_entities"]
    step = entity_pipeline(DEFAULT_MODEL)
    assert step.pipe_names == ["ner", "wirenews_entity_fixes"]
    assert entity_pipeline(DEFAULT_MODEL) is step  # one model per process


def test_a_missing_model_says_what_to_do() -> None:
    with pytest.raises(
        ModelMissing, match=r"'wirenews_no_such_model' is not installed.*--spacy-model"
    ):
        check_model("wirenews_no_such_model")


@pytest.mark.parametrize(
    ("name", "bare"),
    [
        ("Secretary-General Mark Rutte", "Mark Rutte"),
        ("Prime Minister Aino Virtanen", "Aino Virtanen"),
        ("former President Joe Bloggs", "Joe Bloggs"),
        ("Dr. Ana Lima", "Ana Lima"),
        ("Mark Rutte", "Mark Rutte"),
        ("President", "President"),
    ],
)
def test_titles_are_stripped(name: str, bare: str) -> None:
    assert strip_title(name) == bare


def test_canonical_names_link_within_the_document() -> None:
    mentions = [
        ("Secretary-General Mark Rutte", "PERSON"),
        ("Rutte", "PERSON"),
        ("The Ukrainian Foreign Ministry", "ORG"),
        ("the Foreign Ministry", "ORG"),
        ("U.S.", "GPE"),
        ("the United States", "GPE"),
        ("Britain", "GPE"),
        ("U.N.", "ORG"),
    ]
    assert canonical_names(mentions) == [
        "Mark Rutte",
        "Mark Rutte",
        "Ukrainian Foreign Ministry",
        "Ukrainian Foreign Ministry",
        "United States",
        "United States",
        "United Kingdom",
        "United Nations",
    ]


def test_an_ambiguous_surname_is_not_guessed() -> None:
    mentions = [("Anna Berg", "PERSON"), ("Lars Berg", "PERSON"), ("Berg", "PERSON")]
    assert canonical_names(mentions)[-1] == "Berg"


def test_places_are_known() -> None:
    assert is_known_place("Kyiv")
    assert is_known_place("ukraine")
    assert not is_known_place("Tokyo Stock Exchange")


def test_the_seed_entities(nlp, seed_page: bytes) -> None:
    page = clean_page(seed_page.decode())
    entities = entity_records(nlp(page.headline), [(0, nlp(page.body))], page.dateline)
    canonical = {(e.canonical, e.label) for e in entities}
    expected = {
        ("Mark Rutte", "PERSON"),
        ("Volodymyr Zelenskyy", "PERSON"),
        ("Kim Jong Un", "PERSON"),
        ("Xi Jinping", "PERSON"),
        ("NATO", "ORG"),
        ("Ukrainian Foreign Ministry", "ORG"),
    } | {
        (place, "GPE")
        for place in (
            "Ukraine",
            "Kyiv",
            "Russia",
            "Brussels",
            "Washington",
            "United States",
            "United Kingdom",
            "China",
            "North Korea",
            "Iran",
        )
    }
    assert expected <= canonical
    assert not any("Home" in name or "Crisis" in name for name, _label in canonical)
    rutte = next(e for e in entities if e.canonical == "Mark Rutte")
    assert rutte.mentions == 6
    assert page.body[rutte.start : rutte.end] == rutte.text
    assert all(e.label not in {"DATE", "CARDINAL", "ORDINAL"} for e in entities)


def test_a_long_body_is_cut_at_paragraphs_and_offsets_still_point_into_it(nlp) -> None:
    paragraph = "Prime Minister Aino Virtanen met officials in Helsinki on Monday."
    body = "\n\n".join([paragraph] * 400)
    pieces = chunks(body, limit=5_000)
    assert len(pieces) > 1
    assert "".join(text + "\n\n" for _offset, text in pieces).rstrip() == body
    entities = entity_records(None, [(offset, nlp(text)) for offset, text in pieces])
    virtanen = next(e for e in entities if e.canonical == "Aino Virtanen")
    assert virtanen.mentions == 400
    assert body[virtanen.start : virtanen.end] == "Aino Virtanen"


def test_the_quote_component_runs_over_a_parsed_doc(nlp) -> None:
    nlp.add_pipe("wirenews_quotes")
    try:
        doc = nlp(
            "NATO Secretary-General Mark Rutte spoke in Brussels.\n\n"
            "“We will not abandon Ukraine,” Rutte said."
        )
    finally:
        nlp.remove_pipe("wirenews_quotes")
    assert [(q.text, q.speaker, q.speaker_label, q.cue) for q in doc._.quotes] == [
        ("We will not abandon Ukraine,", "Mark Rutte", "PERSON", "said")
    ]


def test_a_place_owning_an_organisation_is_not_part_of_its_name() -> None:
    assert canonical_names([("Ecuador’s Ministry of Foreign Affairs", "ORG")]) == [
        "Ministry of Foreign Affairs"
    ]
