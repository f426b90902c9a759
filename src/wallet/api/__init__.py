"""HTTP API: the app factory, routes, request and response models, error mapping."""

from .app import create_app

__all__ = ["create_app"]
