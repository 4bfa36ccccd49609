#!/usr/bin/env python3
"""Publishes a TLP:GREEN national policy as a member, then follows the feed from a cursor file.

    python generate.py
    python example.py --profile ~/.local/share/cbm-hub/profiles/EE-MFA.toml
    python example.py --endpoint https://localhost:50051 --ca ca.pem --cert m.pem --key m-key.pem

Prints one JSON line for the publication ({"published": ...}) and one per feed change (the
FeedEvent in the proto's JSON form), then stops after --max-events changes or --timeout
seconds. The cursor file is rewritten after each change, so a second run resumes after it.
"""
import argparse
import datetime
import json
import pathlib
import sys

import grpc
from google.protobuf import json_format

import cbmclient
from cbm.v1 import hub_pb2, hub_pb2_grpc, submission_pb2


def policy(title: str, community: str) -> submission_pb2.SubmissionContent:
    """A national policy shared TLP:GREEN (with `community`, or every member when empty)."""
    return submission_pb2.SubmissionContent(
        title=title,
        language="en",
        summary="How the ministry coordinates national cyber policy with international partners.",
        tlp="TLP:GREEN",
        community=community,
        cbm_refs=["UN-CBM-3", "OSCE-CBM-7"],  # sharing national policies; national organisation
        tags=["national-policy", "python-client"],
        policy_document=submission_pb2.PolicyDocument(
            document_type="policy",
            issuing_authority="Ministry of Foreign Affairs",
            adoption_date="2025-03-01",
            version="1.0",
            url="https://www.example.ee/documents/international-cyber-policy.pdf",
        ),
    )


def as_json(message) -> str:
    return json.dumps(json_format.MessageToDict(message, preserving_proto_field_name=True))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", type=pathlib.Path, help="client profile TOML (cbm-hub init writes HOME/profiles/MEMBER.toml)")
    p.add_argument("--endpoint", help="hub address, such as https://localhost:50051 (overrides the profile)")
    p.add_argument("--ca", type=pathlib.Path, help="CA bundle the hub's certificate chains to")
    p.add_argument("--cert", type=pathlib.Path, help="member certificate (PEM)")
    p.add_argument("--key", type=pathlib.Path, help="member private key (PEM)")
    p.add_argument("--server-name", help="name checked against the hub's certificate")
    p.add_argument("--cursor-file", type=pathlib.Path, default=pathlib.Path("example.cursor"))
    p.add_argument("--max-events", type=int, default=10, help="stop after this many changes")
    p.add_argument("--timeout", type=float, default=30.0, help="stop following after this many seconds")
    p.add_argument("--title", default=f"International cyber policy ({datetime.date.today()})")
    p.add_argument("--community", default="", help="share with this community only (default: every member)")
    p.add_argument("--no-publish", action="store_true", help="only follow the feed")
    args = p.parse_args()

    if args.profile:
        try:
            settings = cbmclient.load_profile(args.profile)
        except OSError as e:
            print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
            return 1
    elif args.ca and args.cert and args.key and args.endpoint:
        settings = cbmclient.Settings(args.endpoint, args.ca, args.cert, args.key)
    else:
        p.error("pass --profile, or --endpoint with --ca, --cert and --key")
    for field in ("endpoint", "ca", "cert", "key", "server_name"):
        if getattr(args, field):
            setattr(settings, field, getattr(args, field))

    try:
        channel = cbmclient.connect(settings)
    except OSError as e:  # a profile's certificate, key or CA file that cannot be read
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    except grpc.FutureTimeoutError:
        print(f"error: could not connect to {settings.endpoint} over mTLS", file=sys.stderr)
        return 1
    with channel:
        try:
            if not args.no_publish:
                hub = hub_pb2_grpc.HubStub(channel)
                reply = hub.Publish(
                    hub_pb2.PublishRequest(content=policy(args.title, args.community)), timeout=10
                )
                print(json.dumps({"published": json.loads(as_json(reply))}), flush=True)
            cursor = cbmclient.Cursor(args.cursor_file)
            print(f"following the feed after sequence {cursor.load()}", file=sys.stderr)
            seen = 0
            for event in cbmclient.follow(
                channel, cursor, max_events=args.max_events, timeout=args.timeout
            ):
                print(as_json(event), flush=True)
                seen += 1
            print(f"{seen} changes; cursor at {cursor.load()}", file=sys.stderr)
        except cbmclient.SplitView as e:
            # The hub showed a history that does not extend the one this cursor saw.
            print(f"error: split view: {e}. Not resuming.", file=sys.stderr)
            return 1
        except grpc.RpcError as e:
            # The hub names the field at fault, e.g. "content.tlp: ...".
            print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
