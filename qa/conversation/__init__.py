"""The conversation around a question: the history validated and bounded, a follow-up read in its conversation
(`resolve`), and the sentences earlier answers quoted, which a follow-up asking something new should not get
again (`quotes`). Code outside this package uses these names only.
"""

from qa.conversation.quotes import QUOTED_KEEP, QuoteFinder
from qa.conversation.resolve import (
    Exchange,
    FollowUp,
    History,
    clean_history,
    resolve_follow_up,
    standalone_question,
)

__all__ = [
    "QUOTED_KEEP",
    "Exchange",
    "FollowUp",
    "History",
    "QuoteFinder",
    "clean_history",
    "resolve_follow_up",
    "standalone_question",
]
