#!/usr/bin/env python3
"""The hub's services through gRPC server reflection, with no generated code: list, describe, call.

    python reflect.py --profile P.toml                                  # every service and its methods
    python reflect.py --profile P.toml --describe cbm.v1.Hub.WhoAmI     # a service, method or message
    python reflect.py --profile P.toml --call cbm.v1.Hub/WhoAmI --data '{}'

What `grpcurl list`, `grpcurl describe` and `grpcurl -d '{}' HOST cbm.v1.Hub/WhoAmI` do, with the
official Python reflection client (grpcio-reflection, which speaks grpc.reflection.v1alpha; the
hub serves v1 too). Message types come from the hub at run time, so this works with any gRPC
server: requests and responses are JSON in the proto3 mapping. One JSON object per line.
"""
import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

import cbmclient


def describe(database: ProtoReflectionDescriptorDatabase, pool: DescriptorPool, symbol: str) -> dict:
    """A service, method (SERVICE.METHOD) or message as its descriptor proto (JSON)."""
    services = set(database.get_services())
    parent, _, name = symbol.rpartition(".")
    if symbol in services:
        found, out = pool.FindServiceByName(symbol), descriptor_pb2.ServiceDescriptorProto()
    elif parent in services and name in pool.FindServiceByName(parent).methods_by_name:
        found = pool.FindServiceByName(parent).methods_by_name[name]
        out = descriptor_pb2.MethodDescriptorProto()
    else:
        # Asks the hub for the file defining it; NOT_FOUND (grpc.RpcError) when there is none.
        found, out = pool.FindMessageTypeByName(symbol), descriptor_pb2.DescriptorProto()
    found.CopyToProto(out)
    return {"symbol": symbol, "descriptor": json_format.MessageToDict(out, preserving_proto_field_name=True)}


def call(channel: grpc.Channel, pool: DescriptorPool, target: str, data: str) -> dict:
    """Calls a unary method named SERVICE/METHOD with a JSON request."""
    service, _, method = target.partition("/")
    found = pool.FindServiceByName(service).methods_by_name.get(method)
    if found is None:
        raise KeyError(f"{target}: no such method")
    request_type = message_factory.GetMessageClass(found.input_type)
    response_type = message_factory.GetMessageClass(found.output_type)
    stub = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    response = stub(json_format.Parse(data, request_type()), timeout=10)
    return {"call": target, "response": json_format.MessageToDict(response, preserving_proto_field_name=True)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cbmclient.add_connection_arguments(p)
    p.add_argument("--describe", metavar="SYMBOL", help="describe a service, method or message")
    p.add_argument("--call", metavar="SERVICE/METHOD", help="call a unary method")
    p.add_argument("--data", default="{}", help="the request of --call in JSON")
    args = p.parse_args()
    settings = cbmclient.settings_from_args(args, p)
    try:
        with cbmclient.connect(settings) as channel:
            database = ProtoReflectionDescriptorDatabase(channel)
            pool = DescriptorPool(database)
            if args.describe:
                print(json.dumps(describe(database, pool, args.describe)))
            elif args.call:
                print(json.dumps(call(channel, pool, args.call, args.data)))
            else:
                for name in sorted(database.get_services()):
                    methods = [m.name for m in pool.FindServiceByName(name).methods]
                    print(json.dumps({"service": name, "methods": methods}))
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    except grpc.FutureTimeoutError:
        print(f"error: could not connect to {settings.endpoint} over mTLS", file=sys.stderr)
        return 1
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
