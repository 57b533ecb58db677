#!/usr/bin/env python3
"""connector-build against `docker build`, side by side, in one run.

On the same engine and the same base image, for real Airbyte connectors fetched from PyPI:
each is built with `docker build` from the best equivalent hand-written Dockerfile
(dependencies first, code last: the reference layout) and with connector-build. Cases, each
the median of --runs runs:

  cold         all caches of both emptied, one connector
  code edit    one source file changed
  no change    nothing changed
  dep change   one pinned dependency moved
  bulk cold    all N connectors, caches emptied: connector-build --concurrency 2 against the
               sum of sequential docker builds

Also connector-build's peak memory planning a synthetic repository of 300 connectors.
Prints a table and writes JSON (--json). Run: python3 bench/bench.py [--connectors 5]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target" / "release" / "connector-build"
REF_FILE = Path("/var/lib/connector-build/root-image.ref")

# Real connectors that build on Python 3.11 without a compiler, with varied dependency sets.
# (airbyte-source-pokeapi 0.2.15 is not among them: its `airbyte-cdk = "^0"` now resolves to a
# CDK that fails at import on Python 3.11, which connector-build's spec check refuses.)
CONNECTORS = [
    ("airbyte-source-faker", "7.2.1"),
    ("airbyte-source-recharge", "3.0.12"),
    ("airbyte-source-hardcoded-records", "0.0.48"),
    ("airbyte-source-sentry", "0.6.11"),
    ("airbyte-source-gitlab", "4.3.7"),
]

TARGETS = {
    "cold": 0.5,
    "code edit": 0.2,
    "dep change": 0.5,
    "bulk cold": 0.3,
}


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    if check and proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def timed(cmd, **kw):
    start = time.monotonic()
    run(cmd, **kw)
    return time.monotonic() - start


def docker_images(pattern):
    out = run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.split()
    return [i for i in out if re.match(pattern, i)]


def empty_caches(names):
    """Removes every image and cache either tool made for these connectors."""
    victims = docker_images(r"^connector-build-cache:") + docker_images(r"^bench-(cb|docker)/")
    if victims:
        run(["docker", "rmi", "-f", *victims], check=False)
    run(["docker", "image", "prune", "-f"], check=False)
    run(["docker", "volume", "rm", "-f", "connector-build-uv-cache", "connector-build-pip-cache"], check=False)


def lay_out(work, base_ref, count):
    cb_root, docker_root = work / "cb", work / "docker"
    names = []
    for pypi, version in CONNECTORS[:count]:
        folder = run(["bash", str(ROOT / "scripts/fetch-pypi-connector.sh"), pypi, version, str(cb_root), base_ref]).stdout.strip()
        names.append(Path(folder).name)
    plans = json.loads(run([str(BIN), "plan", "--installer", "pip", *[str(cb_root / n) for n in names]]).stdout)
    if isinstance(plans, dict):
        plans = [plans]
    ca = os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    for name, entry in zip(names, plans):
        src, dst = cb_root / name, docker_root / name
        shutil.copytree(src, dst)
        install = next(s for s in entry["plan"]["steps"] if s["name"] == "install dependencies")
        reqs = install["action"]["run"]["scratch_files"][0]["contents"]
        (dst / "requirements.txt").write_text(reqs)
        shutil.copy(ca, dst / "ca.pem")
        package = name.replace("-", "_")
        meta = open(dst / "metadata.yaml").read()
        version = re.search(r"dockerImageTag: (\S+)", meta).group(1)
        (dst / ".dockerignore").write_text("secrets\n.venv\n**/__pycache__\nbuild\n*.egg-info\n.git\n")
        # The best hand-written equivalent on this engine (no BuildKit here): dependencies in
        # their own layer keyed on requirements.txt, code last. The CA bundle is how this
        # machine reaches PyPI.
        (dst / "Dockerfile").write_text(f"""FROM {base_ref}
WORKDIR /airbyte/integration_code
COPY ca.pem /etc/ssl/certs/bench-ca.pem
COPY requirements.txt ./
RUN PIP_CERT=/etc/ssl/certs/bench-ca.pem pip install --disable-pip-version-check --root-user-action=ignore -r requirements.txt
COPY main.py ./
COPY {package} ./{package}
ENV AIRBYTE_ENTRYPOINT "python /airbyte/integration_code/main.py"
ENTRYPOINT ["python", "/airbyte/integration_code/main.py"]
LABEL io.airbyte.version={version}
LABEL io.airbyte.name=airbyte/{name}
""")
    return cb_root, docker_root, names


# Where connector-build's time went in the last runs, by step name (from --json).
STEPS = []


def cb_build(cb_root, names, tag_suffix="", concurrency=1):
    cmd = [str(BIN), "build", "--json", "--installer", "uv", "--concurrency", str(concurrency)]
    for n in names:
        cmd.append(str(cb_root / n))
    if len(names) == 1:
        cmd += ["--tag", f"bench-cb/{names[0]}:dev{tag_suffix}"]
    start = time.monotonic()
    out = run(cmd).stdout
    elapsed = time.monotonic() - start
    steps = {}
    for result in json.loads(out):
        for step in result.get("steps") or []:
            steps[step["name"]] = steps.get(step["name"], 0.0) + step["seconds"]
    STEPS.append(steps)
    return elapsed


def spec_seconds(runs):
    """The smoke test's share of the last `runs` connector-build runs (median)."""
    return statistics.median(s.get("smoke test", 0.0) for s in STEPS[-runs:]) if STEPS else 0.0


