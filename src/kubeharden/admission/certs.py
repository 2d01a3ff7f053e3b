"""A CA and a serving certificate for the webhook Service (``kubeharden webhook certs``).

The API server verifies the webhook against the CA given as caBundle in the
ValidatingWebhookConfiguration, by the Service's DNS name, so the serving certificate carries
every name the API server may use: SERVICE, SERVICE.NAMESPACE, SERVICE.NAMESPACE.svc and
SERVICE.NAMESPACE.svc.cluster.local (or the --cluster-domain given).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class CertBundle:
    ca_cert: bytes  # PEM
    ca_key: bytes
    cert: bytes
    key: bytes
    dns_names: tuple[str, ...]
    not_after: dt.datetime


def service_dns_names(service: str, namespace: str, cluster_domain: str = "cluster.local") -> tuple[str, ...]:
    return (service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
            f"{service}.{namespace}.svc.{cluster_domain}")


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def generate(dns_names: tuple[str, ...], *, days: int = 365, ca_days: int = 3650,
             ca_cert_pem: bytes | None = None, ca_key_pem: bytes | None = None,
             now: dt.datetime | None = None) -> CertBundle:
    """A serving certificate for ``dns_names`` signed by the given CA, or by a new one."""
    now = now or dt.datetime.now(dt.UTC)
    if ca_cert_pem is not None and ca_key_pem is not None:
        ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
        loaded = serialization.load_pem_private_key(ca_key_pem, password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key must be an EC private key (as `kubeharden webhook certs` makes them)")
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder().subject_name(_name("kubeharden-webhook-ca")).issuer_name(_name("kubeharden-webhook-ca"))
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=ca_days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
    key = ec.generate_private_key(ec.SECP256R1())
    not_after = min(now + dt.timedelta(days=days), ca_cert.not_valid_after_utc)
    cert = (
        x509.CertificateBuilder().subject_name(_name(dns_names[0])).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return CertBundle(
        ca_cert=ca_cert.public_bytes(serialization.Encoding.PEM),
        ca_key=_pem_key(ca_key),
        cert=cert.public_bytes(serialization.Encoding.PEM),
        key=_pem_key(key),
        dns_names=dns_names,
        not_after=not_after,
    )


ROTATION = """\
Rotation (no restart: kubeharden webhook reloads tls.crt/tls.key when the files change):
  1. New serving certificate from the same CA (the caBundle stays valid):
       kubeharden webhook certs --service {service} --namespace {namespace} --ca-cert {out}/ca.crt \\
         --ca-key {out}/ca.key -o {out} --force
     then update the Secret; the kubelet refreshes the mounted files within about a minute:
       kubectl -n {namespace} create secret tls {secret} --cert {out}/tls.crt --key {out}/tls.key \\
         --dry-run=client -o yaml | kubectl apply -f -
  2. New CA (before {ca_not_after}): put old and new CA in caBundle (concatenate the PEM files), roll the
     serving certificate to one signed by the new CA as in 1, then drop the old CA from caBundle.
  The serving certificate expires {not_after}; keep ca.key offline, it is not needed by the webhook.
"""
