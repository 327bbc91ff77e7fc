"""Deploying a registered version: packages, their verification and their store.

* :mod:`framework.deploy.build`: ``package NAME@ALIAS -o dist/``, a standard wheel holding the
  model, its schema, OpenAPI description, lineage, model card, locked requirements, an input
  example with its expected predictions and a ``<name>-serve`` entry point; beside it a container
  build context (``Dockerfile``, the lock, a wheelhouse). Byte-reproducible.
* :mod:`framework.deploy.runtime`: what the entry point runs, with no registry and no checkout:
  every file of the package sha256-checked, the model loaded by the exact allowlist, then the
  same server as ``serve``.
* :mod:`framework.deploy.verify`: ``package verify``, a fresh virtual environment installed
  offline from the lock, the server started, the example replayed and compared.
* :mod:`framework.deploy.store`: ``package push/list/pull``, a content-addressed store in a folder
  or on a DVC remote.
"""
