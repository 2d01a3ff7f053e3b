"""Admission: the scan's controls judging one object at deploy time.

``evaluate`` turns an AdmissionReview request into a decision with the same engine and controls
``kubeharden scan`` runs; ``server`` serves it over HTTPS (``kubeharden webhook``); ``vap``
expresses the per-object controls as ValidatingAdmissionPolicies and ``cel`` evaluates those
offline (``kubeharden vap --check``, the parity tests).
"""
