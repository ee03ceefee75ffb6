"""Deduplication as a Beam step: exact copies and republished wire stories.

Each article fans out to its LSH band keys (and its exact content hash); each
band bucket names its original (the earliest published, then the smallest id,
so the result does not depend on input order) as the candidate for the others;
candidates are verified with exact similarities (:func:`transforms.similarity.compare`)
by joining the two fingerprints; each article then takes the earliest verified
original. No key ever sees every article: buckets hold the articles that share
a band, fingerprints are joined per article.

Example:
    deduped = articles | DeduplicateArticles(keep=False)
    deduped[DeduplicateArticles.ARTICLES], deduped[DeduplicateArticles.DUPLICATES]
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.coders import BooleanCoder, PickleCoder, StrUtf8Coder, TupleCoder, VarIntCoder
from apache_beam.metrics import Metrics
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import (
    BagStateSpec,
    TimerSpec,
    on_timer,
)
from apache_beam.transforms.window import GlobalWindows, IntervalWindow, SlidingWindows
from apache_beam.utils.timestamp import Duration, Timestamp

from transforms.metrics import NAMESPACE, StepMetrics
from transforms.records import Article, Dedup, Duplicate
from transforms.similarity import Fingerprint, band_keys, compare, fingerprint, original_first

__all__ = [
    "FINGERPRINTS",
    "DeduplicateArticles",
    "DeduplicateStream",
    "Match",
    "as_duplicate",
    "bucket_candidates",
    "choose_original",
    "find_originals",
    "mark",
    "order_of",
]


class Match(NamedTuple):
    """A verified comparison of an article with a candidate original."""

    original_key: str
    original: Fingerprint | None  # None: it had expired (streaming), so not a duplicate
    duplicate: bool
    similarity: float
    method: str


Order = tuple[Any, ...]


def order_of(key: str, print_: Fingerprint) -> Order:
    """Earliest published, then smallest id; the record key breaks ties between copies of an id."""
    return (*original_first(print_), key)


def bucket_candidates(members: Iterable[tuple[str, Order]]) -> Iterator[tuple[str, str]]:
    """In one band bucket: ``(member key, original key)`` for every member but the original."""
    ordered = sorted(members, key=lambda member: member[1])
    first_key = ordered[0][0]
    for key, _order in ordered[1:]:
        if key != first_key:
            yield key, first_key


def choose_original(matches: Iterable[Match]) -> Match | None:
    """The earliest verified original among the matches, if any."""
    verified = [m for m in matches if m.duplicate]
    return min(verified, key=lambda m: order_of(m.original_key, m.original), default=None)


def find_originals(prints: dict[str, Fingerprint]) -> dict[str, Match | None]:
    """The same algorithm on one machine: record key → the match with its original, if any.

    The reference the Beam transform is tested against, and what the quality
    benchmark runs.
    """
    buckets: dict[str, list[tuple[str, Order]]] = defaultdict(list)
    for key, print_ in prints.items():
        for band in band_keys(print_):
            buckets[band].append((key, order_of(key, print_)))
    asks: dict[str, set[str]] = defaultdict(set)
    for members in buckets.values():
        for member, original in bucket_candidates(members):
            asks[member].add(original)
    found = {}
    for key, print_ in prints.items():
        matches = []
        for original in asks[key]:
            verdict = compare(print_, prints[original])
            matches.append(
                Match(
                    original,
                    prints[original],
                    verdict.duplicate,
                    verdict.similarity,
                    verdict.method,
                )
            )
        found[key] = choose_original(matches)
    return found


def mark(article: Article, match: Match | None) -> Article:
    """The article with its ``dedup`` filled: its own cluster, or its original's."""
    if match is None:
        return dataclasses.replace(article, dedup=Dedup(cluster_id=article.id))
    original = match.original.id
    return dataclasses.replace(
        article,
        dedup=Dedup(
            cluster_id=original,
            duplicate_of=original,
            similarity=match.similarity,
            method=match.method,
        ),
    )


def as_duplicate(article: Article) -> Duplicate:
    """The small record a dropped duplicate leaves behind."""
    dedup = article.dedup
    assert dedup is not None  # noqa: S101 - only marked articles get here
    assert dedup.duplicate_of is not None  # noqa: S101
    return Duplicate(
        id=article.id,
        origin=article.origin,
        url=article.url,
        source=article.source,
        published_at=article.published_at,
        headline=article.headline,
        duplicate_of=dedup.duplicate_of,
        cluster_id=dedup.cluster_id,
        similarity=dedup.similarity or 0.0,
        method=dedup.method or "near",
    )


