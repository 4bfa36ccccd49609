"""Verifies a cbm-hub submission offline, as `cbm-hub verify` does, with pycose and cryptography.

    python verify.py SUBMISSION --hub-key audit-signing-key.pub --trust-anchor root.pem \
        [--receipt receipt.json] [--id ID]

SUBMISSION is `cbm-hub get ID --json` output (then --receipt is the `cbm-hub receipt` file) or a
STIX bundle from `cbm-hub export stix` / `subscribe --format stix`, whose cbm-hub extension
carries the signed content, the signature and the receipt. Prints one line per check ("ok  " or
"FAIL", what, detail) and exits 1 naming what failed.

Unlike `cbm-hub verify`, this tool does not re-map a STIX object from its signed content, so it
cannot tell whether the object's readable properties (name, description, ...) were edited: on a
STIX object of a signed revision it fails `content` unless --signed-content-only says that only
the signed content (the extension's signed_content, which the reader then uses) is relied on. A
withdrawal's revocation is checked in full: its text is the signed statement's.
"""

import argparse
import base64
import datetime
import hashlib
import json
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import json_format
from pycose.headers import X5chain
from pycose.keys import CoseKey
from pycose.messages import CoseMessage

from cbm.v1 import submission_pb2

EXTENSION = "extension-definition--"


class Checks:
    def __init__(self):
        self.lines = []

    def add(self, what, ok, detail):
        self.lines.append((what, ok, detail))
        print(f"{'ok  ' if ok else 'FAIL'} {what}: {detail}")

    def failed(self):
        names = []
        for what, ok, _ in self.lines:
            if not ok and what not in names:
                names.append(what)
        return names


# COSE protected header label (private use) of cbm-hub's change claim (src/provenance/cose.rs).
CHANGE_LABEL = -65537


def change_claim(s):
    """The claim a publication's or revision's signature carries; None for a withdrawal."""
    if s["status"] == "withdrawn":
        return None
    revision = number(s["revision"])
    return "publish 1" if revision <= 1 else f"revise {s['submission_id']} {revision}"


def statement(s):
    """The exact bytes a withdrawal's signature covers (src/provenance/statement.rs)."""
    return (f"cbm-hub withdrawal v1\n{s['submission_id']}\n{number(s['revision'])}\n"
            f"withdrawn\n{s['withdrawal_reason']}\n").encode()


def revocation_text(s):
    """The readable text of the hub's revocation for a withdrawal (src/stix/objects.rs)."""
    why = s["withdrawal_reason"]
    return (f"cbm-hub submission {s['submission_id']} was withdrawn by its publisher"
            + (f": {why}" if why else "."))


def from_bundle(bundle, wanted, checks, signed_content_only):
    """(submission fields, signed bytes, signature, receipt) of the signed object: a
    revision's (signed_content) or a withdrawal's (signed_statement, which is rebuilt from the
    id, revision and reason the object names, and the signature checked over that)."""
    found = []
    for o in bundle.get("objects", []):
        for name, ext in (o.get("extensions") or {}).items():
            if name.startswith(EXTENSION) and ("signed_content" in ext or "signed_statement" in ext):
                if wanted is None or ext.get("submission_id") == wanted:
                    found.append((o, ext))
    # A withdrawal revoked as each STIX type its kind allows shows as several objects.
    ids = sorted({e.get("submission_id") for _, e in found})
    if len(ids) != 1:
        sys.exit(f"error: {len(ids)} signed submissions in the bundle; choose one with --id")
    e = next((e for _, e in found if "receipt" in e), found[0][1])
    s = {k: e.get(k, "") for k in (
        "submission_id", "revision", "publisher", "status", "content_hash", "sequence",
        "updated_at", "withdrawal_reason")}
    if "signed_statement" in e:
        payload = statement(s)
        same = (s["status"] == "withdrawn"
                and all(x.get("signed_statement", "").encode() == payload for _, x in found))
        checks.add("statement", same,
                   f"the signed statement is the withdrawal of {s['submission_id']} revision "
                   f"{s['revision']} with reason {s['withdrawal_reason']!r} that the object names" if same
                   else "the signed statement is not the withdrawal the object names (altered after signing)")
        # The readable text of a revocation is the statement's; an object still showing content
        # (the publisher's own copy) shows what a withdrawal's signature does not cover.
        for o, x in found:
            shown = o.get("content") if o.get("type") == "note" else o.get("name")
            if "body" in x:
                checks.add("content", False, "the object shows content, which a withdrawal's "
                           "signature does not cover (it covers the statement: id, revision, reason)")
            elif shown != revocation_text(s) or "description" in o or o.get("revoked") is not True:
                checks.add("content", False, "the revocation's readable properties are not the "
                           "signed withdrawal's (altered after signing)")
            else:
                checks.add("content", True, "the revocation's text is the signed withdrawal's")
    else:
        payload = base64.b64decode(e["signed_content"])
        if signed_content_only:
            checks.add("content", True, "only the signed content is checked: the STIX object's "
                       "readable properties (name, description, ...) are not (--signed-content-only); "
                       "read the content from signed_content")
        else:
            checks.add("content", False, "verify.py does not re-map STIX objects, so the object's "
                       "readable properties (name, description, ...) are unchecked: check the bundle "
                       "with `cbm-hub verify`, or pass --signed-content-only and read the content "
                       "from signed_content")
    return s, payload, base64.b64decode(e["signature"]), e.get("receipt")


