"""A local pachd: pachd's real gRPC API served in-process, for tests and demos.

TODO: full docstring
"""

from .errors import PachdError
from .faults import Faults
from .jobs import JobContext, PipelineFailure
from .server import LocalPachd

__all__ = ["Faults", "JobContext", "LocalPachd", "PachdError", "PipelineFailure"]
