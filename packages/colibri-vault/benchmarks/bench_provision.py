"""What provision() adds on top of the bw processes it must run.

Baseline: the seven bw invocations of one provision of a logged-in appdata dir
(status, unlock, sync, list organizations, list collections, list items, lock), run
directly with subprocess.run against the test fake bw (tests/fake_bw.py, a Python
process per call, as the real CLI is a node process per call). Result: provision()
doing the same calls plus its lock, environment building, envelope parsing, exact-name
matching, mapping, rendering and the jail write (unchanged after the first run, so
the idempotence check is included). Medians; prints baseline, result, ratio. The real
bw takes ~1.5-3 s per call, so against it the ratio is closer still to 1. Needs root.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from colibri_vault import JailSettings, Secret, VaultSettings, provision

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"
REPEATS = 11
ORG = "2b9d4e61-7c3a-4f58-8e12-a6b0c9d3e745"
COL = "c1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8"
USER = "6f1c7a52-3b8e-4c2d-9a41-0d5e8b7c1f20"
ACCOUNT = {
    "client_id": f"user.{USER}",
    "client_secret": "Zk3s9QvX1mN7pR2tY5uW8aB4cD6eF0",
    "master_password": "correct horse battery staple",
    "user_id": USER,
    "email": "svc-provisioner@example.test",
}


def main() -> None:
    data = TESTS / "data"
    items = json.loads((data / "list_items_collection.json").read_text())
    for field in items[0]["fields"]:
        field["name"] = field["name"].replace(" ", "_")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        appdata = tmp / "appdata"
        appdata.mkdir(mode=0o700)
        scenario = tmp / "scenario.json"
        scenario.write_text(
            json.dumps(
                {
                    "account": ACCOUNT,
                    "initial": {
                        "server": "https://vault.example.test",
                        "logged_in": True,
                        "user_id": USER,
                    },
                    "vault": {
                        "organizations": json.loads((data / "list_organizations.json").read_text()),
                        "collections": json.loads((data / "list_collections.json").read_text()),
                        "items": items,
                    },
                }
            )
        )
        bw = tmp / "bw"
        bw.write_text(
            f"#!{sys.executable} -IS\nimport sys\nsys.path.insert(0, {str(TESTS)!r})\n"
            f"sys.argv[1:1] = [{str(scenario)!r}]\nimport fake_bw\nsys.exit(fake_bw.main())\n"
        )
        bw.chmod(0o755)
        root = tmp / "jails" / "tenant-alpha" / "root"
        (root / "etc").mkdir(parents=True)
        (root / "etc" / "passwd").write_text("agent:*:1001:1002::/home/agent:/bin/sh\n")
        (root / "home" / "agent").mkdir(parents=True)

        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(appdata),
            "BITWARDENCLI_APPDATA_DIR": str(appdata),
        }

        def direct() -> None:
            def run(*args: str, extra: dict[str, str] | None = None) -> bytes:
                return subprocess.run(
                    [str(bw), *args, "--nointeraction", "--response"],
                    env={**env, **(extra or {})},
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=60,
                    check=True,
                ).stdout

            run("status")
            out = run(
                "unlock",
                "--passwordenv",
                "BW_PASSWORD",
                extra={"BW_PASSWORD": ACCOUNT["master_password"]},
            )
            session = {"BW_SESSION": json.loads(out)["data"]["raw"]}
            run("sync", extra=session)
            run("list", "organizations", extra=session)
            run("list", "collections", "--organizationid", ORG, extra=session)
            run("list", "items", "--collectionid", COL, extra=session)
            run("lock", extra=session)

        vault = VaultSettings(
            server_url="https://vault.example.test",
            organization="Tenants",
            appdata_dir=appdata,
            bw_executable=bw,
            master_password=Secret(ACCOUNT["master_password"]),
            search_path="/usr/bin:/bin",
        )
        jail = JailSettings(user="agent", allowed_base=str(tmp / "jails"))

        def ours() -> None:
            provision("tenant-alpha", vault=vault, jail=jail)

        ours()  # first write; later runs are the steady state (unchanged)
        samples: dict[str, list[float]] = {"direct": [], "ours": []}
        for _ in range(REPEATS):
            for name, fn in (("direct", direct), ("ours", ours)):
                started = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - started)
        base_s = statistics.median(samples["direct"])
        ours_s = statistics.median(samples["ours"])
    print(f"bench_provision: one provision, 7 bw calls (fake bw), median of {REPEATS}")
    print(f"  baseline (the 7 bw calls alone, subprocess.run): {base_s * 1e3:8.1f} ms")
    print(f"  result   (provision(), unchanged .env)          : {ours_s * 1e3:8.1f} ms")
    print(
        f"  ratio result/baseline: {ours_s / base_s:.2f}"
        f"  (overhead {1e3 * (ours_s - base_s):.1f} ms)"
    )


if __name__ == "__main__":
    main()