def from_get(s):
    """The same from `get --json`: the signed bytes are the content's protobuf encoding."""
    fields = {
        "submission_id": s.get("id", ""), "revision": s.get("revision", 0),
        "publisher": s.get("publisher", ""), "status": s.get("status", ""),
        "content_hash": s.get("content_hash", ""), "sequence": s.get("sequence", "0"),
        "updated_at": s.get("updated_at", ""), "withdrawal_reason": s.get("withdrawal_reason", ""),
    }
    if fields["status"] == "withdrawn":
        payload = statement(fields)
    else:
        content = json_format.ParseDict(s.get("content", {}), submission_pb2.SubmissionContent())
        payload = content.SerializeToString(deterministic=True)
    return fields, payload, base64.b64decode(s.get("signature", "")), None


def node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(index, size, leaf, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    f, s, r = index, size - 1, leaf
    for p in proof:
        if s == 0:
            return False
        if f & 1 or f == s:
            r = node(p, r)
            while not f & 1 and f != 0:
                f >>= 1
                s >>= 1
        else:
            r = node(r, p)
        f >>= 1
        s >>= 1
    return s == 0 and r == root


def ed25519_ok(key, data, signature):
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
        return True
    except (InvalidSignature, ValueError):
        return False


RECEIPT_FIELDS = ["hub_id", "submission_id", "revision", "content_hash", "publisher", "sequence",
                  "accepted_at", "leaf_index", "leaf_hash", "action", "signature_sha256",
                  "signer_cert_sha256"]
# Numbers the proto3 JSON mapping omits when 0 (and writes as strings when 64-bit): the hub
# signs them as decimal digits, "0" included.
RECEIPT_NUMBERS = {"revision", "sequence", "leaf_index"}


def receipt_text(r):
    """The exact text the hub signs (src/provenance/receipt.rs `signed_text`)."""
    def field(k):
        return str(number(r.get(k))) if k in RECEIPT_NUMBERS else (r.get(k) or "")
    return "cbm-hub receipt v1\n" + "".join(f"{field(k)}\n" for k in RECEIPT_FIELDS)


def number(v):
    return int(v or 0)


# Extended key usages a signing certificate may have (any of them, or none at all), as the hub
# (src/provenance/signer.rs): clientAuth, emailProtection, codeSigning, documentSigning
# (RFC 9336), anyExtendedKeyUsage.
SIGNING_PURPOSES = {"1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.4", "1.3.6.1.5.5.7.3.3",
                    "1.3.6.1.5.5.7.3.36", "2.5.29.37.0"}


def extension(cert, oid):
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def signer_usage(cert):
    """None if the signer may sign, else why not: no CA, a key usage (when present) allowing
    digitalSignature or nonRepudiation, an extended key usage (when present) allowing signing."""
    bc = extension(cert, x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
    if bc is not None and bc.ca:
        return "the signer certificate is a CA certificate"
    ku = extension(cert, x509.oid.ExtensionOID.KEY_USAGE)
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        return "the signer certificate lacks the digitalSignature key usage"
    eku = extension(cert, x509.oid.ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is not None and not any(u.dotted_string in SIGNING_PURPOSES for u in eku):
        return "the signer certificate has an extended key usage that excludes signing"
    return None


def issuer_usage(cert, below):
    """None if `cert` may issue the chain below it (`below` CA certificates between it and the
    signer), else why not: basicConstraints CA, its path length, keyCertSign."""
    name = cert.subject.rfc4514_string()
    bc = extension(cert, x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
    if bc is None or not bc.ca:
        return f"{name} is not a CA certificate (basicConstraints)"
    if bc.path_length is not None and below > bc.path_length:
        return f"{name} allows a path of {bc.path_length} CA certificate(s) below it, not {below}"
    ku = extension(cert, x509.oid.ExtensionOID.KEY_USAGE)
    if ku is not None and not ku.key_cert_sign:
        return f"{name} lacks the keyCertSign key usage"
    return None


def chain_ok(chain, anchors, at):
    """The x5chain (signer first) reaches one of the anchors, every certificate valid at `at`,
    the intermediates CAs allowed to issue what is below them, the signer allowed to sign."""
    path = list(chain)
    for cert in path:
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            return False, f"{cert.subject.rfc4514_string()} is not valid at {at.isoformat()}"
    why = signer_usage(path[0])
    if why:
        return False, why
    for below, cert in enumerate(path[1:]):
        why = issuer_usage(cert, below)
        if why:
            return False, why
    for child, parent in zip(path, path[1:]):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, InvalidSignature):
            return False, f"{child.subject.rfc4514_string()} is not issued by the next certificate"
    for anchor in anchors:
        try:
            path[-1].verify_directly_issued_by(anchor)
            return True, (f"reaches trust anchor {anchor.subject.rfc4514_string()} "
                          f"({len(path) - 1} intermediate(s))")
        except (ValueError, TypeError, InvalidSignature):
            continue
    return False, "does not reach any of the trust anchors given"


def parse_signature(signature):
    """(COSE_Sign1, x5chain DERs, certificates), or a ValueError saying what is wrong."""
    try:
        msg = CoseMessage.decode(signature)
    except Exception as e:  # cbor2 and pycose raise many types on malformed input
        raise ValueError(f"is not a COSE_Sign1: {e}") from None
    x5 = msg.get_attr(X5chain)
    if not x5:
        raise ValueError("carries no x5chain (RFC 9360): no signer certificate")
    ders = x5 if isinstance(x5, list) else [x5]
    try:
        chain = [x509.load_der_x509_certificate(d) for d in ders]
    except Exception as e:
        raise ValueError(f"x5chain holds something that is not a certificate: {e}") from None
    return msg, ders, chain


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("submission")
    p.add_argument("--receipt")
    p.add_argument("--hub-key", required=True)
    p.add_argument("--trust-anchor", action="append", required=True)
    p.add_argument("--id")
    p.add_argument("--signed-content-only", action="store_true",
                   help="for a STIX object: verify the signed content only, not the object's "
                        "readable properties (which this tool does not re-map)")
    a = p.parse_args()

    with open(a.submission) as f:
        doc = json.load(f)
    checks = Checks()
    if doc.get("type") == "bundle":
        s, payload, signature, receipt = from_bundle(doc, a.id, checks, a.signed_content_only)
    else:
        s, payload, signature, receipt = from_get(doc)
    if a.receipt:
        with open(a.receipt) as f:
            receipt = json.load(f)
    with open(a.hub_key, "rb") as f:
        raw = f.read()
    try:
        hub_key = bytes.fromhex(raw.decode().strip())
    except ValueError:
        hub_key = raw
    anchors = []
    for path in a.trust_anchor:
        with open(path, "rb") as f:
            anchors.extend(x509.load_pem_x509_certificates(f.read()))

    if s["status"] != "withdrawn":
        digest = hashlib.sha256(payload).hexdigest()
        checks.add("content", digest == s["content_hash"],
                   f"sha256:{digest} " + ("is the submission's content_hash" if digest == s["content_hash"]
                                          else f"is not its content_hash {s['content_hash']} (altered)"))
    signer_sha256 = None
    if not signature:
        checks.add("signature", False, "the submission is not signed by its publisher")
    else:
        try:
            msg, ders, chain = parse_signature(signature)
        except ValueError as e:
            checks.add("signature", False, str(e))
            msg = None
        if msg is not None:
            signer_sha256 = hashlib.sha256(ders[0]).hexdigest()
            try:
                pem = chain[0].public_key().public_bytes(
                    serialization.Encoding.PEM,
                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
                msg.key = CoseKey.from_pem_public_key(pem)
                good = msg.verify_signature(detached_payload=payload)
            except Exception:  # pycose raises on malformed input: a failed check either way
                good = False
            expected = change_claim(s)
            claimed = msg.phdr.get(CHANGE_LABEL)
            if expected is not None and claimed != expected:
                checks.add("signature", False,
                           f"is for {claimed!r}, not for {expected!r} (the change claim, protected "
                           f"header {CHANGE_LABEL}): it was not made for revision {s['revision']}")
            checks.add("signature", good, "verifies over the signed bytes" if good
                       else "does not verify over the signed bytes (altered)")
            at = datetime.datetime.now(datetime.timezone.utc)
            if receipt and receipt.get("accepted_at"):
                try:
                    at = datetime.datetime.fromisoformat(
                        receipt["accepted_at"].replace("Z", "+00:00"))
                except ValueError:
                    pass  # the receipt checks below name it
            ok, detail = chain_ok(chain, anchors, at)
            checks.add("certificate chain", ok, detail)

    if not receipt:
        checks.add("receipt", False, "none given")
    else:
        cp = receipt.get("checkpoint") or {}
        cp_text = (f"cbm-hub audit checkpoint v1\n{number(cp.get('tree_size'))}\n"
                   f"{cp.get('root_hash', '')}\n{cp.get('at', '')}\n").encode()
        cp_ok = ed25519_ok(hub_key, cp_text, base64.b64decode(cp.get("signature", "")))
        r_ok = ed25519_ok(hub_key, receipt_text(receipt).encode(),
                          base64.b64decode(receipt.get("hub_signature", "")))
        checks.add("receipt", r_ok, "signed by the hub key given" if r_ok
                   else ("altered" if cp_ok else "not signed by the hub key given"))
        same = (receipt.get("submission_id") == s["submission_id"]
                and number(receipt.get("revision")) == number(s["revision"])
                and receipt.get("content_hash") == s["content_hash"]
                and receipt.get("publisher") == s["publisher"]
                and number(receipt.get("sequence")) == number(s["sequence"])
                and receipt.get("accepted_at") == s["updated_at"])
        checks.add("receipt", same, "names this change" if same else "is for another change")
        if signer_sha256 is not None:
            bound = receipt.get("signer_cert_sha256") == signer_sha256
            checks.add("signer", bound,
                       f"the hub bound certificate sha256:{signer_sha256} to {receipt.get('publisher')}" if bound
                       else f"certificate sha256:{signer_sha256} is not bound to publisher {receipt.get('publisher')}")
            if bound:
                same_sig = receipt.get("signature_sha256") == hashlib.sha256(signature).hexdigest()
                checks.add("signature", same_sig, "is the one the hub accepted" if same_sig
                           else "is not the signature the hub accepted")
        try:
            included = verify_inclusion(
                number(receipt.get("leaf_index")), number(cp.get("tree_size")),
                bytes.fromhex(receipt.get("leaf_hash", "")),
                [bytes.fromhex(h) for h in receipt.get("inclusion_proof", [])],
                bytes.fromhex(cp.get("root_hash", "")))
        except ValueError:
            included = False
        checks.add("inclusion proof", included,
                   f"audit leaf {receipt.get('leaf_index')} is in the log of {cp.get('tree_size')} entries"
                   if included else "does not lead to the checkpoint's root")
        checks.add("checkpoint", cp_ok, f"{cp.get('tree_size')} entries, signed by the hub key" if cp_ok
                   else "its signature does not verify with the hub key given")

    failed = checks.failed()
    if failed:
        print(f"error: verification failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    only = " (the signed content, not the STIX object's properties)" if a.signed_content_only else ""
    print(f"verified: {s['submission_id']} revision {s['revision']} by {s['publisher']}{only}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
