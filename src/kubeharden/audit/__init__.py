"""Threat detection over Kubernetes audit events (guidance §3, detectors D01–D20).

Layers as elsewhere: ``reader`` reads (never judges), ``detectors`` judge one event (or a window
of them) and yield Violations, ``runner`` turns them into Findings with evidence, applies
exceptions and keeps the bounded state; the CLI picks reporters.
"""
