"""Control-plane and node configuration evidence (pure: reading and modelling, no printing).

* ``snapshot``  — what was read from a node root or a collected bundle (files, modes, owners,
  process command lines); also writes bundles.
* ``flags``     — command-line flags of components, with where each came from.
* ``systemd``   — the kubelet command line as systemd would run it (units, drop-ins, env files).
* ``evidence``  — the evidence model controls use, built from an Inventory (cached per scan).
* ``auditpolicy`` / ``encryption`` — semantics of audit Policy and EncryptionConfiguration.
* ``probe``     — an active TLS/HTTP probe of an etcd client endpoint.
"""