def _fingerprint(keyed: tuple[str, Article]) -> tuple[str, Fingerprint]:
    key, article = keyed
    return key, fingerprint(article.id, article.body, article.content_hash, article.published_at)


def _to_bands(keyed: tuple[str, Fingerprint]) -> Iterator[tuple[str, tuple[str, Order]]]:
    key, print_ = keyed
    order = order_of(key, print_)  # buckets need only who is earliest; prints travel apart
    for band in band_keys(print_):
        yield band, (key, order)


def _to_band_members(keyed: tuple[str, Fingerprint]) -> Iterator[tuple[str, str]]:
    """Each band of the article, with the article's key: a streaming band needs no order."""
    key, print_ = keyed
    for band in band_keys(print_):
        yield band, key


def _bucket(bucket: tuple[str, Iterable[tuple[str, Order]]]) -> Iterator[tuple[str, str]]:
    _band, members = bucket
    yield from bucket_candidates(members)


def _ask_original(
    joined: tuple[str, dict[str, list[Any]]],
) -> Iterator[tuple[str, tuple[str, Fingerprint]]]:
    member_key, parts = joined
    [member] = parts["print"]
    for original_key in set(parts["originals"]):
        yield original_key, (member_key, member)


def _verify(joined: tuple[str, dict[str, list[Any]]]) -> Iterator[tuple[str, Match]]:
    original_key, parts = joined
    [original] = parts["print"]
    for member_key, member in parts["asks"]:
        verdict = compare(member, original)
        yield (
            member_key,
            Match(original_key, original, verdict.duplicate, verdict.similarity, verdict.method),
        )


class _DecideFn(beam.DoFn):
    """Mark each article with its original, and route it: articles, or duplicates."""

    def __init__(self, keep: bool) -> None:
        self._keep = keep

    def setup(self) -> None:
        self._metrics = StepMetrics("dedup")

    def process(
        self, joined: tuple[str, dict[str, list[Any]]]
    ) -> Iterator[Article | beam.pvalue.TaggedOutput]:
        _key, parts = joined
        [article] = parts["article"]
        yield self.decide(article, parts["matches"])

    def decide(
        self, article: Article, matches: Iterable[Match]
    ) -> Article | beam.pvalue.TaggedOutput:
        """The marked article, or a duplicate's small record on the duplicates output."""
        self._metrics.received()
        self._metrics.ok()
        marked = mark(article, choose_original(matches))
        if marked.dedup is None or marked.dedup.duplicate_of is None:
            return marked
        self._metrics.count("duplicates")
        if self._keep:
            return marked
        return beam.pvalue.TaggedOutput(DeduplicateArticles.DUPLICATES, as_duplicate(marked))


