"""Pluggable teacher clients, versioned prompts, a persistent feedback cache and caching jobs.

This package knows nothing about training: it turns (problem, rationale) requests into validated feedback.
"""
