"""The pluggy markers: one project name everywhere (``keras_inspect``)."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "keras_inspect"
ENTRY_POINT_GROUP = "keras_inspect"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
