"""The certificates of the mTLS scenario, made with the openssl command: a P-256 client CA, and a
client certificate it issued for client authentication. The scenario sends the certificate as a
TLS-terminating proxy passes it on (nginx's `$ssl_client_escaped_cert`: URL-encoded PEM)."""

import os
import subprocess
import urllib.parse

# The header sesame (tls.client_cert_header) and the peer read the certificate from.
HEADER = "X-SSL-Client-Cert"
SUBJECT_DN = "CN=bench-mtls,O=Bench"


def certificates(directory):
    """Writes ca.pem and client.pem (and their keys) to `directory`; returns what the scenario needs."""
    os.makedirs(directory, exist_ok=True)
    path = lambda name: os.path.join(directory, name)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", *ec, "-keyout", path("ca.key"), "-out", path("ca.pem"), "-days", "7", "-subj", "/CN=Bench Client CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", *ec, "-keyout", path("client.key"), "-out", path("client.csr"), "-subj", "/O=Bench/CN=bench-mtls")
    with open(path("client.ext"), "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n")
    run("x509", "-req", "-in", path("client.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial",
        "-out", path("client.pem"), "-days", "7", "-extfile", path("client.ext"))
    with open(path("client.pem")) as f:
        pem = f.read()
    return {"ca_file": path("ca.pem"), "subject_dn": SUBJECT_DN, "header": HEADER, "escaped": urllib.parse.quote(pem, safe="")}
