"""The product FAQ's one form: "P:" questions, each followed by its "R:" answer.

Sara finds an answer by the question's words and quotes what follows "R:" (sara.rules); free
text has no question to match and no answer to quote, so it is refused where it is typed.
"""

from __future__ import annotations

import re

EXAMPLE = "P: Tem garantia?\nR: Sim, 12 meses de garantia do fabricante.\nP: Vem com nota fiscal?\nR: Sim."
_QUESTION = re.compile(r"P\s*:", re.IGNORECASE)
_ANSWER = re.compile(r"R\s*:", re.IGNORECASE)


def faq_first_bad_line(faq: str) -> str | None:
    """The first line that breaks the form (a question with no answer is named by its question)."""
    question: str | None = None  # the question still waiting for its answer
    answered = False
    for line in (raw.strip() for raw in faq.splitlines()):
        if not line:
            continue
        if _QUESTION.match(line):
            if question is not None:
                return question
            rest = _QUESTION.sub("", line, count=1)
            # "P: Tem garantia? R: Sim." on one line is a whole entry.
            question, answered = (
                (None, True) if re.search(r"(?:^|\s)R\s*:", rest, re.IGNORECASE) else (line, False)
            )
        elif _ANSWER.match(line):
            if question is None:
                return line
            question, answered = None, True
        elif not answered or question is not None:
            # Text outside an answer: neither a question nor the continuation of an answer.
            return line
    return question
