"""Quotations in wire copy, and who said them.

A pure core over the body text and its entity mentions, so the rules are tested
without a model, and a registered spaCy component (``wirenews_quotes``) that runs
it over a parsed doc:

- quote marks are paired per paragraph (curly and straight; odd ones survive); a
  paragraph that opens a quote without closing it runs to its end;
- single words, scare quotes (``so-called “green corridor”``, ``a “just transition”
  package``, a passive ``described as the “mortgage cliff”``), titles of works and
  nicknames are not quotations;
- the cue is the reporting verb next to the quote (``,” Rutte said.``, ``said
  Rutte``, ``Rutte said: “``, ``He said:`` ending the paragraph before, ``according
  to the ministry, “``); the speaker is the person or organisation it names, a
  pronoun or definite noun (``the ministry``) resolved to the subject named
  before, or unknown (``one passenger``) rather than a guess;
- a quote with no cue of its own continues the previous speaker; one inside
  reported speech (``called the plan “deeply reckless”``) is ``partial``;
- reported speech with "that" (``Zelenskyy stated that …``) is an ``indirect``
  quote whose text is the reported clause.

Small NER models miss names, so names right next to a reporting verb and later
surnames of people already named count as mentions too.

Example:
    quotes = find_quotes(body, [Mention(0, 10, "Mark Rutte", "PERSON")])
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from spacy.language import Language
from spacy.tokens import Doc, Span

from transforms.records import Quote

__all__ = [
    "DIRECT",
    "INDIRECT",
    "PARTIAL",
    "Mention",
    "QuoteComponent",
    "find_quotes",
    "mentions_of",
]

DIRECT = "direct"
PARTIAL = "partial"
INDIRECT = "indirect"


def _vocabulary(words: str) -> frozenset[str]:
    return frozenset(words.split())


# Reporting verbs, lemma: forms. Verbs of speech introduce direct quotes and "that" clauses.
_SPEECH = {
    "say": "say says said saying",
    "tell": "tell tells told telling",
    "add": "add adds added adding",
    "note": "note notes noted noting",
    "remark": "remark remarks remarked",
    "reply": "reply replies replied",
    "ask": "ask asks asked",
    "warn": "warn warns warned warning",
    "explain": "explain explains explained explaining",
    "write": "write writes wrote writing",
    "state": "states stated stating",
    "insist": "insist insists insisted insisting",
    "argue": "argue argues argued arguing",
    "continue": "continued",
    "declare": "declare declares declared declaring",
    "announce": "announce announces announced announcing",
    "acknowledge": "acknowledge acknowledges acknowledged acknowledging",
    "admit": "admit admits admitted admitting",
    "concede": "concede concedes conceded conceding",
    "caution": "caution cautions cautioned cautioning",
    "urge": "urged",
    "recall": "recall recalls recalled recalling",
    "complain": "complain complains complained complaining",
    "suggest": "suggest suggests suggested suggesting",
    "stress": "stress stresses stressed stressing",
    "emphasise": "emphasise emphasises emphasised emphasize emphasizes emphasized",
    "observe": "observe observes observed",
    "conclude": "concluded",
    "respond": "respond responds responded",
    "counter": "countered",
    "predict": "predict predicts predicted predicting",
    "promise": "promise promises promised promising",
    "vow": "vow vows vowed vowing",
    "maintain": "maintain maintains maintained",
    "claim": "claim claims claimed claiming",
    "confirm": "confirm confirms confirmed confirming",
    "deny": "deny denies denied",
    "agree": "agreed",
    "tweet": "tweet tweets tweeted",
    "post": "posted",
    "comment": "comment comments commented",
    "quip": "quip quips quipped",
    "joke": "joked",
    "shout": "shout shouts shouted",
    "recount": "recount recounts recounted",
    "lament": "lament laments lamented",
    "reiterate": "reiterate reiterates reiterated",
    "underline": "underline underlines underlined",
    "affirm": "affirm affirms affirmed",
    "assure": "assure assures assured",
    "testify": "testify testifies testified",
    "rule": "rule rules ruled",
    "hint": "hint hints hinted",
    "signal": "signal signals signaled signalled",
    "report": "report reports reported",
    "believe": "believes believed",
    "think": "thinks",
    "estimate": "estimated",
    "point": "pointed",
}
# Verbs that frame a partial quote (``called the plan “…”``) without introducing speech.
_FRAMING = {
    "describe": "describe describes described describing",
    "call": "call calls called calling",
    "accuse": "accuse accuses accused accusing",
    "criticise": "criticise criticises criticised criticize criticizes criticized criticising",
    "dismiss": "dismiss dismisses dismissed dismissing",
    "condemn": "condemn condemns condemned",
    "praise": "praise praises praised",
    "hail": "hail hails hailed",
    "brand": "branded",
    "welcome": "welcomed",
}
_CUES = {form: lemma for table in (_SPEECH, _FRAMING) for lemma, forms in table.items()
         for form in forms.split()}  # fmt: skip
_SPEECH_FORMS = frozenset(form for forms in _SPEECH.values() for form in forms.split())
# Speech verbs whose "that" is not reported speech ("asked that", "pointed out that" is rare).
_NOT_THAT = _vocabulary("ask continue post quip joke shout point")

# A word right before the marks that makes the quote a name or a title.
_NAMING = _vocabulary(
    "so-called dubbed titled entitled named nicknamed called termed coined headlined slogan motto"
)
_PRONOUNS = {"he": "PERSON", "she": "PERSON", "it": "ORG"}
# Nouns that stand for an organisation when definite ("the ministry said").
_ORG_NOUNS = _vocabulary(
    "ministry federation company bank union agency government council commission court committee "
    "group party department office organisation organization police army military club firm "
    "board authority regulator exchange society alliance association airline carrier insurer "
    "lender bloc team side institute fund programme program service secretariat parliament "
    "senate assembly cabinet presidency kremlin embassy mission foundation charity network "
    "broadcaster newspaper coalition campaign watchdog operator manufacturer maker producer "
    "tribunal prosecutors"
)
_ORG_WORDS = frozenset(noun.capitalize() for noun in _ORG_NOUNS)
# First words of an adverbial phrase, not a subject: "In Lilongwe, Banda said".
_ADVERBIAL = _vocabulary(
    "in at on after before during speaking asked for with from since when while following "
    "despite addressing earlier later last outside inside by under but and writing as then "
    "meanwhile however still yet also separately elsewhere today yesterday"
)
# Capitalised words of a title before a name: "Chief Executive Thabo Nkosi".
_TITLE_WORDS = _vocabulary(
    "the chief executive president prime minister secretary general director governor mayor "
    "senator judge justice commissioner chairman chairwoman chair coach captain ambassador envoy "
    "spokesman spokeswoman spokesperson dr mr mrs ms sir dame lord lady king queen prince "
    "princess foreign finance health defence defense interior deputy vice former acting interim "
    "head leader officer"
)
# Words that may follow a partial quote without making it a modifier ("a “just transition” fund").
_JOINING = _vocabulary(
    "and but or to in on at for from as after before when while because that which who if than "
    "since until by with over about during despite unless so nor yet where"
)
_BE = _vocabulary("is was are were be been being")
# Full stops after these do not end a sentence.
_ABBREVIATIONS = _vocabulary(
    "mr mrs ms dr st gen lt col sen rep gov jr sr inc corp co ltd no vs prof capt adm sgt maj mt "
    "ft jan feb aug sept oct nov dec u.s u.k u.n e.u a.m p.m"
)

_SPEAKER_LABELS = frozenset({"PERSON", "ORG"})
_OPENERS = frozenset("“«„")
_CLOSERS = frozenset("”»")
_STRAIGHT = '"'
_OPEN_CONTEXT = frozenset(" \t\n([{—–-/")
_TERMINAL = frozenset(".?!")
_MARK = re.compile(r"[“”«»„\"]")
_WORD = re.compile(r"(?:[A-Za-z]\.){2,}|[\w’'-]+|[^\w\s]")
_PLAIN_WORD = re.compile(r"[\w’'-]+")
_MIN_WORDS = 2  # a single quoted word is a term, not a quotation
_MIN_CLAUSE_WORDS = 3
_MAX_TITLE_WORDS = 8
_CUE_REACH = 25  # words from the closing mark to its cue: ``,” X, <apposition>, said``
_THAT_REACH = 9  # words from a reporting verb to its "that": ``said on Sunday that``
_NAME_RUN = r"(?:[A-Z][\w’'-]*\.?\s+){0,4}[A-Z][\w’'-]+"
_LOWER_WORD = re.compile(r"\b[a-z]+\b")
_NAME_BEFORE_VERB = re.compile(rf"(?<![\w’'-])({_NAME_RUN})(?:,[^,.“”\"]{{1,90}},)?\s+$")
_NAME_AFTER_VERB = re.compile(rf",?\s+({_NAME_RUN})")


@dataclass(frozen=True)
class Mention:
    """An entity mention in the text, under its canonical name."""

    start: int
    end: int
    name: str
    label: str


@dataclass(frozen=True)
class _Marked:
    """Words between a pair of quote marks (``end`` is the closing mark's offset)."""

    start: int
    end: int
    closed: bool


@dataclass(frozen=True)
class _Word:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()


@dataclass(frozen=True)
class _Speaker:
    name: str | None
    label: str | None
    confidence: float


_UNKNOWN = _Speaker(None, None, 0.5)


# --- marks, paragraphs and sentences --------------------------------------------------------------


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph: blocks separated by blank lines."""
    bounds, start = [], 0
    for separator in re.finditer(r"\n[ \t]*\n\s*", text):
        bounds.append((start, separator.start()))
        start = separator.end()
    bounds.append((start, len(text)))
    return [(s, e) for s, e in bounds if text[s:e].strip()]


def _marks(text: str, start: int, end: int) -> list[tuple[int, bool]]:
    """Double quote marks in ``text[start:end]``, each with whether it opens.

    A straight mark opens after a space or bracket and before a non-space.
    """
    marks = []
    for match in _MARK.finditer(text, start, end):
        position, char = match.start(), match.group()
        if char != _STRAIGHT:
            marks.append((position, char in _OPENERS))
            continue
        before = text[position - 1] if position > start else " "
        after = text[position + 1] if position + 1 < end else " "
        marks.append(
            (position, (before in _OPEN_CONTEXT or before in _OPENERS) and not after.isspace())
        )
    return marks


def _marked_spans(text: str, paragraphs: Sequence[tuple[int, int]]) -> list[_Marked]:
    """Pair quote marks paragraph by paragraph.

    A stray closer is ignored; an unclosed opener runs to the next opener or the
    paragraph's end.
    """
    spans: list[_Marked] = []
    for start, end in paragraphs:
        opened: int | None = None
        for position, opening in _marks(text, start, end):
            if opening:
                if opened is not None and text[opened:position].strip():
                    spans.append(_trimmed(text, opened, position, closed=False))
                opened = position + 1
            elif opened is not None:
                spans.append(_trimmed(text, opened, position, closed=True))
                opened = None
        if opened is not None and text[opened:end].strip():
            spans.append(_trimmed(text, opened, end, closed=False))
    return spans


def _trimmed(text: str, start: int, end: int, *, closed: bool) -> _Marked:
    inner = text[start:end]
    left = len(inner) - len(inner.lstrip())
    right = len(inner) - len(inner.rstrip())
    return _Marked(start + left, end - right, closed)


def _words(text: str, start: int, end: int) -> list[_Word]:
    return [
        _Word(m.group(), m.start(), m.end()) for m in _WORD.finditer(text, start, max(start, end))
    ]


def _word_count(text: str) -> int:
    return sum(1 for word in _PLAIN_WORD.findall(text) if any(c.isalpha() for c in word))


def _within(ranges: Sequence[tuple[int, int]], position: int) -> bool:
    return any(start <= position < end for start, end in ranges)


class _Sentences:
    """Sentence boundaries, blind to full stops inside quotation marks and abbreviations."""

    _END = re.compile(r"[.?!]+[”\"’')\]]*\s+(?=[“\"«(\[]?[A-Z0-9])")

    def __init__(
        self, text: str, paragraphs: Sequence[tuple[int, int]], marked: Sequence[_Marked]
    ) -> None:
        inside = [(span.start, span.end) for span in marked]
        starts = set()
        for start, end in paragraphs:
            starts.add(start)
            for match in self._END.finditer(text, start, end):
                if not _within(inside, match.start()) and not _abbreviation(text, match.start()):
                    starts.add(match.end())
        for span in marked:  # “… today.” He said → a new sentence after the closing mark
            if span.closed and text[span.end - 1 : span.end] in _TERMINAL:
                following = re.match(r"\s*(?=[A-Z“\"])", text[span.end + 1 :])
                if following:
                    starts.add(span.end + 1 + following.end())
        self._starts = sorted(starts)
        self._paragraphs = list(paragraphs)
        self._length = len(text)

    def bounds(self, position: int) -> tuple[int, int]:
        """(start, end) of the sentence holding ``position``, within its paragraph."""
        index = max(bisect.bisect_right(self._starts, position) - 1, 0)
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else self._length
        for p_start, p_end in self._paragraphs:
            if p_start <= position <= p_end:
                return max(start, p_start), min(end, p_end)
        return start, end


def _abbreviation(text: str, stop: int) -> bool:
    """Whether the full stop at ``stop`` ends an abbreviation or an initial, not a sentence."""
    if text[stop] != ".":
        return False
    word = re.search(r"[\w.]+$", text[max(0, stop - 12) : stop])
    token = word.group().lower().rstrip(".") if word else ""
    return token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha())


# --- mentions -------------------------------------------------------------------------------------


def _speakers_by_cues(text: str, mentions: Sequence[Mention]) -> list[Mention]:
    """Names right before or after a speech verb that the NER missed or mislabelled.

    ``Kenji Takeda, the exchange’s president, said`` names a speaker whether or not
    the model tagged ``Kenji Takeda``; a mention there with another label (``The Law
    Society of Kenya`` as a WORK_OF_ART) is a speaker too, unless it is a place.
    """
    found = []
    for verb in _LOWER_WORD.finditer(text):
        if verb.group() not in _SPEECH_FORMS:
            continue
        window = max(0, verb.start() - 150)
        before = _NAME_BEFORE_VERB.search(text, window, verb.start())
        after = _NAME_AFTER_VERB.match(text, verb.end(), verb.end() + 80)
        for match in (before, after):
            if match is None:
                continue
            start, end = match.span(1)
            if any(
                m.start < end and start < m.end and (m.label in _SPEAKER_LABELS or m.label == "GPE")
                for m in mentions
            ):
                continue
            words = match.group(1).split()
            while words and words[0].lower().rstrip(".") in _TITLE_WORDS:
                words.pop(0)
            if len(words) < 2:  # noqa: PLR2004 - a lone capitalised word is too weak a name
                continue
            name = " ".join(words)
            name_start = text.index(name, start) if name in text[start:end] else start
            label = "ORG" if _ORG_WORDS & set(words) else "PERSON"
            found.append(Mention(name_start, name_start + len(name), name, label))
    return found


def _repeated_names(text: str, mentions: Sequence[Mention]) -> list[Mention]:
    """Names the NER did not tag everywhere: a person's surname or a name, written again.

    Small models find ``Owen Pritchard`` but often not the ``Pritchard`` who speaks
    three paragraphs later. A surname shared by two people is left alone.
    """
    aliases: dict[str, tuple[str, str]] = {}
    surnames: dict[str, set[tuple[str, str]]] = {}
    for mention in mentions:
        if mention.label not in _SPEAKER_LABELS:
            continue
        key = (mention.name, mention.label)
        aliases[text[mention.start : mention.end]] = key
        aliases[mention.name] = key
        parts = mention.name.split()
        if mention.label == "PERSON" and len(parts) > 1:
            surnames.setdefault(parts[-1], set()).add(key)
    aliases.update({word: owners.pop() for word, owners in surnames.items() if len(owners) == 1})
    if not aliases:
        return []
    tagged = [(m.start, m.end) for m in mentions]
    found = []
    for alias, (name, label) in sorted(aliases.items(), key=lambda item: -len(item[0])):
        position = text.find(alias)
        while position >= 0:
            end = position + len(alias)
            whole_word = (position == 0 or not text[position - 1].isalnum()) and (
                end == len(text) or not text[end].isalnum()
            )
            if whole_word and not any(s < end and position < e for s, e in tagged):
                found.append(Mention(position, end, name, label))
                tagged.append((position, end))
            position = text.find(alias, end)
    return found


def _speaker_mentions(
    text: str, mentions: Sequence[Mention], marked: Sequence[_Marked]
) -> list[Mention]:
    """People and organisations named outside quotation marks, in order."""
    named = [*mentions, *_speakers_by_cues(text, mentions)]
    quoted = [(span.start, span.end) for span in marked]
    return sorted(
        (
            m
            for m in [*named, *_repeated_names(text, named)]
            if m.label in _SPEAKER_LABELS and not _within(quoted, m.start)
        ),
        key=lambda m: m.start,
    )


# --- speakers -------------------------------------------------------------------------------------


class _Attributor:
    """Resolves who speaks in a stretch of text: a name, a pronoun's antecedent or nobody."""

    def __init__(self, text: str, mentions: Sequence[Mention], sentences: _Sentences) -> None:
        self._text = text
        self._mentions = list(mentions)
        self._starts = [m.start for m in self._mentions]
        self._sentences = sentences
        self.speakers: list[tuple[int, _Speaker]] = []  # (position, speaker) as attributed so far

    def mentions_in(self, start: int, end: int) -> list[Mention]:
        """Mentions inside ``text[start:end]``, less possessors (``Okafor's coach``)."""
        low = bisect.bisect_left(self._starts, start)
        high = bisect.bisect_left(self._starts, end)
        return [m for m in self._mentions[low:high] if m.end <= end and not self._possessor(m)]

    def _possessor(self, mention: Mention) -> bool:
        following = self._text[mention.end : mention.end + 2]
        return following in {"'s", "’s"} or (
            following[:1] in {"'", "’"} and mention.name.endswith("s")
        )

    def subject(self, start: int, end: int, *, before_verb: bool = True) -> _Speaker | None:
        """The speaker named in ``text[start:end]``, or None when it names none.

        A name in a clause coordinated right before the verb is its subject
        (``…, and Rutte said``). Otherwise the clause is read in comma-separated segments, skipping
        adverbial ones (``In Lilongwe,``): the first segment naming someone gives
        the speaker, a person before an organisation (``Economist Radhika Menon of
        Kaveri Research``), so appositions (``Whitmore, visiting a camp near
        Adré,``) do not steal it. Failing a name: a pronoun (the last one before a
        verb, else the first), then a definite noun (``the ministry``).
        """
        if before_verb:
            adjacent = [
                m for m in self.mentions_in(start, end) if not self._text[m.end : end].strip()
            ]
            if adjacent:
                return _Speaker(adjacent[-1].name, adjacent[-1].label, 0.9)
        for segment in re.finditer(r"[^,;()—–]+", self._text[start:end]):
            words = _PLAIN_WORD.findall(segment.group())
            if not words or words[0].lower() in _ADVERBIAL:
                continue
            found = self.mentions_in(start + segment.start(), start + segment.end())
            for label in ("PERSON", "ORG"):
                chosen = next((m for m in found if m.label == label), None)
                if chosen is not None:
                    return _Speaker(chosen.name, chosen.label, 0.9)
        words = _words(self._text, start, end)
        pronouns = [w for w in words if w.lower in _PRONOUNS]
        if pronouns:
            pronoun = pronouns[-1] if before_verb else pronouns[0]
            return self.antecedent(pronoun.start, _PRONOUNS[pronoun.lower])
        for before, word in itertools.pairwise(words):
            if word.lower in _ORG_NOUNS and before.lower in {"the", "its", "their"}:
                return self.organisation(word.start, word.lower)
        if any(w.lower == "its" for w in words):  # "its envoy described": the organisation's voice
            return self.antecedent(words[0].start, "ORG")
        return None

    def antecedent(self, position: int, label: str) -> _Speaker:
        """Who was last in view: the last speaker, unless a later sentence names someone else.

        From a sentence, the first person (or organisation) named: its subject.
        """
        before = [m for m in self.mentions_in(0, position) if m.label == label]
        speaker_at, speaker = next(
            ((at, s) for at, s in reversed(self.speakers) if at < position and s.label == label),
            (-1, None),
        )
        if before:
            sentence_start, _end = self._sentences.bounds(before[-1].start)
            if sentence_start > speaker_at:
                chosen = next(m for m in before if m.start >= sentence_start)
                return _Speaker(chosen.name, chosen.label, 0.75)
        if speaker is not None:
            return _Speaker(speaker.name, speaker.label, 0.8)
        return _UNKNOWN

    def organisation(self, position: int, noun: str) -> _Speaker:
        """``the ministry``: the last organisation named whose name holds the noun.

        Else the organisation last in view.
        """
        for mention in reversed(self.mentions_in(0, position)):
            if mention.label == "ORG" and noun in mention.name.lower():
                return _Speaker(mention.name, mention.label, 0.8)
        return self.antecedent(position, "ORG")


# --- quotations -----------------------------------------------------------------------------------


def find_quotes(text: str, mentions: Iterable[Mention]) -> list[Quote]:
    """The quotations in ``text`` with their speakers, in order of appearance."""
    return _QuoteFinder(text, list(mentions)).quotes()


class _QuoteFinder:
    """One text's quotations: direct and partial ones between marks, indirect ones after "that"."""

    def __init__(self, text: str, mentions: Sequence[Mention]) -> None:
        self.text = text
        paragraphs = _paragraphs(text)
        self.marked = _marked_spans(text, paragraphs)
        self.sentences = _Sentences(text, paragraphs, self.marked)
        speakers = _speaker_mentions(text, mentions, self.marked)
        self.attributor = _Attributor(text, speakers, self.sentences)

    def quotes(self) -> list[Quote]:
        indirect = self._indirect()
        direct: list[Quote] = []
        for index, span in enumerate(self.marked):
            earlier = [q for q in (*direct, *indirect) if q.start < span.start]
            quote = self._direct(index, max(earlier, key=lambda q: q.start, default=None))
            if quote is None:
                continue
            if quote.speaker is not None:
                speaker = _Speaker(quote.speaker, quote.speaker_label, quote.confidence)
                self.attributor.speakers.append((span.start, speaker))
            direct.append(quote)
        return sorted([*direct, *indirect], key=lambda q: (q.start, q.kind))

    # direct and partial quotes

    def _direct(self, index: int, previous: Quote | None) -> Quote | None:
        text, span = self.text, self.marked[index]
        if _not_a_quotation(text, span):
            return None
        sentence_start, sentence_end = self.sentences.bounds(span.start)
        lead_end = span.start - 1  # the opening mark
        lead_text = text[sentence_start:lead_end].rstrip()
        lead = (
            self._outside_quotes(sentence_start, lead_end)
            if lead_text
            else self._introduction(sentence_start)
        )
        embedded = bool(lead_text) and lead_text[-1] not in ':,—–”"'
        inside = text[span.start : span.end]
        starts_sentence = inside[:1].isupper() and lead_text[-1:] in {":", ","}
        kind = PARTIAL if embedded and not starts_sentence else DIRECT
        tail_end = sentence_end
        if index + 1 < len(self.marked):
            tail_end = min(tail_end, self.marked[index + 1].start - 1)
        tail = _words(text, span.end + 1 if span.closed else span.end, tail_end)
        readers = (
            ((self._from_lead, lead), (self._from_tail, tail))
            if kind == PARTIAL
            else ((self._from_tail, tail), (self._from_lead, lead))
        )
        speaker, cue = None, None
        for reader, frame in readers:
            speaker, cue = reader(frame)
            if cue is not None:
                break
        if kind == PARTIAL and (cue is None or _modifier(text, span)):
            return None  # a multi-word scare quote: nobody is said to have said it
        if cue is None and speaker is None and previous is not None:
            speaker = self._continued(span, previous)
        return Quote(
            text=inside,
            start=span.start,
            end=span.end,
            speaker=speaker.name if speaker else None,
            speaker_label=speaker.label if speaker and speaker.name else None,
            cue=cue,
            kind=kind,
            confidence=_confidence(speaker, cue, kind),
        )

    def _outside_quotes(self, start: int, end: int) -> list[_Word]:
        return [
            word
            for word in _words(self.text, start, end)
            if not any(span.start - 1 <= word.start <= span.end for span in self.marked)
        ]

    def _introduction(self, paragraph_start: int) -> list[_Word]:
        """The sentence ending the paragraph before, when it ends in a colon (``He said:``)."""
        before = self.text[:paragraph_start].rstrip()
        if not before.endswith(":"):
            return []
        start, _end = self.sentences.bounds(len(before) - 1)
        return self._outside_quotes(start, len(before))

    def _from_tail(self, tail: Sequence[_Word]) -> tuple[_Speaker | None, str | None]:
        """``,” Rutte said`` / ``,” said Rutte, the …`` / ``,” the ministry said``."""
        first = next((i for i, word in enumerate(tail) if word.text[:1].isalnum()), len(tail))
        verb = next((i for i, w in enumerate(tail[:_CUE_REACH]) if w.lower in _SPEECH_FORMS), None)
        if verb is None:
            return None, None
        cue = tail[verb].lower
        if verb == first:  # inverted: said Rutte, said one passenger
            clause_end = _clause_end(tail, verb + 1)
            speaker = self.attributor.subject(tail[verb].end, clause_end, before_verb=False)
            return speaker or _UNKNOWN, cue
        if all(w.lower in {"and", "but", "then", ","} for w in tail[first:verb]):
            return None, None  # ``“…” and said``: the sentence's subject speaks, from the lead
        speaker = self.attributor.subject(tail[0].start, tail[verb].start)
        return speaker or _UNKNOWN, cue

    def _from_lead(self, lead: Sequence[_Word]) -> tuple[_Speaker | None, str | None]:
        """``Rutte said: “`` / ``according to the ministry, “`` / ``called the plan “``."""
        lowered = [w.lower for w in lead]
        for i in range(len(lowered) - 1):
            if lowered[i] == "according" and lowered[i + 1] == "to":
                clause_end = _clause_end(lead, i + 2)
                speaker = self.attributor.subject(lead[i + 1].end, clause_end, before_verb=False)
                return speaker or _UNKNOWN, "according to"
        cues = [i for i, word in enumerate(lowered) if word in _CUES]
        if not cues:
            if lead and self.text[lead[-1].end :].lstrip().startswith(":"):
                # an introduction without a verb of speech: "Ortiz struck a softer tone:"
                return self.attributor.subject(lead[0].start, lead[-1].end), None
            return None, None
        verb = cues[-1]
        if _passive(lowered, verb):
            return None, None
        speaker = self.attributor.subject(lead[0].start, lead[verb].start)
        return speaker or _UNKNOWN, lowered[verb]

    def _continued(self, span: _Marked, previous: Quote) -> _Speaker:
        """A quote with no cue continues the speaker just before, in this paragraph or the last."""
        between = self.text[previous.end : span.start]
        if previous.speaker is None or between.count("\n\n") > 1:
            return _UNKNOWN
        confidence = 0.65 if "\n\n" in between else 0.75
        return _Speaker(previous.speaker, previous.speaker_label, confidence)

    # indirect quotes

    def _indirect(self) -> list[Quote]:
        """``X said that <clause>``: the clause, attributed to the verb's subject."""
        text = self.text
        quoted = [(span.start - 1, span.end + 1) for span in self.marked]
        found = []
        for match in re.finditer(r"\bthat\b", text):
            if _within(quoted, match.start()):
                continue
            sentence_start, sentence_end = self.sentences.bounds(match.start())
            before = _words(text, sentence_start, match.start())
            verb = _reporting_verb(before)
            if verb is None:
                continue
            clause_end = _clause_stop(text, match.end(), sentence_end)
            clause = text[match.end() : clause_end].strip()
            if _word_count(clause) < _MIN_CLAUSE_WORDS:
                continue
            if any(match.end() <= start < clause_end for start, _end in quoted):
                continue  # the marks hold the quotation: ``declaring that it was “…”``
            speaker = self.attributor.subject(sentence_start, before[verb].start) or _UNKNOWN
            start = text.index(clause, match.end())
            found.append(
                Quote(
                    text=clause,
                    start=start,
                    end=start + len(clause),
                    speaker=speaker.name,
                    speaker_label=speaker.label if speaker.name else None,
                    cue=before[verb].lower,
                    kind=INDIRECT,
                    confidence=round(min(0.9, speaker.confidence), 2) if speaker.name else 0.5,
                )
            )
        return found


def _reporting_verb(words: Sequence[_Word]) -> int | None:
    """Index of the speech verb a "that" right after ``words`` reports, if any."""
    for i in range(len(words) - 1, max(-1, len(words) - 1 - _THAT_REACH), -1):
        word = words[i]
        if word.text in {".", ",", ";", ":", "“", "”", '"'}:
            return None  # ``the step, he insisted, is to ensure that``: not what was reported
        if word.lower in _SPEECH_FORMS and _CUES[word.lower] not in _NOT_THAT:
            return i
    return None


def _not_a_quotation(text: str, span: _Marked) -> bool:
    """Single words, names after naming words, titles of works and nicknames."""
    inside = text[span.start : span.end]
    if _word_count(inside) < _MIN_WORDS:
        return True
    before = _PLAIN_WORD.findall(text[max(0, span.start - 30) : span.start - 1])
    if before and before[-1].lower() in _NAMING:
        return True
    if " ".join(before[-2:]).lower() in {"known as", "the term"}:
        return True
    ends_like_speech = inside[-1:] in _TERMINAL | {","}
    after = text[span.end + 1 : span.end + 30] if span.closed else ""
    if (
        before
        and before[-1][:1].isupper()
        and text[span.start - 2 : span.start - 1].isalpha()
        and re.match(r"\s*[A-Z]\w", after)
        and not ends_like_speech
    ):
        return True  # a nickname between first name and surname: Paolo “The Wall” Bianchi
    words = _PLAIN_WORD.findall(inside)
    long_words = [w for w in words if len(w) > 3]  # noqa: PLR2004
    preceding = text[: span.start - 1].rstrip()
    at_sentence_start = not preceding or preceding[-1] in _TERMINAL | set('\n”"')
    return (
        inside[-1:] not in _TERMINAL  # “Between the Posts,” may keep a comma inside
        and len(words) <= _MAX_TITLE_WORDS
        and bool(long_words)
        and all(w[:1].isupper() for w in long_words)
        and not at_sentence_start
    )  # a title: “Charting the Course”


def _modifier(text: str, span: _Marked) -> bool:
    """``a “just transition” package``: quoted words used as a modifier are a scare quote."""
    if not span.closed or text[span.end - 1] in _TERMINAL | {",", ";", ":"}:
        return False
    following = re.match(r"[ \t]+([\w’'-]+)", text[span.end + 1 : span.end + 40])
    return following is not None and following.group(1).lower() not in _JOINING


def _passive(lowered: Sequence[str], verb: int) -> bool:
    """``a wave often described as``, ``was called``: a passive verb names no speaker."""
    if verb == 0 or not lowered[verb].endswith("ed"):
        return False
    previous = lowered[verb - 1]
    return previous in _BE or previous.endswith("ly") or previous in {"often", "also", "once"}


def _clause_end(words: Sequence[_Word], start: int) -> int:
    """End offset of the clause starting at ``words[start]``: a comma, or the end."""
    for word in words[start:]:
        if word.text in {",", ";", "."}:
            return word.start
    return words[-1].end if words else 0


def _clause_stop(text: str, start: int, sentence_end: int) -> int:
    """Where a reported clause ends: a semicolon, else the sentence's end less its full stop."""
    stop = re.search(r";|[.?!][”\"’')]*\s*$", text[start:sentence_end])
    return start + stop.start() if stop else sentence_end


def _confidence(speaker: _Speaker | None, cue: str | None, kind: str) -> float:
    """Lower without a cue of its own, for partial quotes, and for an unknown speaker."""
    base = (0.95 if cue is not None else 0.7) - (0.1 if kind == PARTIAL else 0.0)
    if speaker is None or speaker.name is None:
        return round(base * 0.8, 2)
    return round(min(base, speaker.confidence + 0.05), 2)


# --- spaCy ----------------------------------------------------------------------------------------


def mentions_of(doc: Doc) -> list[Mention]:
    """The doc's entities as mentions, under ``span._.canonical`` when it is set."""
    canonical = Span.has_extension("canonical")
    return [
        Mention(
            e.start_char, e.end_char, (e._.canonical if canonical else None) or e.text, e.label_
        )
        for e in doc.ents
    ]


class QuoteComponent:
    """Sets ``doc._.quotes`` (a tuple of :class:`Quote`) from the doc's text and entities."""

    def __init__(self) -> None:
        if not Doc.has_extension("quotes"):
            Doc.set_extension("quotes", default=())

    def __call__(self, doc: Doc) -> Doc:
        """Find the doc's quotations; offsets point into ``doc.text``."""
        doc._.quotes = tuple(find_quotes(doc.text, mentions_of(doc)))
        return doc


@Language.factory("wirenews_quotes")
def make_quote_component(nlp: Language, name: str) -> QuoteComponent:
    """The ``wirenews_quotes`` component; add it after the NER and the canonical names."""
    return QuoteComponent()
