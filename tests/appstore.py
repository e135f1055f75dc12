"""A certificate chain of our own, shaped like the App Store's, and JWS signed with it.

Apple signs StoreKit 2 transactions and App Store Server Notifications V2 as ES256 JWS
whose ``x5c`` header carries leaf, intermediate and root; the library checks the chain up
to a trusted root, Apple's marker extensions on the leaf (1.2.840.113635.100.6.11.1) and
the intermediate (1.2.840.113635.100.6.2.1), and the signature. The tests trust this
root instead of Apple's; nothing else about verification changes.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

LEAF_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.11.1")
INTERMEDIATE_MARKER = x509.ObjectIdentifier("1.2.840.113635.100.6.2.1")
BUNDLE_ID = "com.example.videogen"
APP_APPLE_ID = 1234567890


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    marker: x509.ObjectIdentifier | None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name = issuer[0].subject if issuer else _name(subject)
    signer = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
            critical=False,
        )
    if marker is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(marker, b"\x05\x00"), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


@dataclass
class Chain:
    """Root, intermediate and leaf; the leaf's key signs."""

    root: x509.Certificate
    intermediate: x509.Certificate
    leaf: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def new(cls, name: str = "Test") -> Chain:
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = _cert(f"{name} Root CA", root_key, None, ca=True, marker=None)
        mid_key = ec.generate_private_key(ec.SECP256R1())
        mid = _cert(f"{name} WWDR", mid_key, (root, root_key), ca=True, marker=INTERMEDIATE_MARKER)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        leaf = _cert(f"{name} Signing", leaf_key, (mid, mid_key), ca=False, marker=LEAF_MARKER)
        return cls(root, mid, leaf, leaf_key)

    def root_der(self) -> bytes:
        return self.root.public_bytes(Encoding.DER)

    def sign(self, payload: dict[str, Any]) -> str:
        """A JWS as the App Store writes one (ES256, x5c = leaf, intermediate, root)."""
        x5c = [
            base64.b64encode(c.public_bytes(Encoding.DER)).decode()
            for c in (self.leaf, self.intermediate, self.root)
        ]
        return jwt.encode(payload, self.key, algorithm="ES256", headers={"x5c": x5c})


def transaction(
    product_id: str, *, transaction_id: str | None = None, **fields: Any
) -> dict[str, Any]:
    """A StoreKit 2 transaction payload (JWSTransactionDecodedPayload) of a consumable."""
    now = int(time.time() * 1000)
    tid = transaction_id or str(uuid.uuid4().int)[:15]
    return {
        "transactionId": tid,
        "originalTransactionId": tid,
        "bundleId": BUNDLE_ID,
        "productId": product_id,
        "purchaseDate": now,
        "originalPurchaseDate": now,
        "quantity": 1,
        "type": "Consumable",
        "inAppOwnershipType": "PURCHASED",
        "signedDate": now,
        "environment": "Sandbox",
        "transactionReason": "PURCHASE",
        "storefront": "USA",
        "storefrontId": "143441",
        "price": 4990,
        "currency": "USD",
        **fields,
    }


def notification(
    notification_type: str, signed_transaction: str | None, **fields: Any
) -> dict[str, Any]:
    """An App Store Server Notification V2 payload (ResponseBodyV2DecodedPayload)."""
    data: dict[str, Any] = {
        "appAppleId": APP_APPLE_ID,
        "bundleId": BUNDLE_ID,
        "bundleVersion": "1.0",
        "environment": "Sandbox",
    }
    if signed_transaction is not None:
        data["signedTransactionInfo"] = signed_transaction
    return {
        "notificationType": notification_type,
        "notificationUUID": str(uuid.uuid4()),
        "data": data,
        "version": "2.0",
        "signedDate": int(time.time() * 1000),
        **fields,
    }
