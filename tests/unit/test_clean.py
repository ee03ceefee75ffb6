import pytest

from transforms.clean import (
    clean_body,
    clean_page,
    content_hash,
    count_words,
    is_boilerplate,
    normalize_line,
    split_byline,
    split_dateline,
)

SEED_HEADLINE = (
    "NATO leader sidesteps discussion on Ukraine’s membership, "
    "emphasizing support for Kyiv’s defense efforts."
)


def test_seed_page_headline_dateline_and_body(seed_page: bytes) -> None:
    page = clean_page(seed_page.decode())
    assert page.headline == SEED_HEADLINE
    assert page.dateline == "BRUSSELS"
    assert page.byline is None
    assert page.body.startswith("On Tuesday, NATO Secretary-General Mark Rutte")
    assert "Home World Live" not in page.body
    assert SEED_HEADLINE not in page.body
    assert "0" not in page.paragraphs
    assert page.paragraphs[-1].startswith("“Any agreement regarding Ukraine")
    assert len(page.paragraphs) == 12


@pytest.mark.parametrize(
    "line",
    [
        "Share",
        "Share this article",
        "Advertisement",
        "Read more",
        "Read more: Finland’s budget talks collapse",
        "0",
        "1,204 comments",
        "© 2024 Northwire News. All rights reserved.",
        "Copyright 2024 The Example Press. All rights reserved. This material may not be "
        "published, broadcast, rewritten or redistributed.",
        "Sign up for our free daily newsletter",
        "Updated 10:32 a.m. EST, Tue November 26, 2024",
        "Reporting by Jane Roe; Editing by John Doe",
        "Associated Press writer Jan Novak contributed to this report.",
    ],
)
def test_boilerplate_lines(line: str) -> None:
    assert is_boilerplate(normalize_line(line))


@pytest.mark.parametrize(
    "line",
    [
        "Ministers shared their concerns about the budget on Tuesday.",
        "Read the full statement, the ministry said, before judging it.",
        "Advertisement revenue fell 12 percent in the third quarter, the company said.",
        "Copyright lawyers said the ruling would change how songs are licensed.",
        "2024 was the hottest year on record, scientists said.",
    ],
)
def test_article_sentences_are_not_boilerplate(line: str) -> None:
    assert not is_boilerplate(line)


@pytest.mark.parametrize(
    ("line", "who"),
    [
        ("By Maria Lindqvist, Associated Press", "Maria Lindqvist, Associated Press"),
        ("By JANE ROE and John Doe | Reuters", "JANE ROE and John Doe | Reuters"),
        ("By Ciarán Ó Briain", "Ciarán Ó Briain"),
        ("By Tuesday, the ministers had agreed to a plan.", None),
        ("By contrast, prices rose.", None),
        ("By Anna van der Berg, Lowlands Press Agency", "Anna van der Berg, Lowlands Press Agency"),
        ("By 2030, Europe wants 20 percent.", None),
    ],
)
def test_bylines(line: str, who: str | None) -> None:
    assert split_byline(line) == who


@pytest.mark.parametrize(
    ("paragraph", "place", "rest"),
    [
        ("BRUSSELS — On Tuesday, NATO said.", "BRUSSELS", "On Tuesday, NATO said."),
        ("KYIV, Ukraine (AP) — Drones hit.", "KYIV, Ukraine", "Drones hit."),
        ("LONDON, Nov 28 (Reuters) - Shares fell.", "LONDON", "Shares fell."),
        ("THE HAGUE, Netherlands – A court ruled.", "THE HAGUE, Netherlands", "A court ruled."),
        ("ST. LOUIS -- Flooding closed roads.", "ST. LOUIS", "Flooding closed roads."),
        ("On Tuesday, NATO said — quietly — no.", None, "On Tuesday, NATO said — quietly — no."),
        (
            "NATO’s foundation rests on a principle.",
            None,
            "NATO’s foundation rests on a principle.",
        ),
    ],
)
def test_datelines(paragraph: str, place: str | None, rest: str) -> None:
    assert split_dateline(paragraph) == (place, rest)


def test_page_without_repeated_headline_takes_the_first_line() -> None:
    page = clean_page(
        "Storm closes ports along the coast\n\nBy Jane Roe, Example Wire\n\n"
        "Advertisement\n\nOSLO — A storm closed ports on Monday.\n\nFerries were cancelled.\n"
    )
    assert page.headline == "Storm closes ports along the coast"
    assert page.byline == "Jane Roe, Example Wire"
    assert page.dateline == "OSLO"
    assert page.paragraphs == ("A storm closed ports on Monday.", "Ferries were cancelled.")


def test_page_that_starts_with_a_paragraph_has_no_headline() -> None:
    paragraph = "A storm closed ports along the coast on Monday, " * 10
    page = clean_page(paragraph + "\n\nFerries were cancelled.")
    assert page.headline is None
    assert page.paragraphs[0] == paragraph.strip()


def test_body_drops_a_repeated_headline_and_keeps_the_given_one() -> None:
    body = clean_body(
        "Storm closes ports\n\nOSLO (Example) — A storm closed ports.\n\nShare\n\nFerries stopped.",
        headline="Storm closes ports",
    )
    assert body.headline == "Storm closes ports"
    assert body.dateline == "OSLO"
    assert body.body == "A storm closed ports.\n\nFerries stopped."


def test_invisible_characters_and_odd_spaces_are_normalised() -> None:
    assert normalize_line("  Sha\u200bre \u00a0 ") == "Share"
    assert normalize_line("Ministers\u2003met\tat  noon") == "Ministers met at noon"


def test_content_hash_ignores_layout_quotes_and_case() -> None:
    a = "“The plan works,” she said.\n\nPrices — rose."
    b = '"the plan works," SHE said.   prices - rose.'
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(a + " Again.")


def test_word_count() -> None:
    assert count_words("The U.S. and Kyiv’s well-known allies met 32 times.") == 9
    assert count_words("") == 0
