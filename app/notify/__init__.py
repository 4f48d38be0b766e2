"""Delivering queued notifications: dispatching, templates and mail transports."""
