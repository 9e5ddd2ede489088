"""A BM25 lexical index over the questions, fused with the dense score in hybrid search.

Dense sentence vectors blur exact tokens: two questions about orders 48213 and 99120 look alike. BM25's
inverse document frequency gives rare tokens (order numbers, product codes, e-mail addresses) their
weight. The score is reported as the share of the query's IDF mass a record matches (BM25 over the sum of
the query terms' IDF, capped at 1), so it fuses with a cosine without per-query rescaling.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

_TOKEN = re.compile(r"[\w.+-]*\w@[\w-]+(?:\.[\w-]+)+|\w+(?:[-.]\w+)*", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; e-mail addresses and dotted or hyphenated codes (AB-1234, v2.1) stay whole."""
    return _TOKEN.findall(text.lower())


class BM25Index:
    """An inverted index of token → {id: term frequency}, with Okapi BM25 scoring."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.postings: dict[str, dict[int, int]] = defaultdict(dict)
        self.lengths: dict[int, int] = {}
        self._total_length = 0

    def __len__(self) -> int:
        return len(self.lengths)

    def add(self, label: int, text: str) -> None:
        """Index ``text`` under ``label`` (replacing what the label held)."""
        if label in self.lengths:
            raise ValueError(f"label {label} is already indexed")
        tokens = tokenize(text)
        for token, count in Counter(tokens).items():
            self.postings[token][label] = count
        self.lengths[label] = len(tokens)
        self._total_length += len(tokens)

    def remove(self, label: int, text: str) -> None:
        """Forget ``label``, which was indexed with ``text``; unknown labels are ignored."""
        length = self.lengths.pop(label, None)
        if length is None:
            return
        self._total_length -= length
        for token in set(tokenize(text)):
            posting = self.postings.get(token)
            if posting is not None:
                posting.pop(label, None)
                if not posting:
                    del self.postings[token]

    def _idf(self, token: str) -> float:
        n, df = len(self.lengths), len(self.postings.get(token, ()))
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def search(self, query: str, k: int, max_df_share: float = 0.05) -> list[tuple[int, float]]:
        """The ``k`` best ``(label, share)`` pairs, share = BM25 / the sum of the query terms' IDF.

        Candidates come from the query's rarer terms only (in at most ``max_df_share`` of the records,
        and always when a term is in under 1000): walking the postings of words like "my" would cost far
        more than they can add. Their share is still counted in the scores.
        """
        limit = max(1000, int(max_df_share * len(self.lengths)))
        rare = [t for t in set(tokenize(query)) if len(self.postings.get(t, ())) <= limit]
        candidates = {label for t in rare for label in self.postings.get(t, {})}
        if not candidates:
            return []
        scores = self.scores(query, list(candidates))
        return sorted(scores.items(), key=lambda item: -item[1])[:k]

    def scores(self, query: str, labels: list[int] | None = None) -> dict[int, float]:
        """Normalised scores of every matching record, or only of ``labels`` when given."""
        terms = Counter(tokenize(query))
        if not terms or not self.lengths:
            return {}
        average = self._total_length / len(self.lengths) or 1.0
        # a term met once in a record of average length scores idf · 1: the ceiling is every term met so
        ceiling = sum(self._idf(t) * q for t, q in terms.items())
        if ceiling <= 0:
            return {}
        wanted = None if labels is None else set(labels)
        out: dict[int, float] = defaultdict(float)
        for token, q in terms.items():
            posting = self.postings.get(token)
            if not posting:
                continue
            idf = self._idf(token)
            for label, tf in posting.items() if wanted is None else ((x, posting[x]) for x in wanted if x in posting):
                norm = self.k1 * (1 - self.b + self.b * self.lengths[label] / average)
                out[label] += q * idf * tf * (self.k1 + 1) / (tf + norm)
        return {label: min(1.0, value / ceiling) for label, value in out.items()}