def docker_build(docker_root, name):
    return timed(["docker", "build", "-q", "-t", f"bench-docker/{name}:dev", str(docker_root / name)],
                 env={**os.environ, "DOCKER_BUILDKIT": "0"})


def touch_code(cb_root, docker_root, name, i):
    package = name.replace("-", "_")
    for root in (cb_root, docker_root):
        init = root / name / package / "__init__.py"
        init.write_text(init.read_text() + f"\n# bench edit {time.time()} {i}\n")


def move_pin(cb_root, docker_root, name, version):
    """Pins `six` at `version` in both: pyproject for connector-build, requirements for docker."""
    py = cb_root / name / "pyproject.toml"
    text = re.sub(r'\nsix = "[^"]*"', "", py.read_text())
    text = text.replace("[tool.poetry.dependencies]\n", f'[tool.poetry.dependencies]\nsix = "{version}"\n', 1)
    py.write_text(text)
    req = docker_root / name / "requirements.txt"
    lines = [l for l in req.read_text().splitlines() if not l.startswith("six")]
    req.write_text("\n".join(lines + [f"six=={version}"]) + "\n")


def spec_of(image):
    out = run(["docker", "run", "--rm", "--network", "none", image, "spec"]).stdout
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("type") == "SPEC":
            return msg
    raise SystemExit(f"bench: {image} printed no SPEC")


def peak_memory(work, base_ref, count=300):
    repo = work / "synthetic"
    template = ROOT / "connectors-fixtures" / "source-fixture-requirements"
    names = []
    for i in range(count):
        name = f"source-synthetic-{i:03d}"
        dst = repo / name
        shutil.copytree(template, dst)
        (dst / "source_fixture_requirements").rename(dst / name.replace("-", "_"))
        meta = (dst / "metadata.yaml").read_text()
        meta = re.sub(r"baseImage: \S+", f"baseImage: {base_ref}", meta)
        (dst / "metadata.yaml").write_text(meta.replace("source-fixture-requirements", name))
        names.append(name)
    proc = run(["/usr/bin/time", "-f", "%M", str(BIN), "--connectors-dir", str(repo), "plan", *names])
    plan_kb = int(proc.stderr.strip().splitlines()[-1])
    listing = run(["/usr/bin/time", "-f", "%M", str(BIN), "--connectors-dir", str(repo), "list", "--json"], check=False)
    list_kb = int(listing.stderr.strip().splitlines()[-1]) if listing.returncode == 0 else None
    return plan_kb, list_kb


BENCH_ENGINE = {"CB_ENGINE_NAME": "cb-bench-docker", "CB_ENGINE_BRIDGE": "cb-bench-br", "CB_ENGINE_NET": "172.31.253"}


def own_engine(action):
    """Starts or stops the benchmark's private engine (scripts/second-engine.sh)."""
    env = {**os.environ, **BENCH_ENGINE}
    return run(["bash", str(ROOT / "scripts/second-engine.sh"), action], env=env).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--connectors", type=int, default=5, help="how many real connectors (default 5)")
    ap.add_argument("--runs", type=int, default=3, help="runs per case; the median is reported")
    ap.add_argument("--json", default=str(ROOT / "bench" / "results.json"), help="where to write the results")
    ap.add_argument("--shared-engine", action="store_true",
                    help="use DOCKER_HOST's engine instead of a private one (its caches get emptied)")
    args = ap.parse_args()
    count = max(1, min(args.connectors, len(CONNECTORS)))

    log("set-up and release build")
    base_ref = run(["bash", str(ROOT / "scripts/setup.sh")]).stdout.strip().splitlines()[-1]
    run(["cargo", "build", "--release", "--quiet"], cwd=ROOT)
    if not args.shared_engine:
        # A private engine: emptying caches between cases must not touch anyone's builds,
        # and docker build and connector-build still share one engine.
        os.environ["DOCKER_HOST"] = own_engine("start").splitlines()[-1]
        log(f"private engine {os.environ['DOCKER_HOST']}")
    try:
        measure(args, count, base_ref)
    finally:
        if not args.shared_engine:
            own_engine("stop")


