"""Audit report formats: a terminal table, JSON, CSV and a self-contained HTML page."""

from keysteward.audit.ranking import __doc__ as _ranking_doc

# The ranking explanation shown in every report, taken from the ranking module
# so the text and the code stay together.
RANKING_EXPLANATION = (_ranking_doc or "").strip()
