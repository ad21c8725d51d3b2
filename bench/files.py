"""Files: replacing many feeds by new files, versus `write_feed`, which reuses a spare file.

Replaces each of N files (3 KB, like a reader's feed) in a temporary folder on the filesystem
of `--dir`, by turns: each by a new file renamed over it (mkstemp + rename: a file and its
blocks created, the old ones freed), then with `digest.feeds.write_feed` (the new version
written over a spare file's old bytes, which is then renamed over the feed: nothing created or
freed). Three rounds each, interleaved; prints milliseconds per file, wall and system CPU.

    python bench/files.py [--files 3600] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from digest.feeds import write_feed  # noqa: E402


def by_new_file(path: Path, content: bytes) -> None:
    """What write_feed did before spares: a new file renamed over the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        f.write(content)
    os.replace(tmp, path)


def timed(name: str, paths: list[Path], replace: Callable[[Path, bytes], object]) -> None:
    """Replace every file with new bytes; print ms per file."""
    wall, cpu = time.perf_counter(), os.times()
    for i, path in enumerate(paths):
        replace(path, f"<rss>{name} {i} {wall}</rss>".encode() * 120)
    done = os.times()
    print(
        f"{name:9s} {(time.perf_counter() - wall) / len(paths) * 1000:.3f} ms wall, "
        f"{(done.system - cpu.system) / len(paths) * 1000:.3f} ms system CPU a file",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=3600)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        paths = [Path(tmp) / f"r{i:05d}.xml" for i in range(args.files)]
        for path in paths:  # every feed exists and has a spare, as after two runs
            write_feed(path, b"<rss>0</rss>")
            write_feed(path, b"<rss>1</rss>")
        os.sync()
        for _ in range(3):
            timed("new file", paths, by_new_file)
            timed("spare", paths, write_feed)


if __name__ == "__main__":
    main()
