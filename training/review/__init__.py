"""Transcript review: choosing turns for a person to label, and importing what they decided.

``csbot transcripts export`` writes a review file (:mod:`training.review.items`) of the turns the model was
least sure about (:mod:`training.review.export`, :mod:`training.review.uncertainty`), with raw helpdesk
history and handed-over conversations as further sources (:mod:`training.review.helpdesk`); a person sets
each line's decision; ``csbot review import`` checks every line and writes training examples, out-of-scope
examples and Q&A records (:mod:`training.review.importer`).
"""

from training.review.export import (
    DEFAULT_THRESHOLD,
    SELECT_MODES,
    STRATEGIES,
    ExportResult,
    choose,
    export_review,
    item_from_turn,
    merge_duplicates,
    parse_since,
    select_turns,
)
from training.review.helpdesk import handoff_qa_items, helpdesk_file_items, helpdesk_items, read_conversations
from training.review.importer import OOS_LABEL, ReviewedData, import_reviewed, write_reviewed
from training.review.items import (
    DECISIONS,
    KINDS,
    SOURCES,
    ReviewInfo,
    ReviewItem,
    item_id,
    normalise_text,
    read_review_file,
    write_review_file,
)
from training.review.uncertainty import SCORES, entropy, margin, spread_over_intents, uncertainty

__all__ = [
    # the review file
    "DECISIONS", "KINDS", "SOURCES", "ReviewInfo", "ReviewItem", "item_id", "normalise_text", "read_review_file",
    "write_review_file",
    # choosing what to review
    "DEFAULT_THRESHOLD", "SCORES", "SELECT_MODES", "STRATEGIES", "ExportResult", "choose", "entropy",
    "export_review", "item_from_turn", "margin", "merge_duplicates", "parse_since", "select_turns",
    "spread_over_intents", "uncertainty",
    # other sources
    "handoff_qa_items", "helpdesk_file_items", "helpdesk_items", "read_conversations",
    # importing decisions
    "OOS_LABEL", "ReviewedData", "import_reviewed", "write_reviewed",
]
