"""A machine client with a certificate, written with tools sesame did not write: certificates made
by `cryptography`, requests sent by `httpx` over TLS with the client certificate.

    mtls_client.py make DIR                  a CA, sesame's certificate for localhost, a client
                                             certificate from the CA (CN=billing, O=Example Corp)
                                             and a self-signed one with its JWK Set (x5c)
    mtls_client.py run DIR BASE BILLING SELF  token requests and an API call; prints one JSON object
"""

import base64
import datetime
import json
import ssl
import sys
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def name(cn, org=None):
    parts = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)] if org else []) + [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    return x509.Name(parts)


def certificate(subject, key, issuer, issuer_key, *, ca=False, dns=None, client=False):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if dns:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    if client:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write(directory, stem, cert, key):
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))


def b64url(number):
    return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()


def make(directory):
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate(name("Example Corp Client CA"), ca_key, name("Example Corp Client CA"), ca_key, ca=True)
    write(directory, "ca", ca, ca_key)
    server_key = ec.generate_private_key(ec.SECP256R1())
    write(directory, "server", certificate(name("localhost"), server_key, ca.subject, ca_key, dns=["localhost"]), server_key)
    billing_key = ec.generate_private_key(ec.SECP256R1())
    write(directory, "billing", certificate(name("billing", "Example Corp"), billing_key, ca.subject, ca_key, client=True), billing_key)
    own_key = ec.generate_private_key(ec.SECP256R1())
    own = certificate(name("reports-cli"), own_key, name("reports-cli"), own_key, client=True)
    write(directory, "reports-cli", own, own_key)
    numbers = own_key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64url(numbers.x), "y": b64url(numbers.y), "x5c": [base64.b64encode(own.public_bytes(serialization.Encoding.DER)).decode()]}
    (directory / "reports-cli.jwks.json").write_text(json.dumps({"keys": [jwk]}))


def run(directory, base, billing, own):
    ca = str(directory / "ca.pem")

    def client(stem=None):
        context = ssl.create_default_context(cafile=ca)
        if stem:
            context.load_cert_chain(str(directory / f"{stem}.pem"), str(directory / f"{stem}.key"))
        return httpx.Client(verify=context, timeout=10)

    def token(stem, client_id):
        with client(stem) as c:
            res = c.post(f"{base}/token", data={"grant_type": "client_credentials", "client_id": client_id})
            return res.status_code, res.json()

    results = {}
    status, body = token("billing", billing)
    results["billing"] = [status, body.get("token_type")]
    access = body.get("access_token")
    results["billing_without_certificate"] = token(None, billing)[0]
    results["billing_with_the_self_signed"] = token("reports-cli", billing)[0]
    results["self_signed"] = token("reports-cli", own)[0]
    results["self_signed_with_the_ca_issued"] = token("billing", own)[0]
    headers = {"Authorization": f"Bearer {access}"}
    with client("billing") as c:
        results["api_with_its_certificate"] = c.get(f"{base}/admin/api-keys", headers=headers).status_code
    with client(None) as c:
        results["api_without_a_certificate"] = c.get(f"{base}/admin/api-keys", headers=headers).status_code
    with client("reports-cli") as c:
        results["api_with_another_certificate"] = c.get(f"{base}/admin/api-keys", headers=headers).status_code
    print(json.dumps(results))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        run(Path(sys.argv[2]), sys.argv[3].rstrip("/"), sys.argv[4], sys.argv[5])
