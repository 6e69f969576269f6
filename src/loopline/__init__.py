"""loopline: the machine-learning lifecycle as one system.

The top-level package exposes the version and the pipeline-authoring API only.
"""

__version__ = "0.1.0"