class DeduplicateArticles(beam.PTransform):
    """``PCollection[Article]`` → ``{"articles": Article, "duplicates": Duplicate}``.

    Every article comes out once: with ``dedup`` filled in ``articles``, or, when
    it copies an earlier one and ``keep`` is False, as a small record in
    ``duplicates``. With ``keep``, duplicates stay in ``articles``, flagged.
    """

    ARTICLES = "articles"
    DUPLICATES = "duplicates"

    def __init__(self, *, keep: bool = False) -> None:
        super().__init__()
        self._keep = keep

    def expand(self, articles: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        """Fingerprint, bucket by band, verify candidates, decide."""
        keyed = articles | "KeyByOrigin" >> beam.Map(lambda a: (str(a.origin), a))
        prints = keyed | "Fingerprint" >> beam.Map(_fingerprint)
        candidates = (
            prints
            | "ToBands" >> beam.FlatMap(_to_bands)
            | "GroupBands" >> beam.GroupByKey()
            | "Candidates" >> beam.FlatMap(_bucket)
        )
        asks = {"print": prints, "originals": candidates} | "JoinMember" >> beam.CoGroupByKey()
        matches = (
            {"print": prints, "asks": asks | "AskOriginal" >> beam.FlatMap(_ask_original)}
            | "JoinOriginal" >> beam.CoGroupByKey()
            | "Verify" >> beam.FlatMap(_verify)
        )
        return (
            {"article": keyed, "matches": matches}
            | "JoinMatches" >> beam.CoGroupByKey()
            | "Decide"
            >> beam.ParDo(_DecideFn(self._keep)).with_outputs(self.DUPLICATES, main=self.ARTICLES)
        )


# --- Streaming: first seen wins, state per band, per article and per sketch, expiring. ---

_PRINT, _REPLY, _ASK, _VERDICT = "print", "reply", "ask", "verdict"
_ARTICLE, _CANDIDATES = "article", "candidates"
_EXPIRED = "expired"
# How long a collector waits before looking again for a part still on its way.
_RECHECK = Duration(seconds=1)
# Watermark timers wait one runner tick (a millisecond) past the last time they need,
# so everything stamped with it has arrived: Prism fires a timer as soon as the
# watermark reaches it, before the elements stamped with that very time. The asker
# waits past the article's time, the collector past the asker's (its candidates and
# their verdicts carry that).
_ASKED_AFTER = Duration(micros=1000)
_COLLECTED_AFTER = Duration(micros=2000)
# Fingerprints a stream holds until the horizon: up by one when one is kept, down when
# it expires; the sum is what is held now (``JobReport.held_fingerprints``). Band
# entries go with their window, which no counter sees.
FINGERPRINTS = "dedup.state.fingerprints"


def _single(bag: Any) -> Any:
    """The value a bag holds as a single value, or None.

    Single values live in bags here, not in read-modify-write state: on the Fn API
    writing one costs a clear and an append, adding to a bag only the append. Every
    state request is a round trip to the runner over the worker's one state channel,
    and how many an article makes sets how fast a stream can dedup (bench/README.md).
    """
    return next(iter(bag.read()), None)


class _BandFn(beam.DoFn):
    """Per band key and window: names the first article seen within the horizon as original.

    Band entries live in sliding windows three horizons long, starting every horizon,
    so an article's bands fall in three windows. The middle one, begun between one
    and two horizons before it, holds every entry from a horizon before the article
    to a horizon after it (one seen earlier though stamped later, from a partition
    ahead of the others, included), and answers; the other two only take the entry,
    for the articles of the horizons around. Entries keep their event time, and only
    those within the horizon of the asking article count, as for fingerprints. A
    window's state goes whole once the watermark passes its end: no timer per band,
    and on Prism, which keeps a cleared key for ever in the global window, no key
    that outlives its window.

    Only a band that names a candidate replies: most bands of most articles have
    nothing to say, and a silent band costs the asker nothing.
    """

    # (member key, event time in micros), in the order seen
    MEMBERS = BagStateSpec("members", TupleCoder([StrUtf8Coder(), VarIntCoder()]))

    def __init__(self, horizon: Duration) -> None:
        self._horizon = horizon

    def process(
        self,
        element: tuple[str, str],
        timestamp: Timestamp = beam.DoFn.TimestampParam,
        window: IntervalWindow = beam.DoFn.WindowParam,
        members: Any = beam.DoFn.StateParam(MEMBERS),  # noqa: B008 - Beam's idiom
    ) -> Iterator[tuple[str, tuple[str, str]]]:
        _band, member = element
        members.add((member, timestamp.micros))
        since = timestamp - self._horizon
        if not since - self._horizon < window.start <= since:  # not the middle one
            return
        after = since.micros
        original = next((key for key, micros in members.read() if micros > after), member)
        if original != member:
            yield member, (_REPLY, original)


class _BandIndex(beam.PTransform):
    """``(band, member key)`` → ``(member key, ("reply", original key))``, in the global window."""

    def __init__(self, horizon: Duration) -> None:
        super().__init__()
        self._horizon = horizon

    def expand(self, bands: beam.PCollection) -> beam.PCollection:
        """Window the entries by horizon, answer from the middle window, leave the windows."""
        horizon = self._horizon
        return (
            bands
            | "Windows" >> beam.WindowInto(SlidingWindows(size=3 * horizon, period=horizon))
            | "FirstSeen" >> beam.ParDo(_BandFn(horizon)).with_input_types(tuple[str, str])
            | "GlobalWindow" >> beam.WindowInto(GlobalWindows())
        )


class _AskFn(beam.DoFn):
    """Per article: once every band has had its say, ask each candidate original to compare.

    Bands reply only with candidates, so the asker cannot count replies; the
    watermark tells it instead. Its timer is one tick after the article's time:
    it fires once the watermark has passed everything stamped with that time, the
    fingerprint and every reply included (firing at the time itself could come
    before a reply with that very time). It then tells the collector which
    candidates to wait for. The input must not be late (our Kafka reader stamps a
    late record with the watermark): a late article's timer can fire before its
    replies arrive, and the article then misses its original. A reply that comes
    after its article was decided is dropped by the timer it sets.
    """

    PRINT = BagStateSpec("print", PickleCoder())  # one fingerprint
    REPLIES = BagStateSpec("replies", PickleCoder())
    READY = TimerSpec("ready", TimeDomain.WATERMARK)

    def process(
        self,
        element: tuple[str, tuple[str, Any]],
        timestamp: Timestamp = beam.DoFn.TimestampParam,
        print_state: Any = beam.DoFn.StateParam(PRINT),  # noqa: B008 - Beam's idiom
        replies: Any = beam.DoFn.StateParam(REPLIES),  # noqa: B008
        ready: Any = beam.DoFn.TimerParam(READY),  # noqa: B008
    ) -> None:
        _key, (kind, value) = element
        if kind == _PRINT:
            print_state.add(value)
        else:
            replies.add(value)
        ready.set(timestamp + _ASKED_AFTER)

    @on_timer(READY)
    def answered(
        self,
        key: str = beam.DoFn.KeyParam,
        print_state: Any = beam.DoFn.StateParam(PRINT),  # noqa: B008
        replies: Any = beam.DoFn.StateParam(REPLIES),  # noqa: B008
    ) -> Iterator[tuple[str, tuple[str, Any]] | beam.pvalue.TaggedOutput]:
        print_: Fingerprint | None = _single(print_state)
        candidates = frozenset(replies.read())
        if candidates:
            replies.clear()
        if print_ is None:  # late replies for an article already decided
            return
        print_state.clear()
        for original in candidates:
            yield original, (_ASK, (key, print_))
        yield beam.pvalue.TaggedOutput(_CANDIDATES, (key, (_CANDIDATES, candidates)))


class _CompareFn(beam.DoFn):
    """Per article: keeps its fingerprint for the horizon and answers comparisons with it.

    An ask can still arrive just after the fingerprint expired: a band named the
    article just within the horizon, and the asker waited for the watermark. For one
    more horizon such asks get "not a duplicate" at once, from a small tombstone;
    without it the asker's collector would wait, and hold the watermark, for ever.
    """

    PRINT = BagStateSpec("print", PickleCoder())  # one fingerprint
    GONE = BagStateSpec("gone", BooleanCoder())  # True once the fingerprint expired
    WAITING = BagStateSpec("waiting", PickleCoder())
    EXPIRY = TimerSpec("expiry", TimeDomain.WATERMARK)

    def __init__(self, horizon: Duration) -> None:
        self._horizon = horizon

    def setup(self) -> None:
        self._held = Metrics.counter(NAMESPACE, FINGERPRINTS)

    def process(  # noqa: PLR0917 - Beam passes state and timers as parameters
        self,
        element: tuple[str, tuple[str, Any]],
        timestamp: Timestamp = beam.DoFn.TimestampParam,
        print_state: Any = beam.DoFn.StateParam(PRINT),  # noqa: B008
        gone: Any = beam.DoFn.StateParam(GONE),  # noqa: B008
        waiting: Any = beam.DoFn.StateParam(WAITING),  # noqa: B008
        expiry: Any = beam.DoFn.TimerParam(EXPIRY),  # noqa: B008
    ) -> Iterator[tuple[str, tuple[str, Match]]]:
        key, (kind, value) = element
        if kind == _PRINT:
            original: Fingerprint | None = value
            if _single(print_state) is None:  # a record delivered twice is held once
                print_state.add(value)
                expiry.set(timestamp + self._horizon)
                self._held.inc()
            asks = list(waiting.read())
            if asks:
                waiting.clear()
        else:
            original = _single(print_state)
            asks = [value]
        if original is None and _single(gone):
            for member_key, _member in asks:
                yield member_key, (_VERDICT, Match(key, None, False, 0.0, _EXPIRED))
            return
        if original is None:
            for ask in asks:
                waiting.add(ask)
            return
        for member_key, member in asks:
            verdict = compare(member, original)
            match = Match(key, original, verdict.duplicate, verdict.similarity, verdict.method)
            yield member_key, (_VERDICT, match)

    @on_timer(EXPIRY)
    def expire(
        self,
        fired_at: Timestamp = beam.DoFn.TimestampParam,
        print_state: Any = beam.DoFn.StateParam(PRINT),  # noqa: B008
        gone: Any = beam.DoFn.StateParam(GONE),  # noqa: B008
        expiry: Any = beam.DoFn.TimerParam(EXPIRY),  # noqa: B008
    ) -> None:
        if _single(print_state) is None:  # the tombstone's horizon is over too
            gone.clear()
            return
        self._held.dec()
        print_state.clear()  # nothing waits while the fingerprint is here
        gone.add(True)
        expiry.set(fired_at + self._horizon)


class _CollectFn(_DecideFn):
    """Per article: once its candidates are known and each has answered, decide and emit it once.

    Parts are appended without reading state; a watermark timer just past the
    asker's time reads them, and looks again a second later while a verdict is
    missing (an original whose fingerprint was still on its way). The article
    leaves stamped with that timer's time: two milliseconds after its own, and a
    second more each time it looks again.
    """

    PARTS = BagStateSpec("parts", PickleCoder())
    READY = TimerSpec("ready", TimeDomain.WATERMARK)

    def process(  # type: ignore[override]
        self,
        element: tuple[str, tuple[str, Any]],
        timestamp: Timestamp = beam.DoFn.TimestampParam,
        parts: Any = beam.DoFn.StateParam(PARTS),  # noqa: B008
        ready: Any = beam.DoFn.TimerParam(READY),  # noqa: B008
    ) -> None:
        _key, part = element
        parts.add(part)
        if part[0] == _ARTICLE:
            ready.set(timestamp + _COLLECTED_AFTER)

    @on_timer(READY)
    def complete(
        self,
        fired_at: Timestamp = beam.DoFn.TimestampParam,
        parts: Any = beam.DoFn.StateParam(PARTS),  # noqa: B008
        ready: Any = beam.DoFn.TimerParam(READY),  # noqa: B008
    ) -> Iterator[Article | beam.pvalue.TaggedOutput]:
        article, candidates, matches = None, None, {}
        for kind, value in parts.read():
            if kind == _ARTICLE:
                article = value
            elif kind == _CANDIDATES:
                candidates = value
            else:
                matches[value.original_key] = value
        if article is None or candidates is None or not candidates <= matches.keys():
            ready.set(fired_at + _RECHECK)
            return
        parts.clear()
        yield self.decide(article, matches.values())


def _tagged(kind: str) -> Any:
    return lambda keyed: (keyed[0], (kind, keyed[1]))


class DeduplicateStream(beam.PTransform):
    """The streaming form of :class:`DeduplicateArticles`: first seen wins.

    A copy that arrives after its original is its duplicate, even when it was
    published earlier (it joins the cluster rather than starting a new one).
    An article is matched against the articles of the last ``horizon`` of event
    time: fingerprints expire a horizon after their article, band entries with
    their window (two to three horizons later), so memory stays bounded in a stream
    that never ends. A band names the first article seen within the horizon, which
    may itself be a copy of an older one. Its input must not be late: a late article
    can be decided before its bands answer, and miss its original.
    """

    def __init__(self, *, keep: bool = False, horizon_seconds: int = 7 * 24 * 3600) -> None:
        super().__init__()
        if horizon_seconds <= 0:
            message = f"horizon_seconds must be positive, got {horizon_seconds}"
            raise ValueError(message)
        self._keep = keep
        self._horizon = Duration(seconds=horizon_seconds)

    def expand(self, articles: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        """Fan out to bands, ask candidates, compare, collect, decide."""
        keyed = articles | "KeyByOrigin" >> beam.Map(lambda a: (str(a.origin), a))
        prints = keyed | "Fingerprint" >> beam.Map(_fingerprint)
        replies = (
            prints
            | "ToBands" >> beam.FlatMap(_to_band_members).with_output_types(tuple[str, str])
            | "Bands" >> _BandIndex(self._horizon)
        )
        asks = (
            (prints | "PrintsToAsk" >> beam.Map(_tagged(_PRINT)), replies)
            | "AskInputs" >> beam.Flatten().with_output_types(tuple[str, Any])
            | "Ask"
            >> beam.ParDo(_AskFn())
            .with_input_types(tuple[str, Any])
            .with_outputs(_CANDIDATES, main=_ASK)
        )
        verdicts = (
            (prints | "PrintsToCompare" >> beam.Map(_tagged(_PRINT)), asks[_ASK])
            | "CompareInputs" >> beam.Flatten().with_output_types(tuple[str, Any])
            | "Compare" >> beam.ParDo(_CompareFn(self._horizon)).with_input_types(tuple[str, Any])
        )
        return (
            (
                keyed | "ArticlesToCollect" >> beam.Map(_tagged(_ARTICLE)),
                asks[_CANDIDATES],
                verdicts,
            )
            | "CollectInputs" >> beam.Flatten().with_output_types(tuple[str, Any])
            | "Collect"
            >> beam.ParDo(_CollectFn(self._keep))
            .with_input_types(tuple[str, Any])
            .with_outputs(DeduplicateArticles.DUPLICATES, main=DeduplicateArticles.ARTICLES)
        )
