"""Development certificates for the gateway's mTLS port: a CA, the gateway's server certificate and
client certificates whose identity is a SPIFFE URI (``spiffe://banhammer/<kind>/<name>``).

    python deploy/tls/certs.py --out .local/tls [--client game/eu-1 ...] [--days 30]

Writes ca.pem (the CA's key stays in ca-key.pem, for issuing more), gateway.pem/gateway-key.pem
(DNS localhost and the compose/k8s gateway names, IP 127.0.0.1) and, per client,
<kind>-<name>.pem/-key.pem. For development only: production certificates come from cert-manager
(deploy/k8s/README.md). Nothing here is committed; tests mint their own with these functions.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from services.runtime.cli import CommandParser, UsageError, run  # noqa: E402

SPIFFE_PREFIX = "spiffe://banhammer/"
GATEWAY_NAMES = ("localhost", "gateway", "envoy", "gateway.banhammer.svc.cluster.local")


@dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
        cert.write_bytes(self.cert_pem())
        key.touch(mode=0o600)
        key.write_bytes(self.key_pem())
        return cert, key


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def make_ca(name: str = "BanHammer development CA", days: int = 365) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5)).not_valid_after(_now() + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Issued(cert, key)


def issue(ca: Issued, common_name: str, *, dns: tuple[str, ...] = (), ips: tuple[str, ...] = (),
          uris: tuple[str, ...] = (), server: bool = False, days: float = 30,
          not_before: dt.datetime | None = None) -> Issued:
    """A leaf certificate signed by ``ca``; ``not_before``/``days`` let tests mint expired ones."""
    key = ec.generate_private_key(ec.SECP256R1())
    start = not_before or _now() - dt.timedelta(minutes=5)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def client_identity(name: str) -> str:
    """"game/eu-1" -> "spiffe://banhammer/game/eu-1" (the subject the gateway forwards)."""
    if not name or name.startswith("/") or any(c.isspace() for c in name):
        raise UsageError(f"client name {name!r}: expected a path like game/eu-1")
    return SPIFFE_PREFIX + name


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog="python deploy/tls/certs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to write (created; keep it out of git)")
    parser.add_argument("--client", action="append", default=[], metavar="KIND/NAME",
                        help="a client certificate for spiffe://banhammer/KIND/NAME (repeatable; default game/dev)")
    parser.add_argument("--days", type=int, default=30, help="validity of the leaf certificates (default 30)")
    args = parser.parse_args(argv)
    if args.days < 1:
        raise UsageError("--days must be at least 1")
    clients = {name: client_identity(name) for name in args.client or ["game/dev"]}  # all valid before any write
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = out / "ca.pem", out / "ca-key.pem"
    if ca_cert.exists() and ca_key.exists():  # keep the CA: certificates issued before stay valid
        ca = Issued(x509.load_pem_x509_certificate(ca_cert.read_bytes()),
                    serialization.load_pem_private_key(ca_key.read_bytes(), None))
    else:
        ca = make_ca()
        ca.write(out, "ca")
    issue(ca, "banhammer-gateway", dns=GATEWAY_NAMES, ips=("127.0.0.1",), server=True, days=args.days).write(
        out, "gateway")
    for name, identity in clients.items():
        cert, _ = issue(ca, name, uris=(identity,), days=args.days).write(out, name.replace("/", "-"))
        print(f"{cert}: {identity}")
    print(f"{ca_cert}: CA; {out / 'gateway.pem'}: gateway (localhost, 127.0.0.1)")
    return 0


if __name__ == "__main__":
    sys.exit(run(main, "python deploy/tls/certs.py"))
