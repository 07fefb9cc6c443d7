"""A notifier for tests: appends what it was asked to send to a JSON-lines file."""

from __future__ import annotations

import json

from airflow.sdk import BaseNotifier


class RecordingNotifier(BaseNotifier):
    template_fields = ()

    def __init__(self, *, path: str, subject: str, message: str) -> None:
        super().__init__()
        self.path = path
        self.subject = subject
        self.message = message

    def notify(self, context) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"subject": self.subject, "message": self.message}) + "\n")
