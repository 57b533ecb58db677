def pre_connector_install(c):
    return c.with_exec(['sh', '-c', 'echo installing; echo no such package >&2; exit 3'])