def measure(args, count, base_ref):
    work = Path(tempfile.mkdtemp(prefix="connector-build-bench-"))
    # Pulled by digest the base image has no tag, and `docker image prune` (which empties
    # docker build's cache) would remove it: a tag keeps both tools from re-pulling it.
    run(["docker", "tag", base_ref, "bench-base:keep"])
    cb_root, docker_root, names = lay_out(work, base_ref, count)
    first = names[0]
    results = {}

    def case(label, docker_times, cb_times):
        d, c = statistics.median(docker_times), statistics.median(cb_times)
        # connector-build verifies every image with `spec`; docker build does not.
        spec = spec_seconds(len(cb_times))
        results[label] = {"docker_build_s": round(d, 3), "connector_build_s": round(c, 3), "ratio": round(c / d, 3),
                          "spec_check_s": round(spec, 3), "ratio_without_spec_check": round(max(c - spec, 0) / d, 3),
                          "steps_s": {k: round(v, 3) for k, v in STEPS[-1].items()} if STEPS else {},
                          "docker_runs": [round(x, 3) for x in docker_times], "connector_build_runs": [round(x, 3) for x in cb_times]}
        log(f"{label}: docker {d:.2f}s, connector-build {c:.2f}s (spec check {spec:.2f}s), ratio {c / d:.2f}; steps {results[label]['steps_s']}")

    log(f"cold, {first}")
    d, c = [], []
    for _ in range(args.runs):
        empty_caches(names)
        d.append(docker_build(docker_root, first))
        empty_caches(names)
        c.append(cb_build(cb_root, [first]))
    case("cold", d, c)
    # Both warm now; the images must answer spec the same.
    docker_build(docker_root, first)
    same_spec = spec_of(f"bench-docker/{first}:dev") == spec_of(f"bench-cb/{first}:dev")

    log("code edit")
    d, c = [], []
    for i in range(args.runs):
        touch_code(cb_root, docker_root, first, i)
        d.append(docker_build(docker_root, first))
        c.append(cb_build(cb_root, [first]))
    case("code edit", d, c)

    log("no change")
    d, c = [], []
    for _ in range(args.runs):
        d.append(docker_build(docker_root, first))
        c.append(cb_build(cb_root, [first]))
    case("no change", d, c)

    log("dependency change")
    # A version neither tool has built with before, every run, so no run is a cache hit.
    versions = ["1.10.0", "1.11.0", "1.12.0", "1.13.0", "1.14.0", "1.15.0", "1.16.0", "1.17.0"]
    move_pin(cb_root, docker_root, first, versions[0])
    docker_build(docker_root, first)
    cb_build(cb_root, [first])
    d, c = [], []
    for i in range(args.runs):
        move_pin(cb_root, docker_root, first, versions[1 + i % (len(versions) - 1)])
        d.append(docker_build(docker_root, first))
        c.append(cb_build(cb_root, [first]))
    case("dep change", d, c)

    log(f"bulk cold, {count} connectors")
    empty_caches(names)
    docker_total = sum(docker_build(docker_root, n) for n in names)
    empty_caches(names)
    cb_total = cb_build(cb_root, names, concurrency=2)
    case("bulk cold", [docker_total], [cb_total])

    log("peak memory, 300 connectors")
    plan_kb, list_kb = peak_memory(work, base_ref)
    shutil.rmtree(work, ignore_errors=True)

    rows = []
    print(f"\n{'case':<12} {'docker build':>13} {'connector-build':>16} {'ratio':>7} {'target':>8}  ok   {'spec check':>10} {'ratio w/o it':>12}")
    for label, r in results.items():
        target = TARGETS.get(label)
        ok = "yes" if target is None or r["ratio"] <= target else "NO"
        if label == "no change":
            ok = "yes" if r["connector_build_s"] < 1.0 else "NO"
        tgt = f"<={target}x" if target else "<1s"
        print(f"{label:<12} {r['docker_build_s']:>12.2f}s {r['connector_build_s']:>15.2f}s {r['ratio']:>6.2f}x {tgt:>8}  {ok:<4} "
              f"{r['spec_check_s']:>9.2f}s {r['ratio_without_spec_check']:>11.2f}x")
        rows.append({"case": label, **r, "target": tgt, "met": ok == "yes"})
    mem = {"plan_300_kb": plan_kb, "list_300_kb": list_kb}
    peak = max(v for v in mem.values() if v)
    print(f"{'peak memory':<12} {'':>13} {peak / 1024:>14.1f}MB {'':>7} {'<=100MB':>8}  {'yes' if peak <= 100 * 1024 else 'NO'}")
    print(f"\nspec identical (docker build vs connector-build): {same_spec}")
    print(f"connectors: {', '.join(names)}; runs per case: {args.runs}; installer: uv; engine: {run(['docker', 'version', '--format', '{{.Server.Version}}']).stdout.strip()}")
    Path(args.json).write_text(json.dumps({"cases": rows, "memory": mem, "spec_identical": same_spec,
                                           "connectors": names, "runs": args.runs}, indent=2) + "\n")
    log(f"results written to {args.json}")


if __name__ == "__main__":
    main()
