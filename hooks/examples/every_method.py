# Every Container method connector-build supports, in one build_customization.py.
# tests/hooks.rs builds a connector with this file and inspects the image.
# Expects, next to it in the connector folder: assets/extra.txt and assets/tree/ (with a
# nested file and a __pycache__ folder that must be excluded).
from __future__ import annotations

from typing import TYPE_CHECKING

import dagger
from dagger import ReturnType, dag

if TYPE_CHECKING:
    from dagger import Container


async def pre_connector_install(base: Container) -> Container:
    cache = dag.cache_volume("every-method-pip")
    container = (
        base.with_workdir("/opt/every")
        .with_file("extra.txt", dag.host().file("assets/extra.txt"), permissions=0o600, owner="1000:1000")
        .with_directory("/opt/tree", dag.host().directory("assets/tree", exclude=["**/__pycache__"]))
        .with_env_variable("TEMPORARY", "gone soon")
        .without_env_variable("TEMPORARY")
        .with_mounted_cache("/root/.cache/every", cache)
        .with_exec(["sh", "-c", "date +%s > /root/.cache/every/stamp && cp /root/.cache/every/stamp /opt/every/stamp"])
        .with_exposed_port(8080)
        .with_label("io.airbyte.every-method", "yes")
    )
    # A command that fails on purpose, accepted with expect=ANY; its code and stderr read back.
    probe = container.with_exec(["sh", "-c", "echo to-stderr >&2; exit 7"], expect=ReturnType.ANY)
    code = await probe.exit_code()
    err = (await probe.stderr()).strip()
    assert code == 7 and err == "to-stderr", (code, err)
    try:
        await container.with_exec(["false"]).sync()
        raise AssertionError("a failing with_exec must raise ExecError when evaluated")
    except dagger.ExecError as e:
        assert e.exit_code == 1, e.exit_code
    return container.with_env_variable("PROBE_RESULT", f"{code}:{err}")


async def post_connector_install(connector: Container) -> Container:
    entrypoint = await connector.entrypoint()
    wrapper = "#!/bin/sh\n# Wraps the connector like some real images do.\nexec " + " ".join(entrypoint) + ' "$@"\n'
    return (
        connector.with_new_file("/usr/local/bin/run-connector", contents=wrapper, permissions=0o755)
        .with_entrypoint(["/usr/local/bin/run-connector"])
        .with_default_args(["spec"])
        .with_workdir("/airbyte/integration_code")
    )
