#!/usr/bin/env python3
"""Generates the Python modules of the cbm.v1 API from the hub's .proto files.

    python generate.py                      # ../../proto -> ./cbm/v1/*_pb2*.py
    python generate.py --proto DIR --out DIR

The generated code is not committed: it is rebuilt from proto/ (the contract) with the pinned
grpcio-tools, so it can never drift from the protos or from the runtime in requirements.txt.
"""
import argparse
import pathlib
import sys

from grpc_tools import protoc
import grpc_tools

HERE = pathlib.Path(__file__).resolve().parent


def generate(proto_root: pathlib.Path, out: pathlib.Path) -> list[pathlib.Path]:
    protos = sorted((proto_root / "cbm" / "v1").glob("*.proto"))
    if not protos:
        raise SystemExit(f"error: no .proto files under {proto_root / 'cbm' / 'v1'}")
    out.mkdir(parents=True, exist_ok=True)
    # The well-known types (google/protobuf/*.proto) ship inside grpc_tools.
    well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[str(p.relative_to(proto_root)) for p in protos],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("error: protoc failed (see above)")
    # Regular packages (not namespace packages), so the first `cbm` on sys.path wins whole.
    for pkg in (out / "cbm", out / "cbm" / "v1"):
        (pkg / "__init__.py").touch()
    return protos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto", type=pathlib.Path, default=HERE.parent.parent / "proto",
                        help="directory holding cbm/v1/*.proto (default: the repository's proto/)")
    parser.add_argument("--out", type=pathlib.Path, default=HERE,
                        help="directory the cbm/v1 package is written into (default: next to this script)")
    args = parser.parse_args()
    protos = generate(args.proto.resolve(), args.out.resolve())
    print(f"generated {len(protos)} protos into {args.out / 'cbm' / 'v1'}", file=sys.stderr)


if __name__ == "__main__":
    main()
