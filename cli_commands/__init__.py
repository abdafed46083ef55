"""Subcommands of `keybin`, one module each; importing the package registers them all."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from typing import Any

# A string: argparse's _SubParsersAction is generic only to the type checker.
Registrar = Callable[["argparse._SubParsersAction[Any]"], None]

# Each subcommand module adds its parser here: the registry lives with the commands, so
# they need nothing from `cli`, which only dispatches.
registrars: list[Registrar] = []


def register(fn: Registrar) -> Registrar:
    registrars.append(fn)
    return fn


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
