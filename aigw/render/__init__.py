"""The one output layer: data to stdout as JSON or Rich tables, status and errors to stderr."""

from aigw.render.output import Column, Output, to_jsonable

__all__ = ["Column", "Output", "to_jsonable"]
