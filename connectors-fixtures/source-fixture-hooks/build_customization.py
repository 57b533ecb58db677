# Build customization in the styles real Airbyte connectors use, written against the Dagger
# Python SDK's Container API.
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagger import Container

MAIN_FILE_NAME = "run_connector.py"


async def pre_connector_install(base_image_container: Container) -> Container:
    # Settings read from the host when the hook runs, as real hooks do.
    flavour = os.environ.get("FIXTURE_HOOK_FLAVOUR", "vanilla")
    container = (
        base_image_container.with_exec(
            ["sh", "-c", "apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*"],
            skip_entrypoint=True,
        )
        # The python base image already has the airbyte user; older bases did not.
        .with_exec(["sh", "-c", "id -u airbyte >/dev/null 2>&1 || useradd --uid 1000 --create-home airbyte"])
        .with_env_variable("FIXTURE_FLAVOUR", flavour)
        .with_env_variable("FIXTURE_PATH_COPY", "${PATH}", expand=True)
        .with_label("io.airbyte.fixture", "hooks")
    )
    return await container


async def post_connector_install(connector_container: Container) -> Container:
    container = connector_container.with_user("airbyte")
    # Switch to root for system changes, then back to whoever the image ran as.
    original_user = (await container.with_exec(["whoami"]).stdout()).strip()
    container = (
        container.with_user("root")
        .with_new_file(
            "/usr/local/bin/fixture-hello.sh",
            contents="#!/bin/sh\necho \"hello from $(whoami) in $(pwd)\" > /opt/fixture-hello.txt\n",
            permissions=0o755,
        )
        .with_exec(["/usr/local/bin/fixture-hello.sh"])
        .with_exec(["python", "-c", "import json; print(json.dumps({'ok': True}))"], skip_entrypoint=True)
        .with_exec(["spec"], use_entrypoint=True, redirect_stdout="/opt/fixture-spec.json")
        .with_env_variable("FIXTURE_ORIGINAL_USER", original_user)
        .with_user(original_user)
    )
    hello = await container.file("/opt/fixture-hello.txt").contents()
    assert hello.startswith("hello from root in /airbyte/integration_code"), hello
    assert await container.workdir() == "/airbyte/integration_code"
    assert await container.user() == "airbyte"
    assert await container.env_variable("FIXTURE_FLAVOUR") is not None
    entrypoint = await container.entrypoint()
    assert entrypoint == ["python", "/airbyte/integration_code/run_connector.py"], entrypoint
    return container.with_env_variable("FIXTURE_HELLO", hello.strip())
