"""A small client library for cbm-hub, over the modules generate.py writes.

- `Settings` / `load_profile`: where the hub is and which member certificate to present
  (a profile TOML written by `cbm-hub init` or `cbm-hub pki issue`, or explicit files).
- `connect`: a gRPC channel over mutual TLS; the hub identifies the caller by its certificate.
- `add_connection_arguments` / `settings_from_args`: the command-line options of the scripts
  (--profile, or --endpoint with --ca/--cert/--key).
- `Cursor`: the last feed sequence processed, in a file replaced atomically, with the latest
  audit checkpoint verified and the hub's key.
- `follow`: the feed after the cursor, saving the cursor after each processed event; first it
  checks that the hub's audit log extends the checkpoint seen before (`SplitView` if not).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import pathlib
import sys
import time
import tomllib
from typing import Iterator

import grpc
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import json_format

from cbm.v1 import audit_pb2, audit_pb2_grpc, feed_pb2, feed_pb2_grpc


@dataclasses.dataclass
class Settings:
    """How to reach the hub as one member."""

    #: "host:port" or "https://host:port".
    endpoint: str
    #: CA bundle (PEM) the hub's server certificate must chain to.
    ca: pathlib.Path
    #: The member's client certificate and key (PEM).
    cert: pathlib.Path
    key: pathlib.Path
    #: Name checked against the server certificate; None: the endpoint's host.
    server_name: str | None = None


def load_profile(path: str | os.PathLike) -> Settings:
    """Reads a cbm-hub client profile (`HOME/profiles/MEMBER.toml`)."""
    path = pathlib.Path(path)
    with open(path, "rb") as f:
        profile = tomllib.load(f)
    missing = [k for k in ("endpoint", "ca", "cert", "key") if k not in profile]
    if missing:
        raise ValueError(f"{path}: missing {', '.join(missing)}")
    # Relative file names are taken relative to the profile, like the hub's own config.
    rel = lambda p: path.parent / p  # noqa: E731
    return Settings(
        endpoint=profile["endpoint"],
        ca=rel(profile["ca"]),
        cert=rel(profile["cert"]),
        key=rel(profile["key"]),
        server_name=profile.get("server_name") or None,
    )


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """--profile, or --endpoint with --ca, --cert and --key (each also overrides the profile)."""
    parser.add_argument("--profile", type=pathlib.Path,
                        help="client profile TOML (cbm-hub init writes HOME/profiles/MEMBER.toml)")
    parser.add_argument("--endpoint", help="hub address, such as https://localhost:50051")
    parser.add_argument("--ca", type=pathlib.Path, help="CA bundle the hub's certificate chains to")
    parser.add_argument("--cert", type=pathlib.Path, help="member certificate (PEM)")
    parser.add_argument("--key", type=pathlib.Path, help="member private key (PEM)")
    parser.add_argument("--server-name", help="name checked against the hub's certificate")


def settings_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Settings:
    """The Settings the options of `add_connection_arguments` name (exits on missing ones)."""
    if args.profile:
        settings = load_profile(args.profile)
    elif args.ca and args.cert and args.key and args.endpoint:
        settings = Settings(args.endpoint, args.ca, args.cert, args.key)
    else:
        parser.error("pass --profile, or --endpoint with --ca, --cert and --key")
    for field in ("endpoint", "ca", "cert", "key", "server_name"):
        if getattr(args, field):
            setattr(settings, field, getattr(args, field))
    return settings


def connect(settings: Settings, ready_timeout: float = 10.0) -> grpc.Channel:
    """Opens an mTLS channel and waits until it is connected (or raises grpc.FutureTimeoutError)."""
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(settings.ca).read_bytes(),
        private_key=pathlib.Path(settings.key).read_bytes(),
        certificate_chain=pathlib.Path(settings.cert).read_bytes(),
    )
    target = settings.endpoint.removeprefix("https://").rstrip("/")
    host = target.rsplit(":", 1)[0].strip("[]")
    options = []
    if settings.server_name and settings.server_name != host:
        # Connect to one address while checking the certificate for another name
        # (the dev hub's certificate names localhost, 127.0.0.1 and ::1).
        options.append(("grpc.ssl_target_name_override", settings.server_name))
    channel = grpc.secure_channel(target, credentials, options)
    try:
        grpc.channel_ready_future(channel).result(timeout=ready_timeout)
    except grpc.FutureTimeoutError:
        channel.close()
        raise
    return channel


class SplitView(Exception):
    """The hub's audit log does not extend the checkpoint seen before: rewritten or forked."""


