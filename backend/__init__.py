"""ReSet Studio backend: everything that runs without Qt (config, data, models, run log, stages)."""

__version__ = "0.1.0"
