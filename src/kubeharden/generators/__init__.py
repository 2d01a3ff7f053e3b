"""Generators of hardened configuration (pure: they return text; commands write it)."""
