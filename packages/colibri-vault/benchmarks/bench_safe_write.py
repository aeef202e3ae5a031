"""What the hostile-jail write costs against the usual atomic write.

Baseline: the common atomic-write idiom on a trusted path (tempfile.mkstemp in the
target directory, write, fchown, fsync, os.replace). Result: colibri-vault's jail write
(canonical base, O_NOFOLLOW walk of every component, the jail's etc/passwd read and
parsed through the same walk, O_EXCL temp, fchown, fsync, rename, directory fsync),
for the same 1 KiB content. Medians of several repeats; prints baseline, result, ratio.
Needs root (fchown).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from colibri_vault._jail import JailTarget

REPEATS = 7
WRITES = 200
CONTENT = b"".join(f"KEY_{i}='value-{i:04d}-{'x' * 20}'\n".encode() for i in range(28))


def baseline(directory: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory)
    try:
        os.write(fd, CONTENT)
        os.fchown(fd, 1001, 1002)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / ".env")


def safe(base: Path, root: Path) -> None:
    with JailTarget(
        allowed_base=str(base), jail_root=str(root), user="agent", env_path=None
    ) as target:
        target.write(CONTENT)


def median_seconds(fn: object, *args: object) -> float:
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(WRITES):
            fn(*args)  # type: ignore[operator]
        samples.append((time.perf_counter() - started) / WRITES)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "jails"
        root = base / "bench" / "root"
        (root / "etc").mkdir(parents=True)
        users = "".join(
            f"user{i}:*:{2000 + i}:{2000 + i}::/home/user{i}:/bin/sh\n" for i in range(30)
        )
        (root / "etc" / "passwd").write_text(
            "root:*:0:0::/root:/bin/sh\n" + users + "agent:*:1001:1002::/home/agent:/bin/sh\n"
        )
        home = root / "home" / "agent"
        home.mkdir(parents=True)
        plain = Path(tmp) / "plain"
        plain.mkdir()
        base_s = median_seconds(baseline, plain)
        safe_s = median_seconds(safe, base, root)
    print("bench_safe_write: one 1 KiB .env written, median of", REPEATS, "x", WRITES)
    print(f"  baseline (mkstemp+fchown+fsync+replace, trusted path): {base_s * 1e6:9.1f} us")
    print(f"  result   (jail walk+passwd+O_EXCL+fsync+rename+dir fsync): {safe_s * 1e6:9.1f} us")
    print(f"  ratio result/baseline: {safe_s / base_s:.2f}")


if __name__ == "__main__":
    main()
