def pre_connector_install(c):
    return c.with_exec('apt-get update')
