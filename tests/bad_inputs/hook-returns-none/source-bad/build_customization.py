async def pre_connector_install(c):
    c.with_env_variable('A', '1')
