#!/usr/bin/env python3
"""Submission files through the protobuf library: the proto3 JSON mapping in both directions.

    python submission_file.py check FILE                      # parse only: is FILE a SubmissionContent?
    python submission_file.py check FILE --message cbm.v1.Submission   # ... or another message
    python submission_file.py publish FILE --profile P.toml   # parse FILE, Hub.Publish it
    python submission_file.py get ID --out FILE --profile P.toml

A submission file is the SubmissionContent message of proto/cbm/v1/submission.proto in the
proto3 JSON mapping: what `json_format.MessageToJson` writes, `json_format.Parse` reads, and
what `cbm-hub publish FILE` reads and `cbm-hub get ID --content --json` writes. `check` and
`publish` parse strictly (an unknown field is an error, as in the hub's CLI); `get` writes the
content as MessageToJson does by default (lowerCamelCase names; the CLI reads them too), or
with --proto-names the proto field names the CLI itself writes. `check --message` parses any
message of the contract, such as the `--json` output of `cbm-hub get ID` (cbm.v1.Submission).
"""
import argparse
import json
import pathlib
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory

import cbmclient
# Every module of the contract, so that `check --message` finds any of its messages.
from cbm.v1 import (  # noqa: F401
    admin_pb2, audit_pb2, catalogue_pb2, directory_pb2, feed_pb2, hub_pb2, hub_pb2_grpc,
    submission_pb2,
)


def load(path: pathlib.Path, message: str = "cbm.v1.SubmissionContent"):
    """A file holding `message` in JSON, parsed by the protobuf library (raises
    json_format.ParseError; KeyError for an unknown message name)."""
    found = descriptor_pool.Default().FindMessageTypeByName(message)
    return json_format.Parse(path.read_text(), message_factory.GetMessageClass(found)())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = p.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="parse a submission file and print it as MessageToJson does")
    check.add_argument("file", type=pathlib.Path)
    check.add_argument("--message", default="cbm.v1.SubmissionContent", help="full name of the message in FILE")
    publish = commands.add_parser("publish", help="publish a submission file")
    publish.add_argument("file", type=pathlib.Path)
    publish.add_argument("--idempotency-key", default="")
    cbmclient.add_connection_arguments(publish)
    get = commands.add_parser("get", help="write a submission's content as a submission file")
    get.add_argument("id")
    get.add_argument("--revision", type=int, default=0)
    get.add_argument("--out", type=pathlib.Path, required=True)
    get.add_argument("--proto-names", action="store_true", help="proto field names instead of lowerCamelCase")
    cbmclient.add_connection_arguments(get)
    args = p.parse_args()

    try:
        if args.command == "check":
            print(json_format.MessageToJson(load(args.file, args.message)))
            return 0
        settings = cbmclient.settings_from_args(args, commands.choices[args.command])
        with cbmclient.connect(settings) as channel:
            hub = hub_pb2_grpc.HubStub(channel)
            if args.command == "publish":
                request = hub_pb2.PublishRequest(
                    content=load(args.file), idempotency_key=args.idempotency_key
                )
                reply = hub.Publish(request, timeout=10)
                published = json_format.MessageToDict(reply, preserving_proto_field_name=True)
                print(json.dumps({"published": published}))
            else:
                submission = hub.Get(hub_pb2.GetRequest(id=args.id, revision=args.revision), timeout=10)
                text = json_format.MessageToJson(
                    submission.content, preserving_proto_field_name=args.proto_names
                )
                args.out.write_text(text + "\n")
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    except json_format.ParseError as e:
        print(f"error: {args.file}: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename}: {e.strerror}", file=sys.stderr)
        return 1
    except grpc.FutureTimeoutError:
        print("error: could not connect to the hub over mTLS", file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
