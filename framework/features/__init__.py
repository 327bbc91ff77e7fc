"""The feature store: tables published once, versioned, and read by name by any pipeline.

* **Publishing** (``outs.NAME.publish: {feature_set, entity, timestamp}`` in a stage's config):
  after the stage writes the output, the runner records the table as the next version of its
  feature set (:meth:`Catalog.publish`): content hash, schema, row count, a profile of every
  column and the producing stage's lineage. Its bytes go to the registry's content-addressed
  artifact store; the same bytes published again make no new version.
* **The catalog** is a table of the registry's database (``feature_versions``), so it has the
  registry's backends: the SQLite file by default, the PostgreSQL server a team shares, and the
  artifact store it names (a folder or a DVC remote).
* **Consuming** (``ins.NAME: {feature_set: NAME@latest|@7|@sha256:HEX}``, or a point-in-time
  ``join``): the compiler resolves each reference to one version and its sha256 and writes that
  pin into the stage's command in ``dvc.yaml`` (:mod:`framework.features.pins`), so ``dvc repro``
  reruns the stage when the pin changes and never otherwise.
* **Point-in-time joins** (:mod:`framework.features.join`): DuckDB's ``ASOF JOIN`` from the
  Parquet files, in bounded memory.
"""
