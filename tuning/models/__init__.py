"""Models of the tuning app, one module per part of the domain."""

from tuning.models.evaluations import Evaluation, EvaluationPair
from tuning.models.jobs import Job, JobEvent
from tuning.models.registry import Adapter, AdapterPromotion, BaseModel
from tuning.models.rounds import Pairing, Round, RoundPolicy

__all__ = [
    "Adapter",
    "AdapterPromotion",
    "BaseModel",
    "Evaluation",
    "EvaluationPair",
    "Job",
    "JobEvent",
    "Pairing",
    "Round",
    "RoundPolicy",
]
