"""Mining Q&A pairs from historical chat transcripts: each customer question with the agent reply that followed.

Greetings, thanks and one-word turns carry no question or answer and are dropped before pairing;
consecutive turns of one speaker are joined; pairs whose questions read the same once case, punctuation
and spacing are ignored are merged into one record that keeps every answer's provenance.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from retrieval.records import QARecord

CUSTOMER_ROLES = frozenset({"customer", "user", "client", "visitor", "human", "guest"})
AGENT_ROLES = frozenset({"agent", "support", "operator", "staff", "assistant", "advisor", "rep", "bot"})

_SMALL_TALK_WORDS = (
    "hi hello hey hiya yo howdy greetings good morning afternoon evening day there all team guys folks "
    "thanks thank you thx ty cheers much so very a lot many again great ok okay cool perfect awesome "
    "bye goodbye see later have nice welcome np no problem sure yes yeah yep please"
)
_SMALL_TALK = frozenset(_SMALL_TALK_WORDS.split())
_WORD = re.compile(r"[\w@.+-]+", re.UNICODE)


@dataclass
class Turn:
    """One message in a conversation, with its speaker normalised to ``customer`` or ``agent``."""

    role: str
    text: str


@dataclass
class Conversation:
    """A transcript: its id, where it came from (``file:line``) and its turns in order."""

    id: str
    turns: list[Turn] = field(default_factory=list)
    source: str = ""


def normalise_role(role: str) -> str | None:
    """``customer`` or ``agent`` for a known speaker name, None otherwise."""
    key = role.strip().lower()
    if key in CUSTOMER_ROLES:
        return "customer"
    if key in AGENT_ROLES:
        return "agent"
    return None


def words(text: str) -> list[str]:
    """Lower-cased word tokens, keeping e-mail addresses, order numbers and codes whole."""
    return [w.strip(".-+") for w in _WORD.findall(text.lower()) if w.strip(".-+")]


def is_small_talk(text: str) -> bool:
    """A greeting, thanks, goodbye or a one-word turn: nothing to learn an answer from."""
    tokens = words(text)
    return len(tokens) <= 1 or all(t in _SMALL_TALK for t in tokens)


def question_key(text: str) -> str:
    """The form under which two questions count as the same: lower case, punctuation and spacing ignored."""
    return " ".join(words(text))


def mine_pairs(conversations: list[Conversation]) -> list[QARecord]:
    """(customer question, following agent reply) records, small talk dropped and duplicates merged."""
    by_key: dict[str, QARecord] = {}
    for conversation in conversations:
        blocks: list[tuple[str, list[str], int]] = []  # (role, texts, index of the block's first turn)
        for index, turn in enumerate(conversation.turns):  # index in the transcript, small talk included
            if not turn.text.strip() or is_small_talk(turn.text):
                continue
            if blocks and blocks[-1][0] == turn.role:
                blocks[-1][1].append(turn.text.strip())
            else:
                blocks.append((turn.role, [turn.text.strip()], index))
        for (role, texts, index), following in itertools.pairwise(blocks):
            if role != "customer" or following[0] != "agent":
                continue
            question, answer = " ".join(texts), " ".join(following[1])
            record = QARecord.create(
                question, answer, id=f"{conversation.id}:{index}", source=conversation.source or None
            )
            key = question_key(question)
            if key in by_key:
                by_key[key].absorb(record)
            else:
                by_key[key] = record
    return list(by_key.values())
