"""Sweeps declared in config: ``python -m framework +experiment=NAME``.

:mod:`framework.sweep.engine` runs the trials (through the Hydra plugins in
``hydra_plugins/framework_sweep``), :mod:`framework.sweep.store` records them,
:mod:`framework.sweep.apply` writes a winner back into ``conf/``, :mod:`framework.sweep.cli` is the
``sweep`` verb.
"""
