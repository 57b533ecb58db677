async def pre_connector_install(c):
    return c.with_magic('x')
