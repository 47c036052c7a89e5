"""Builds the wheel with its own gRPC stubs, generated from the repository's protos/ at build time.

``BANHAMMER_CLIENT_STUBS=skip`` leaves them out: the repository's own virtualenv already has the
stubs of `make gen` on its path, and two copies of one package would shadow each other.
"""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTOS = HERE.parents[1] / "protos"


class BuildWithStubs(build_py):
    def run(self) -> None:
        super().run()
        if os.environ.get("BANHAMMER_CLIENT_STUBS") == "skip":
            return
        import grpc_tools
        import google.api

        if not PROTOS.is_dir():
            sys.exit(f"banhammer-client: {PROTOS} not found: build from a checkout of the repository")
        out = Path(self.build_lib)
        googleapis = Path(next(iter(google.api.__path__))).parents[1]
        files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
        subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{googleapis}",
                        f"-I{Path(grpc_tools.__file__).parent / '_proto'}", f"--python_out={out}",
                        f"--pyi_out={out}", f"--grpc_python_out={out}", *files], check=True)
        for d in {out / Path(f).parent for f in files}:  # regular packages: every level gets one
            while d != out:
                (d / "__init__.py").touch()
                d = d.parent


setup(cmdclass={"build_py": BuildWithStubs})
