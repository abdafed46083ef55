"""The support console: a server-rendered htmx portal for support staff, mounted at /console."""

from console.app import create_console

__all__ = ["create_console"]
