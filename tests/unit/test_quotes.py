"""The quote core, pattern by pattern, with hand-made entity mentions (no model)."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.quotes import DIRECT, INDIRECT, PARTIAL, Mention, find_quotes
from transforms.records import Quote


def people(text: str, **names: str) -> list[Mention]:
    """Mentions of every occurrence of each written form, as ``Written="Canonical|LABEL"``."""
    mentions = []
    for written, value in names.items():
        canonical, label = value.split("|")
        for match in re.finditer(re.escape(written.replace("_", " ")), text):
            mentions.append(Mention(match.start(), match.end(), canonical, label))
    return mentions


RUTTE = {"Mark_Rutte": "Mark Rutte|PERSON", "Rutte": "Mark Rutte|PERSON"}


def quotes_of(text: str, **names: str) -> list[Quote]:
    return find_quotes(text, people(text, **names))


def direct(text: str, **names: str) -> list[tuple[str, str | None, str | None]]:
    """(text, speaker, cue) of the direct and partial quotes."""
    return [(q.text, q.speaker, q.cue) for q in quotes_of(text, **names) if q.kind != INDIRECT]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # trailing cue
        (
            "Mark Rutte spoke in Brussels.\n\n“We will stand by Kyiv,” Rutte noted.",
            [("We will stand by Kyiv,", "Mark Rutte", "noted")],
        ),
        # inverted cue with an apposition
        (
            "“We will stand by Kyiv,” said Mark Rutte, the NATO chief.",
            [("We will stand by Kyiv,", "Mark Rutte", "said")],
        ),
        # colon cue
        (
            "Mark Rutte said: “We will stand by Kyiv.”",
            [("We will stand by Kyiv.", "Mark Rutte", "said")],
        ),
        # comma cue
        (
            "Asked about talks, Rutte replied, “It is too early to say.”",
            [("It is too early to say.", "Mark Rutte", "replied")],
        ),
        # title before the name in the cue
        (
            "“Our support is steady,” Secretary-General Mark Rutte told reporters.",
            [("Our support is steady,", "Mark Rutte", "told")],
        ),
    ],
)
def test_cue_shapes(text: str, expected: list) -> None:
    assert direct(text, **RUTTE) == expected


def test_an_organisation_speaks_in_a_statement_and_by_definite_noun() -> None:
    text = (
        "The Ukrainian Foreign Ministry rejected the idea.\n\n"
        "“Ukraine will not accept half measures,” the ministry said in a statement."
    )
    names = {"Ukrainian_Foreign_Ministry": "Ukrainian Foreign Ministry|ORG"}
    assert direct(text, **names) == [
        ("Ukraine will not accept half measures,", "Ukrainian Foreign Ministry", "said")
    ]


def test_according_to_names_the_speaker() -> None:
    text = "According to the NDRRMC, “More than 1,200 houses were destroyed.”"
    quotes = quotes_of(text, NDRRMC="National Disaster Council|ORG")
    assert [(q.speaker, q.cue, q.kind) for q in quotes] == [
        ("National Disaster Council", "according to", DIRECT)
    ]


def test_a_statement_declaring_that_gives_a_partial_quote_to_the_organisation() -> None:
    text = (
        "The Ukrainian Foreign Ministry released a statement declaring that Ukraine "
        "“will not settle for alternatives or surrogates,” referencing its “bitter experience "
        "of the Budapest Memorandum.”"
    )
    quotes = quotes_of(text, Ukrainian_Foreign_Ministry="Ukrainian Foreign Ministry|ORG")
    assert [(q.text, q.speaker, q.kind) for q in quotes] == [
        ("will not settle for alternatives or surrogates,", "Ukrainian Foreign Ministry", PARTIAL),
        ("bitter experience of the Budapest Memorandum.", "Ukrainian Foreign Ministry", PARTIAL),
    ]  # and no indirect quote: the marks hold what was said


def test_split_quote_gives_two_spans_one_speaker() -> None:
    text = "Kadri Saar spoke.\n\n“We are a border country,” she said, “so forgive us.”"
    quotes = quotes_of(text, Kadri_Saar="Kadri Saar|PERSON")
    assert [(q.text, q.speaker, q.kind) for q in quotes] == [
        ("We are a border country,", "Kadri Saar", DIRECT),
        ("so forgive us.", "Kadri Saar", DIRECT),
    ]


def test_a_quote_running_over_paragraphs_keeps_its_speaker() -> None:
    text = (
        "Health Secretary James Ellery told parliament about waiting lists. He said:\n\n"
        "“I will not pretend this is easy. The service has had a hard decade.\n\n"
        "“But we have a plan, and we have the money.”"
    )
    quotes = quotes_of(text, James_Ellery="James Ellery|PERSON")
    assert [(q.text, q.speaker) for q in quotes] == [
        ("I will not pretend this is easy. The service has had a hard decade.", "James Ellery"),
        ("But we have a plan, and we have the money.", "James Ellery"),
    ]


def test_pronoun_resolves_to_the_person_last_in_view() -> None:
    text = (
        "“Talks are over,” Mark Rutte said.\n\n"
        "Her co-negotiator, Anders Holm, said the vote was close. "
        "“Nobody should be watched in the street,” he said."
    )
    quotes = quotes_of(text, Anders_Holm="Anders Holm|PERSON", **RUTTE)
    assert [(q.text, q.speaker) for q in quotes if q.kind == DIRECT] == [
        ("Talks are over,", "Mark Rutte"),
        ("Nobody should be watched in the street,", "Anders Holm"),
    ]


def test_partial_quote_inside_reported_speech() -> None:
    text = "Finance Minister Jussi Kallio described the timetable as “tight but realistic”."
    quotes = quotes_of(text, Jussi_Kallio="Jussi Kallio|PERSON")
    assert [(q.text, q.speaker, q.cue, q.kind) for q in quotes] == [
        ("tight but realistic", "Jussi Kallio", "described", PARTIAL)
    ]


def test_a_sentence_without_a_cue_continues_the_previous_speaker() -> None:
    text = (
        "“The numbers are clear,” said Mark Rutte. “Nobody can ignore them.”\n\n"
        "“We will act,” Rutte added."
    )
    quotes = quotes_of(text, **RUTTE)
    assert [(q.text, q.speaker, q.cue) for q in quotes] == [
        ("The numbers are clear,", "Mark Rutte", "said"),
        ("Nobody can ignore them.", "Mark Rutte", None),
        ("We will act,", "Mark Rutte", "added"),
    ]
    continued = quotes[1]
    assert continued.confidence < quotes[0].confidence  # no cue of its own


def test_an_unnamed_speaker_stays_unknown() -> None:
    text = (
        "Mark Rutte arrived late.\n\n"
        "“Nobody told us anything,” said one passenger, a teacher from Hamburg."
    )
    quotes = quotes_of(text, **RUTTE)
    assert [(q.speaker, q.speaker_label, q.cue) for q in quotes] == [(None, None, "said")]


@pytest.mark.parametrize(
    "text",
    [
        "Kyiv said ships would use a so-called “green corridor” to leave port.",
        "Rutte said the path to membership was “irreversible”.",
        "The agency published a report titled “Charting the Course” on Monday.",
        "His career is the subject of a documentary, “Between the Posts,” due next spring.",
        "Goalkeeper Paolo “The Wall” Bianchi saved three penalties.",
        "The company has promised a “just transition” package for workers.",
        "Borrowers face what is often described as the “mortgage cliff”.",
        "Many island states pinned their hopes on the “loss and damage” fund.",
        "The players’ families and the miners’ hostels were not mentioned.",
    ],
)
def test_scare_quotes_single_words_titles_and_nicknames_are_not_quotes(text: str) -> None:
    assert [q for q in quotes_of(text, Rutte="Mark Rutte|PERSON") if q.kind != INDIRECT] == []


def test_straight_quotes_are_paired_like_curly_ones() -> None:
    text = '"We will get this done," Rutte said. Critics called it "governing by crisis".'
    assert direct(text, **RUTTE) == [
        ("We will get this done,", "Mark Rutte", "said"),
        ("governing by crisis", None, "called"),
    ]


def test_unbalanced_marks_survive() -> None:
    stray_opener = "Rutte spoke. “\n\n“We will stay,” Rutte said."
    stray_closer = "Rutte spoke.” Then he left.\n\n“We will stay,” Rutte said."
    for text in (stray_opener, stray_closer):
        assert direct(text, **RUTTE) == [("We will stay,", "Mark Rutte", "said")]


def test_indirect_quote_is_the_reported_clause() -> None:
    text = (
        "Mark Rutte spoke in Brussels. Volodymyr Zelenskyy stated that granting NATO membership "
        "could end the war, and Rutte said on Sunday that the alliance would wait."
    )
    quotes = quotes_of(text, Volodymyr_Zelenskyy="Volodymyr Zelenskyy|PERSON", **RUTTE)
    assert [(q.text, q.speaker, q.cue, q.kind) for q in quotes] == [
        (
            "granting NATO membership could end the war, and Rutte said on Sunday that the "
            "alliance would wait",
            "Volodymyr Zelenskyy",
            "stated",
            INDIRECT,
        ),
        ("the alliance would wait", "Mark Rutte", "said", INDIRECT),
    ]


def test_that_after_a_parenthetical_cue_is_not_reported_speech() -> None:
    text = "The first step, he insisted, is to ensure that Ukraine can defend itself."
    assert quotes_of(text) == []


def test_offsets_point_at_the_quoted_words() -> None:
    text = "Mark Rutte said: “We will stand by Kyiv.” He left."
    (quote,) = quotes_of(text, **RUTTE)
    assert text[quote.start : quote.end] == quote.text


def test_a_name_the_ner_missed_next_to_the_cue_is_the_speaker() -> None:
    text = (
        "Kenji Takeda, the exchange’s president, said in an interview: “Boards must explain.”"
        "\n\n“This is not about share prices,” Takeda said."
    )
    assert [q.speaker for q in quotes_of(text)] == ["Kenji Takeda", "Kenji Takeda"]


_PIECES = [*"ab C.,:;“”\"'’ \n", "\u200b", "\u202e", "א", "и", " said", " that", "Rutte", "\ud800"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=80).map("".join))
def test_any_text_gives_quotes_with_offsets_inside_it(text: str) -> None:
    for quote in find_quotes(text, people(text, **RUTTE)):
        assert 0 <= quote.start <= quote.end <= len(text)
        assert text[quote.start : quote.end] == quote.text
        assert 0.0 <= quote.confidence <= 1.0
