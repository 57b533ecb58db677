def helper():
    raise ValueError('boom')


async def post_connector_install(c):
    helper()
    return c
