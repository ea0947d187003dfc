"""Composition root: settings, CLI, the web application."""
