"""The bundled DAG files (cpsign_setup, cpsign_training, cpsign_retraining) in the installed package.

They ship in the wheel as files, ``cpsign_airflow/dags/*.py`` (not a Python package: Airflow
parses them as DAG files). A deployment gets them in one of two ways::

    # an Airflow 3 DAG bundle that points at the installed files (upgraded with the package)
    export AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST="$(python -m cpsign_airflow.dag_files bundle-config)"

    # or copies in a DAG folder
    python -m cpsign_airflow.dag_files install "$AIRFLOW_HOME/dags"

``python -m cpsign_airflow.dag_files path`` prints the folder.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

#: The DAG bundle's name in ``[dag_processor] dag_bundle_config_list``.
BUNDLE_NAME = "cpsign"


def folder() -> Path:
    """The folder of the bundled DAG files in this installation."""
    return Path(__file__).resolve().parent / "dags"


def dag_files() -> list[Path]:
    """The bundled DAG files, sorted."""
    return sorted(folder().glob("*.py"))


def install(dest: Path, overwrite: bool = False) -> list[Path]:
    """Copy the DAG files into ``dest`` (created if missing); the copies.

    A file of the same name that differs is left alone and named in the error unless
    ``overwrite``: it may be a deployment's own edit.
    """
    dest.mkdir(parents=True, exist_ok=True)
    sources = dag_files()
    clashes = [
        dest / s.name
        for s in sources
        if (dest / s.name).exists() and (dest / s.name).read_bytes() != s.read_bytes()
    ]
    if clashes and not overwrite:
        names = ", ".join(str(p) for p in clashes)
        raise FileExistsError(f"differs from the bundled DAG file (--overwrite replaces): {names}")
    return [Path(shutil.copy2(s, dest / s.name)) for s in sources]


def bundle_config(include_dags_folder: bool = True) -> list[dict]:
    """``[dag_processor] dag_bundle_config_list``: Airflow's DAG folder and the bundled DAGs."""
    bundles = []
    if include_dags_folder:
        bundles.append(
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {},
            }
        )
    bundles.append(
        {
            "name": BUNDLE_NAME,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(folder())},
        }
    )
    return bundles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cpsign_airflow.dag_files", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("path", help="print the folder of the bundled DAG files")
    inst = sub.add_parser("install", help="copy the DAG files into a DAG folder")
    inst.add_argument("dest", type=Path)
    inst.add_argument("--overwrite", action="store_true", help="replace differing files")
    conf = sub.add_parser(
        "bundle-config", help="print a dag_bundle_config_list with the bundled DAGs"
    )
    conf.add_argument(
        "--without-dags-folder",
        action="store_true",
        help="only the cpsign bundle (not Airflow's default dags-folder bundle)",
    )
    args = parser.parse_args(argv)
    if args.command == "path":
        print(folder())
    elif args.command == "install":
        try:
            for path in install(args.dest, overwrite=args.overwrite):
                print(path)
        except FileExistsError as exc:
            parser.exit(1, f"error: {exc}\n")
    else:
        print(json.dumps(bundle_config(not args.without_dags_folder)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
