"""The CPSign version the stage image is built with: its one source in Python.

A configuration's ``cpsign.version`` must match ``[cpsign] cpsign_version``, whose default
(provider.yaml) is this version. The places that cannot import it (the stage image's
``ARG CPSIGN_VERSION``, the runtime's pom.xml and install.sh, the configuration schema's
default, provider.yaml, the docs) are checked against it by tests/cpsign/test_versions.py.
"""

#: ``com.arosbio:cpsign-api``, the library the stage runtime is built on.
CPSIGN_VERSION = "2.0.0"
