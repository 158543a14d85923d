"""Faults injected into the fault tests' worker processes, without changing production code.

The `faulty` fixture (tests/faults/conftest.py) puts this folder first on the workers' PYTHONPATH, so Python runs
this module at start-up in every process it starts (`site` imports `sitecustomize`). It patches a
module right after that module is first imported, and only when the test asks for it in the
environment; with none of these variables set it changes nothing:

- `FAULTS_KILL_OPENING_FOR=<prefix>` — opening a member round for a tenant whose slug starts with
  <prefix> SIGKILLs the process running it: a task that kills its worker every time.
- `FAULTS_REPORT_ROW_SECONDS=<s>` — a report spends <s> seconds of CPU per row written (reported
  by the writers through the job's progress callback, per batch of rows): a long report that
  really occupies its process, made long without making the district huge.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


def _kill_opening(module: ModuleType) -> None:
    prefix = os.environ["FAULTS_KILL_OPENING_FOR"]
    original = module.open_round

    def open_round(session: Any, tenant: Any, *args: Any, **kwargs: Any) -> Any:
        if str(tenant.slug).startswith(prefix):
            os.kill(os.getpid(), signal.SIGKILL)
        return original(session, tenant, *args, **kwargs)

    module.open_round = open_round


def _slow_reports(module: ModuleType) -> None:
    per_row = float(os.environ["FAULTS_REPORT_ROW_SECONDS"])
    progress = module._Progress
    original = progress.__call__

    def call(self: Any, rows: int) -> None:
        seen = getattr(self, "_faults_seen", 0)
        self._faults_seen = rows
        until = time.perf_counter() + per_row * max(rows - seen, 0)
        while time.perf_counter() < until:  # busy: a long report is CPU work, not a nap
            pass
        original(self, rows)

    progress.__call__ = call


_PATCHES: dict[str, tuple[str, Callable[[ModuleType], None]]] = {
    "fivestar.member_rounds.opening": ("FAULTS_KILL_OPENING_FOR", _kill_opening),
    "fivestar.reports.jobs.services": ("FAULTS_REPORT_ROW_SECONDS", _slow_reports),
}


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds the wanted modules through the other finders and patches each once it has executed."""

    def __init__(self, wanted: dict[str, Callable[[ModuleType], None]]) -> None:
        self.wanted = wanted

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        patch = self.wanted.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        loader: Any = spec.loader
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module
        return spec


_wanted = {name: patch for name, (variable, patch) in _PATCHES.items() if os.environ.get(variable)}
if _wanted:
    sys.meta_path.insert(0, _PatchAfterImport(_wanted))