class Cursor:
    """The sequence number of the last feed event processed, kept in a file, with the latest
    audit checkpoint verified and the hub's key.

    The first line holds the number, as `cbm-hub subscribe --cursor-file` writes it; then
    `checkpoint JSON`, `covered SEQ` (the sequence that checkpoint covers) and `hub-key HEX`,
    the same lines as the CLI's, so either client can resume the other's position and check
    the other's checkpoint.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = pathlib.Path(path)
        self.checkpoint: audit_pb2.Checkpoint | None = None
        # None: a file written before it was kept (says nothing either way).
        self.covered: int | None = None
        self.noted_uncovered = False
        self.hub_key: bytes | None = None

    def load(self) -> int:
        """The saved sequence, 0 (the whole history) when there is no file yet."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return 0
        lines = text.splitlines()
        first = lines[0].strip() if lines else ""
        for line in lines[1:]:
            if line.startswith("checkpoint "):
                self.checkpoint = json_format.Parse(line[len("checkpoint "):], audit_pb2.Checkpoint())
            elif line.startswith("covered "):
                self.covered = int(line[len("covered "):].strip())
            elif line.startswith("hub-key "):
                self.hub_key = bytes.fromhex(line[len("hub-key "):].strip())
        try:
            return int(first)
        except ValueError:
            raise ValueError(f"{self.path}: not a sequence number: {first!r}") from None

    def save(self, sequence: int) -> None:
        """Replaces the file atomically: a crash leaves the old or the new number, never a torn one."""
        text = f"{sequence}\n"
        if self.checkpoint is not None:
            as_json = json_format.MessageToJson(
                self.checkpoint, preserving_proto_field_name=True, indent=None)
            text += f"checkpoint {as_json}\n"
            if self.covered is not None:
                text += f"covered {self.covered}\n"
        if self.hub_key is not None:
            text += f"hub-key {self.hub_key.hex()}\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        # The rename itself is durable only once the directory is synced.
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _consistent(m: int, n: int, root_m: bytes, root_n: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: the tree of m leaves is a prefix of the tree of n leaves."""
    if m > n:
        return False
    if m == 0 or m == n:
        return not proof and (m == 0 or root_m == root_n)
    if not proof:
        return False
    path = ([root_m] if m & (m - 1) == 0 else []) + proof
    f, s = m - 1, n - 1
    while f & 1:
        f >>= 1
        s >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if s == 0:
            return False
        if f & 1 or f == s:
            fr, sr = _node(c, fr), _node(c, sr)
            while not f & 1 and f != 0:
                f >>= 1
                s >>= 1
        else:
            sr = _node(sr, c)
        f >>= 1
        s >>= 1
    return s == 0 and fr == root_m and sr == root_n


def _signed(key: bytes, c: audit_pb2.Checkpoint) -> bool:
    text = f"cbm-hub audit checkpoint v1\n{c.tree_size}\n{c.root_hash}\n{c.at}\n".encode()
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(c.signature, text)
        return True
    except (InvalidSignature, ValueError):
        return False


def check_history(channel: grpc.Channel, cursor: Cursor, received: int = 0) -> None:
    """Asks the hub to prove that its audit log extends the checkpoint the cursor saw (RFC 6962
    consistency proof to a fresh signed checkpoint covering the feed up to `received`, the last
    sequence received) and keeps the new one in the cursor. Raises SplitView when the hub
    cannot: its history was rewritten, forked or truncated since."""
    earlier = cursor.checkpoint
    from_size = earlier.tree_size if earlier else 0
    try:
        served = audit_pb2_grpc.AuditStub(channel).ConsistencyProof(
            audit_pb2.ConsistencyProofRequest(
                from_size=from_size, to_size=0, cover_sequence=received))
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        if (e.details() or "").startswith("cover_sequence"):
            what = f"its feed no longer reaches sequence {received}, received before"
        else:
            what = f"its log is shorter than the {from_size} entries the checkpoint covers"
        raise SplitView(f"{what}: truncated or replaced; {e.details()}") from None
    key = cursor.hub_key if cursor.hub_key is not None else served.public_key
    if key != served.public_key:
        raise SplitView("the hub now signs its checkpoints with another key than the pinned one")
    later = served.checkpoint
    if not _signed(key, later):
        raise SplitView(f"the hub's checkpoint at size {later.tree_size} has an invalid signature")
    if earlier is not None:
        if served.from_root != earlier.root_hash:
            raise SplitView(
                f"the hub's log at size {earlier.tree_size} has root {served.from_root[:16]}..., "
                f"not the {earlier.root_hash[:16]}... seen before: the log was rewritten (a fork)")
        if not _consistent(earlier.tree_size, later.tree_size, bytes.fromhex(earlier.root_hash),
                           bytes.fromhex(later.root_hash), [bytes.fromhex(h) for h in served.proof]):
            raise SplitView(
                f"the log of {later.tree_size} entries does not provably extend the one of "
                f"{earlier.tree_size} seen before")
    cursor.checkpoint = later
    cursor.hub_key = key
    # Only what the hub says it covered (a hub before cover_sequence says nothing).
    if received and served.covered_sequence != received:
        if not cursor.noted_uncovered:
            cursor.noted_uncovered = True
            print(f"note: the hub did not say its checkpoint covers sequence {received} (a hub "
                  "without cover_sequence?): a rewrite of what was received since sequence "
                  f"{cursor.covered or 0} cannot be detected", file=sys.stderr)
    else:
        cursor.covered = max(cursor.covered or 0, received)


# While events come: a check covering them once they pause (a heartbeat) or every few seconds,
# and before `follow` ends by itself, so that the saved checkpoint covers the saved position.
_REFRESH_PAUSED = 1.0
_REFRESH_EVERY = 5.0


def follow(
    channel: grpc.Channel,
    cursor: Cursor,
    *,
    max_events: int | None = None,
    timeout: float | None = None,
    heartbeat_seconds: int = 0,
    **filters,
) -> Iterator[feed_pb2.FeedEvent]:
    """Yields the feed's changes after the cursor, in sequence order.

    The cursor is saved after each change once the caller asks for the next one, that is after
    the caller has processed it; a change the caller stops at (break, exception) is delivered
    again next time (at least once, never skipped). Heartbeats are not yielded but move the
    cursor to the position the hub has served up to. Ends after `max_events` changes, or
    quietly when `timeout` seconds have passed. `filters` are SubscribeRequest fields
    (kinds=[...], tlp=[...], ...). Other stream errors raise grpc.RpcError. Before subscribing
    it checks the hub's audit log against the checkpoint the cursor saw (`check_history`) and
    raises SplitView when the hub cannot prove it only grew since.
    """
    position = cursor.load()
    if cursor.covered is not None and cursor.covered < position:
        print(f"note: the events after sequence {cursor.covered} up to {position} were received "
              "without a checkpoint covering them (the reader stopped before it could ask for "
              "one): a rewrite of those alone cannot be detected", file=sys.stderr)
    # Before anything is received: the hub proves its log extends what this cursor saw.
    check_history(channel, cursor, position)
    cursor.save(position)
    checked = time.monotonic()

    def refresh(paused: bool) -> None:
        nonlocal checked
        if position > (cursor.covered or 0) and (
                time.monotonic() - checked >= (_REFRESH_PAUSED if paused else _REFRESH_EVERY)):
            checked = time.monotonic()
            check_history(channel, cursor, position)
            cursor.save(position)

    request = feed_pb2.SubscribeRequest(
        after_sequence=position, heartbeat_seconds=heartbeat_seconds, **filters
    )
    call = feed_pb2_grpc.FeedStub(channel).Subscribe(request, timeout=timeout)
    delivered = 0
    try:
        for event in call:
            if event.WhichOneof("event") == "heartbeat":
                if event.sequence > position:
                    position = event.sequence
                    cursor.save(position)
                refresh(paused=True)
                continue
            yield event
            position = event.sequence
            cursor.save(position)
            delivered += 1
            if max_events is not None and delivered >= max_events:
                # Ending by itself: what was received is covered first.
                if position > (cursor.covered or 0):
                    check_history(channel, cursor, position)
                    cursor.save(position)
                return
            refresh(paused=False)
    except grpc.RpcError as e:
        # The deadline is how `timeout` ends the stream: a normal end, not an error.
        if e.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
        if position > (cursor.covered or 0):
            check_history(channel, cursor, position)
            cursor.save(position)
    finally:
        call.cancel()
