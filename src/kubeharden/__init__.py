"""kubeharden: the NSA/CISA Kubernetes Hardening Guidance as working software."""

__version__ = "0.1.0"
