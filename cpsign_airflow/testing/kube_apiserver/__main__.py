"""``python -m cpsign_airflow.testing.kube_apiserver [--port N] [--kubeconfig PATH] [--namespace NS]``.

Serves the fake API server until interrupted; writes a kubeconfig pointing at it.
"""

from __future__ import annotations

import argparse
import threading

from .server import FakeKubeApiServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", default="kubeconfig.fake.json")
    parser.add_argument("--namespace", action="append", default=[])
    args = parser.parse_args()
    with FakeKubeApiServer(port=args.port) as server:
        for ns in args.namespace:
            server.create_namespace(ns)
        path = server.write_kubeconfig(args.kubeconfig)
        print(f"fake kube-apiserver at {server.url}; kubeconfig: {path}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
