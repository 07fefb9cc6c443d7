"""The local pachd's state: one backend per service, sharing the waiters.

Like moto's backends: :attr:`State.pfs` (:class:`.pfs.models.PfsBackend`: projects,
repos, branches, commits, commit sets) and :attr:`State.pps`
(:class:`.pps.models.PpsBackend`: pipelines, jobs, secrets) each hold their service's
records and pachd's rules for them; PPS works on PFS through the PFS backend, as pachd
does. Both notify through one :class:`.events.Events` (waiters, restart flag, the
save-after-change hook). Persistence saves and loads a ``State``; the job runner and
the servicers are given its backends.
"""

from __future__ import annotations

from .events import Events
from .pfs.models import PfsBackend
from .pps.models import PpsBackend


class State:
    """Everything the local pachd keeps: the services' backends and their events."""

    def __init__(self) -> None:
        self.events = Events()
        self.pfs = PfsBackend(self.events)
        self.pps = PpsBackend(self.events, self.pfs)
