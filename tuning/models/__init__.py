"""Models of the tuning app, one module per part of the domain."""

from tuning.models.registry import Adapter, BaseModel

__all__ = ["Adapter", "BaseModel"]
