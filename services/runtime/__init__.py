"""Shared runtime: config, server bootstrap, errors, health, telemetry, logging."""

from .config import ConfigError, env, load
from .errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from .service import Command, Service, ServiceSpec

__all__ = [
    "Aborted", "AlreadyExists", "Command", "ConfigError", "DeadlineExceeded", "DomainError", "FailedPrecondition",
    "FieldViolation", "InvalidArgument", "NotFound", "PermissionDenied", "ResourceExhausted", "Service",
    "ServiceSpec", "Unauthenticated", "Unavailable", "env", "load",
]
