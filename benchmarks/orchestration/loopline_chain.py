"""loopline's chain in a warm process of its own, over peer_protocol.py's lines: how
bench.py's ``--baseline-src`` runs another source tree of loopline (e.g. the commit before a
cut) in the same rounds as this tree, so a cut is measured against its baseline under the
same load. Same runner set-up as bench.py's in-process ``Loopline``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve"])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    os.environ["CHAIN_STEPS"] = str(args.steps)

    import loopline
    from loopline.artifacts.fs import FsspecArtifactStore
    from loopline.metadata.urls import open_store
    from loopline.pipeline.loader import load_pipeline
    from loopline.pipeline.runner import LocalRunner

    sys.path.insert(0, str(HERE))
    from peer_protocol import serve

    with tempfile.TemporaryDirectory(prefix="loopline-chain-") as tmp:
        root = Path(tmp)
        pipeline = load_pipeline(HERE / "chain.py")
        md = open_store(f"sqlite:///{root}/loopline.db")
        runner = LocalRunner(
            md, FsspecArtifactStore(f"{root}/artifacts"), log_dir=root / "logs", max_workers=2
        )

        def run_once() -> None:
            assert runner.run(pipeline, cache=False).ok

        source = Path(loopline.__file__).resolve().parents[1]
        serve("loopline", f"{loopline.__version__} from {source}", args.steps, run_once)
        md.close()


if __name__ == "__main__":
    main()
