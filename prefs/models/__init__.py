"""Models of the prefs app, one module per part of the domain."""

from prefs.models.collection import (
    Assignment,
    Candidate,
    Choice,
    Comparison,
    Judgment,
    Project,
    Prompt,
)
from prefs.models.snapshots import PreferencePair, PreferenceSet

__all__ = [
    "Assignment",
    "Candidate",
    "Choice",
    "Comparison",
    "Judgment",
    "PreferencePair",
    "PreferenceSet",
    "Project",
    "Prompt",
]
